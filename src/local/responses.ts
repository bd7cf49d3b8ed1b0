/** Small helpers to build the backend's HTTP answers. */

export class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

export function jsonResponse(body: unknown, status = 200, headers: Record<string, string> = {}): Response {
  return new Response(JSON.stringify(body), {
    status,
    headers: { "content-type": "application/json", ...headers },
  });
}

export function protobufResponse(bytes: Uint8Array, status = 200): Response {
  return new Response(bytes as Uint8Array<ArrayBuffer>, {
    status,
    headers: { "content-type": "application/x-protobuf" },
  });
}

/** FastAPI-style error body, which is what Tinker-compatible servers commonly send. */
export function errorResponse(error: HttpError): Response {
  return jsonResponse({ detail: error.message }, error.status);
}
