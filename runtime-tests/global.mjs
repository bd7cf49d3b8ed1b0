// edge-runtime (IIFE evaluated in an EdgeVM) and Chromium (ES module loaded by a page): the
// bundle exposes one function that runs the scenario and resolves to its JSON line.
import * as sdk from "tinker-ts";
import * as local from "tinker-ts/local";
import { scenario } from "./scenario.mjs";

globalThis.runScenario = async (runtime) => {
  try {
    return JSON.stringify(await scenario({ ...sdk, ...local }, runtime));
  } catch (error) {
    return JSON.stringify({ runtime, ok: false, problems: [String(error?.stack ?? error)] });
  }
};
