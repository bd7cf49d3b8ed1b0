// Node, Deno and Bun (ESM): the SDK over real HTTP (scenario-http.mjs), the package by name.
import * as sdk from "tinker-ts";
import * as local from "tinker-ts/local";
import { httpScenario } from "./scenario-http.mjs";

const runtime = process.argv[2] ?? "http";
try {
  console.log(JSON.stringify(await httpScenario({ ...sdk, ...local }, runtime)));
} catch (error) {
  console.log(JSON.stringify({ runtime, ok: false, problems: [String(error?.stack ?? error)] }));
}
