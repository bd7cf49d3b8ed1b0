// Node and Bun (CommonJS): require() both entries of the installed package.
const sdk = require("tinker-ts");
const local = require("tinker-ts/local");

const runtime = process.argv[2] ?? "cjs";
import("./scenario.mjs")
  .then(({ scenario }) => scenario({ ...sdk, ...local }, runtime))
  .catch((error) => ({ runtime, ok: false, problems: [String(error?.stack ?? error)] }))
  .then((result) => console.log(JSON.stringify(result)));
