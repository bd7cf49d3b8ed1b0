/**
 * Answers that cannot be the server's (issue 14). A Tinker server answers its routes with JSON
 * (`application/json`) or, where the client asked for it, protobuf (`application/x-protobuf`). A
 * 2xx answer with an HTML page (a captive portal, a misconfigured load balancer), another content
 * type, or a JSON type whose body does not parse came from something else on the path; the caller
 * retries it as a transient transport fault (http.ts, poller.ts) instead of failing the run.
 */
import { ResponseValidationError, UnexpectedResponseError, type UnexpectedResponseKind } from "./errors.js";
import type { HttpResponse } from "./http.js";
import { bodyExcerpt } from "./redact.js";

/** Excerpt length in these messages: enough to recognise a page, short enough to read. */
const MESSAGE_EXCERPT = 200;

/**
 * Throws UnexpectedResponseError unless `response` (a 2xx answer to `route`) can be the server's:
 * JSON, or protobuf when `protobuf` says the route may answer with it. An empty body passes (the
 * schema decides whether nothing is an answer).
 */
export function checkAnswerFormat(response: HttpResponse, route: string, protobuf: boolean): void {
  if (response.body.byteLength === 0) return;
  const type = response.contentType;
  if (type.includes("application/x-protobuf")) {
    if (protobuf) return;
    throw unexpected(response, route, "content_type", "a protobuf answer to a JSON route");
  }
  if (type.includes("text/html") || looksLikeHtml(response)) {
    throw unexpected(response, route, "html", "an HTML page, not the server's answer");
  }
  const json = type.includes("/json") || type.includes("+json");
  if (!json && type !== "") {
    throw unexpected(response, route, "content_type", `content type ${type}, not JSON`);
  }
  if (response.json() === undefined) {
    throw unexpected(
      response,
      route,
      "malformed",
      json ? "a JSON content type whose body does not parse" : "a body without content type that is not JSON",
    );
  }
}

/** An UnexpectedResponseError about `response`, with a short redacted excerpt of its body. */
export function unexpected(
  response: HttpResponse,
  route: string,
  kind: UnexpectedResponseKind,
  what: string,
): UnexpectedResponseError {
  const type = response.contentType;
  const excerpt = bodyExcerpt(response.text(), MESSAGE_EXCERPT);
  return new UnexpectedResponseError(
    `Unexpected answer to ${route} (status ${response.status}${type ? `, ${type}` : ""}): ${what}${excerpt ? `: ${excerpt}` : ""}`,
    { kind, status: response.status, headers: response.headers, body: bodyExcerpt(response.text()) },
  );
}

/** Protobuf bytes that do not form the expected message are a bad answer, like a schema mismatch. */
export function decodeProtobuf<T>(decode: (bytes: Uint8Array) => T, bytes: Uint8Array, what: string): T {
  try {
    return decode(bytes);
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    throw new ResponseValidationError(what, undefined, [{ path: "", message }]);
  }
}

function looksLikeHtml(response: HttpResponse): boolean {
  const head = new TextDecoder().decode(response.body.subarray(0, 64)).trimStart().toLowerCase();
  return head.startsWith("<!doctype html") || head.startsWith("<html");
}
