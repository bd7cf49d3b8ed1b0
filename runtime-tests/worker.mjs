// workerd (Miniflare): bundled into one ES module with the SDK, the local backend and the toolkit.
import * as sdk from "tinker-ts";
import * as local from "tinker-ts/local";
import * as toolkit from "tinker-ts/toolkit";
import { scenario } from "./scenario.mjs";

export default {
  async fetch() {
    try {
      return Response.json(await scenario({ ...sdk, ...local }, "workerd", toolkit));
    } catch (error) {
      return Response.json({ runtime: "workerd", ok: false, problems: [String(error?.stack ?? error)] });
    }
  },
};
