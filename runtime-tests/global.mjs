// edge-runtime (IIFE evaluated in an EdgeVM) and Chromium (ES module loaded by a page): the
// bundle (tinker-ts, tinker-ts/local and tinker-ts/toolkit) exposes one function that runs the scenario and resolves to its JSON line.
import * as sdk from "tinker-ts";
import * as local from "tinker-ts/local";
import * as toolkit from "tinker-ts/toolkit";
import { scenario } from "./scenario.mjs";

globalThis.runScenario = async (runtime) => {
  try {
    return JSON.stringify(await scenario({ ...sdk, ...local }, runtime, toolkit));
  } catch (error) {
    return JSON.stringify({ runtime, ok: false, problems: [String(error?.stack ?? error)] });
  }
};
