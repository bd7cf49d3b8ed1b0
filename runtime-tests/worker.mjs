// workerd (Miniflare): bundled into one ES module with the SDK and the local backend.
import * as sdk from "tinker-ts";
import * as local from "tinker-ts/local";
import { scenario } from "./scenario.mjs";

export default {
  async fetch() {
    try {
      return Response.json(await scenario({ ...sdk, ...local }, "workerd"));
    } catch (error) {
      return Response.json({ runtime: "workerd", ok: false, problems: [String(error?.stack ?? error)] });
    }
  },
};
