/** The per-client headers of PROTOCOL.md §1.6, with this SDK's own User-Agent and runtime values. */
import { VERSION } from "../version.js";
import { detectPlatform } from "./runtime.js";

export function platformHeaders(): Record<string, string> {
  const platform = detectPlatform();
  const headers: Record<string, string> = {
    "X-Stainless-Lang": "js",
    "X-Stainless-Package-Version": VERSION,
    "X-Stainless-OS": platform.os,
    "X-Stainless-Arch": platform.arch,
    "X-Stainless-Runtime": platform.runtime,
    "X-Stainless-Runtime-Version": platform.runtimeVersion,
    "X-Stainless-Async": "async:promise",
  };
  // Browsers forbid setting User-Agent (and some warn when a script tries).
  if (!platform.runtime.startsWith("browser")) headers["User-Agent"] = `tinker-ts/${VERSION}`;
  return headers;
}
