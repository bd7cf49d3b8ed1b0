/**
 * External (PEFT) weights: their signed download URLs, uploads (PROTOCOL.md §W2, §W4), and the
 * signed file URLs themselves, which live outside `/api/v1/` because their token is the credential.
 */
import { rest } from "../../wire/endpoints/index.js";
import type { LocalBackend } from "../backend.js";
import { DOWNLOAD_PREFIX, UPLOAD_PREFIX } from "../external-weights.js";
import { checkAtMost, LOCAL_LIMITS } from "../limits.js";
import { errorResponse, HttpError } from "../responses.js";
import { baseUrlOf, pathParam, type Route, route } from "./router.js";

export function externalWeightsRoutes(backend: LocalBackend): Route[] {
  return [
    route(rest.externalWeightsUrls, ({ params, request }) =>
      backend.externalWeights.urls(params.run_id!, params.checkpoint_id!, baseUrlOf(request)),
    ),
    route(rest.externalWeightsUploadStart, ({ body, request }) => {
      const lora = body.lora_config;
      checkAtMost("lora_config.rank", lora.rank, LOCAL_LIMITS.maxLoraRank);
      return backend.externalWeights.start(
        body.base_model,
        {
          rank: lora.rank,
          trainAttn: lora.train_attn,
          trainMlp: lora.train_mlp,
          trainUnembed: lora.train_unembed,
        },
        baseUrlOf(request),
      );
    }),
    route(rest.externalWeightsUploadFinish, ({ body }) => backend.externalWeights.finish(body.upload_id)),
  ];
}

const SIGNED_FILE_URL = new RegExp(`/(${DOWNLOAD_PREFIX}|${UPLOAD_PREFIX})/([^/]+)/([^/]+)$`);

/**
 * `GET|HEAD <base>/external-weights/<token>/<file>` and `PUT <base>/external-weights-uploads/<token>/<file>`,
 * or undefined when `pathname` is neither.
 */
export function serveSignedWeightsFile(
  backend: LocalBackend,
  request: Request,
  pathname: string,
): Promise<Response> | undefined {
  const match = SIGNED_FILE_URL.exec(pathname);
  if (!match) return undefined;
  const [, prefix, token, file] = match as unknown as [string, string, string, string];
  return (async () => {
    try {
      if (prefix === UPLOAD_PREFIX) {
        if (request.method !== "PUT")
          throw new HttpError(405, `method ${request.method} not allowed on upload URLs`);
        await backend.externalWeights.receive(
          token,
          pathParam(file),
          async () => new Uint8Array(await request.arrayBuffer()),
        );
        return new Response(null, { status: 200 });
      }
      if (request.method !== "GET" && request.method !== "HEAD") {
        throw new HttpError(405, `method ${request.method} not allowed on download URLs`);
      }
      const bytes = await backend.externalWeights.download(token, pathParam(file));
      return new Response(request.method === "HEAD" ? null : (bytes as Uint8Array<ArrayBuffer>), {
        headers: {
          "content-type": "application/octet-stream",
          "content-length": String(bytes.length),
          "cache-control": "private, no-store",
        },
      });
    } catch (error) {
      if (error instanceof HttpError) return errorResponse(error);
      return errorResponse(new HttpError(500, error instanceof Error ? error.message : String(error)));
    }
  })();
}
