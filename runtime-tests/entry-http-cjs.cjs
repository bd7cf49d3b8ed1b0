// Node and Bun (CommonJS): the SDK over real HTTP (scenario-http.mjs), require()d (dist/*.cjs).
const sdk = require("tinker-ts");
const local = require("tinker-ts/local");

const runtime = process.argv[2] ?? "http-cjs";
import("./scenario-http.mjs")
  .then(({ httpScenario }) => httpScenario({ ...sdk, ...local }, runtime))
  .catch((error) => ({ runtime, ok: false, problems: [String(error?.stack ?? error)] }))
  .then((result) => console.log(JSON.stringify(result)));
