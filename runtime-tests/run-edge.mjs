// Vercel edge-runtime: the IIFE bundle evaluated in an EdgeVM (no `process`, no Node globals).
// Usage: node runtime-tests/run-edge.mjs <bundle.iife.js>
import { readFileSync } from "node:fs";
import { EdgeVM } from "@edge-runtime/vm";

const vm = new EdgeVM();
vm.evaluate(readFileSync(process.argv[2], "utf8"));
console.log(await vm.evaluate(`runScenario("edge-runtime")`));
