// Node, Deno and Bun (ESM): the installed package by name.
import * as sdk from "tinker-ts";
import * as local from "tinker-ts/local";
import * as toolkit from "tinker-ts/toolkit";
import { scenario } from "./scenario.mjs";

const runtime = process.argv[2] ?? "esm";
try {
  console.log(JSON.stringify(await scenario({ ...sdk, ...local }, runtime, toolkit)));
} catch (error) {
  console.log(JSON.stringify({ runtime, ok: false, problems: [String(error?.stack ?? error)] }));
}
