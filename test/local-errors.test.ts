import { describe, expect, it } from "vitest";
import { LocalBackendError } from "../src/local/errors.js";
import { errorResponse, HttpError, httpStatusOf } from "../src/local/responses.js";

describe("local backend errors at the HTTP edge", () => {
  it("maps every domain error kind to the status the backend has always answered", () => {
    expect(httpStatusOf("invalid")).toBe(400);
    expect(httpStatusOf("forbidden")).toBe(403);
    expect(httpStatusOf("not_found")).toBe(404);
    expect(httpStatusOf("conflict")).toBe(409);
    expect(httpStatusOf("gone")).toBe(410);
  });

  it("answers a domain error and an HttpError with the same FastAPI-style body", async () => {
    const domain = errorResponse(new LocalBackendError("gone", "model m was unloaded"));
    expect(domain.status).toBe(410);
    expect(await domain.json()).toEqual({ detail: "model m was unloaded" });
    const edge = errorResponse(new HttpError(422, "seq_id must be an integer"));
    expect(edge.status).toBe(422);
    expect(await edge.json()).toEqual({ detail: "seq_id must be an integer" });
  });

  it("is caught by handlers that catch HttpError, with the mapped status", () => {
    const error: unknown = new LocalBackendError("conflict", "already public");
    expect(error).toBeInstanceOf(HttpError);
    expect((error as HttpError).status).toBe(409);
  });
});
