// workerd: a Worker that builds its ServiceClient at module scope, as Worker code usually does.
// workerd refuses to start a Worker whose global scope draws random numbers, reads timers or does
// I/O, so construction must do none of these (telemetry on, its default). The client's fetch goes
// to a local backend made at the first request, since the backend itself may draw at creation.
import { ServiceClient } from "tinker-ts";
import { createLocalTinker } from "tinker-ts/local";

let local;
const service = new ServiceClient({
  apiKey: "tml-module-scope",
  baseURL: "http://local.tinker",
  fetch: (request) => {
    local ??= createLocalTinker();
    return local.fetch(request);
  },
});

export default {
  async fetch() {
    try {
      const capabilities = await service.getServerCapabilities();
      const models = capabilities.supported_models.length;
      return Response.json({
        runtime: "workerd-module-scope",
        ok: models > 0,
        summary: `started with a ServiceClient built at module scope (telemetry on); getServerCapabilities: ${models} models`,
        problems: models > 0 ? [] : ["no models"],
      });
    } catch (error) {
      return Response.json({
        runtime: "workerd-module-scope",
        ok: false,
        problems: [String(error?.stack ?? error)],
      });
    }
  },
};
