/**
 * `whoami` has no endpoint (PROTOCOL.md §2.7.10): the identity is read from the claims of the
 * caller's identity JWT (the token of the JWT exchange, or an identity token given as the API key).
 */
import { ValidationError } from "../../core/errors.js";
import type { JwtClaims } from "../../core/jwt.js";
import type { WhoamiResponse } from "../../wire/rest-schemas.js";

/** `sub` → `user_urn`, `email` → `email`; `claims` is undefined when there is no identity JWT. */
export function whoamiFromClaims(claims: JwtClaims | undefined): WhoamiResponse {
  if (claims === undefined) {
    throw notAvailable(
      "the server does not use JWT authentication and the API key is not an identity token " +
        "(a plain tml- key carries no identity)",
    );
  }
  if (typeof claims.sub !== "string" || claims.sub === "") throw notAvailable("the JWT has no `sub` claim");
  // The official client turns an empty email into null.
  const email = typeof claims.email === "string" && claims.email !== "" ? claims.email : null;
  return { user_urn: claims.sub, email };
}

function notAvailable(reason: string): ValidationError {
  return new ValidationError([{ path: "apiKey", message: `whoami is not available: ${reason}` }]);
}
