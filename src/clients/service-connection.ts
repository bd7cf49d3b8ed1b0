/**
 * Which connection a ServiceClient uses, for code outside the class that must share it (the dispose
 * hook, `SamplingClient.fromSamplerHandle`) without the connection becoming public API.
 */
import type { Connection } from "./connection.js";

const connections = new WeakMap<object, Connection>();

export function registerConnection(owner: object, connection: Connection): void {
  connections.set(owner, connection);
}

/** The connection of a ServiceClient; undefined for any other value. */
export function connectionOf(owner: unknown): Connection | undefined {
  return typeof owner === "object" && owner !== null ? connections.get(owner) : undefined;
}
