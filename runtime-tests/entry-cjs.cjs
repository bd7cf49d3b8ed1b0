// Node and Bun (CommonJS): require() the three entries of the installed package (dist/*.cjs).
const sdk = require("tinker-ts");
const local = require("tinker-ts/local");
const toolkit = require("tinker-ts/toolkit");

const runtime = process.argv[2] ?? "cjs";
import("./scenario.mjs")
  .then(({ scenario }) => scenario({ ...sdk, ...local }, runtime, toolkit))
  .catch((error) => ({ runtime, ok: false, problems: [String(error?.stack ?? error)] }))
  .then((result) => console.log(JSON.stringify(result)));
