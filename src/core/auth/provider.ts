/**
 * What the HTTP layer asks for on every request: the value of `X-API-Key` (PROTOCOL.md §1.4). It is
 * an API key, a credential command's output, or a JWT obtained from `/api/v1/auth/token`, depending
 * on the server's client config; the connection swaps providers once the handshake has decided.
 */
export interface CredentialProvider {
  /** The credential for the next request. */
  credential(): Promise<string>;
  /** Stops any background work (token refresh); later `credential()` calls still answer. */
  close(): void;
}

/** A provider that asks `source` every time: an API key, or a credential command before the handshake. */
export function credentialFrom(source: () => Promise<string>): CredentialProvider {
  return { credential: source, close: () => {} };
}
