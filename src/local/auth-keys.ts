/**
 * The endpoints behind `tinker auth` (UPSTREAM.md A1), so that `tinker-ts auth login|logout|status`
 * and the official CLI can be used against the local backend:
 *
 * - `GET /api/v1/auth/apikey/me` (X-API-Key) → `{key_id, name, note, details}`: what the key is.
 * - `DELETE /api/v1/auth/apikey/me` (X-API-Key) → revokes the key: every later request with it is
 *   refused with 401.
 * - `GET /api/unauthed/auth-config` → `{clientId: null}`: this backend has no WorkOS client, so it
 *   offers no browser login; keys are given with `login --api-key`.
 *
 * The backend stores no key metadata, so the answer is derived from the key: a stable id and the
 * same pseudonymous user as the JWT mode gives it. Neither repeats the key.
 */
import { AUTH_CONFIG_PATH } from "../wire/endpoints/auth.js";
import { auth as authEndpoints } from "../wire/endpoints/index.js";
import { type LocalAuth, userFor } from "./auth.js";
import { HttpError, jsonResponse } from "./responses.js";
import { type Route, route } from "./routes/router.js";

/** What `/me` says as the key's name; the backend has no names of its own. */
const LOCAL_KEY_NAME = "tinker-ts local key";
const LOCAL_ORG_NAME = "tinker-ts local";

/** Routes on the path after `/api/v1/`; the handler has already checked the credential. */
export function authKeyRoutes(auth: LocalAuth): Route[] {
  return [
    route(authEndpoints.apiKeyMe, async ({ request }) => {
      const apiKey = rawApiKey(request);
      const user = await userFor(apiKey);
      return {
        key_id: await keyId(apiKey),
        name: LOCAL_KEY_NAME,
        note: null,
        details: { org_details: { name: LOCAL_ORG_NAME }, user_details: { email: user.email } },
      };
    }),
    route(authEndpoints.deleteApiKeyMe, async ({ request }) => {
      const apiKey = rawApiKey(request);
      auth.revoke(apiKey);
      return { key_id: await keyId(apiKey), deleted: true };
    }),
  ];
}

/** Answers the unauthenticated paths outside `/api/v1/` it knows; undefined for any other path. */
export function serveUnauthed(request: Request, pathname: string): Response | undefined {
  if (request.method !== "GET" || !pathname.endsWith(`/${AUTH_CONFIG_PATH}`)) return undefined;
  return jsonResponse({ clientId: null });
}

/** These endpoints describe an API key, so a JWT (which names a user, not a key) is refused. */
function rawApiKey(request: Request): string {
  const credential = request.headers.get("x-api-key") ?? "";
  if (credential.startsWith("eyJ")) throw new HttpError(400, "send the API key itself, not a JWT");
  return credential;
}

async function keyId(apiKey: string): Promise<string> {
  const digest = new Uint8Array(
    await crypto.subtle.digest("SHA-256", new TextEncoder().encode(`key-id:${apiKey}`)),
  );
  return `key-${Array.from(digest.subarray(0, 8), (b) => b.toString(16).padStart(2, "0")).join("")}`;
}
