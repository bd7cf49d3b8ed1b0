/**
 * Detects the JavaScript runtime, OS and CPU architecture for the `X-Stainless-*` headers
 * (PROTOCOL.md §1.6). Only feature checks on globals: no `node:` imports, so this runs anywhere.
 */
export interface PlatformInfo {
  os: string;
  arch: string;
  runtime: string;
  runtimeVersion: string;
}

interface RuntimeGlobals {
  process?: {
    versions?: Record<string, string | undefined>;
    platform?: string;
    arch?: string;
    version?: string;
  };
  Deno?: { version?: { deno?: string }; build?: { os?: string; arch?: string } };
  Bun?: { version?: string };
  EdgeRuntime?: unknown;
  navigator?: { userAgent?: string };
}

let cached: PlatformInfo | undefined;

export function detectPlatform(): PlatformInfo {
  cached ??= computePlatform(globalThis as RuntimeGlobals);
  return cached;
}

function computePlatform(g: RuntimeGlobals): PlatformInfo {
  if (g.Deno?.version?.deno) {
    return {
      os: normalizeOs(g.Deno.build?.os),
      arch: normalizeArch(g.Deno.build?.arch),
      runtime: "deno",
      runtimeVersion: g.Deno.version.deno,
    };
  }
  if (g.Bun?.version) {
    return {
      os: normalizeOs(g.process?.platform),
      arch: normalizeArch(g.process?.arch),
      runtime: "bun",
      runtimeVersion: g.Bun.version,
    };
  }
  if (typeof g.EdgeRuntime !== "undefined") {
    return {
      os: "Unknown",
      arch: "unknown",
      runtime: "edge",
      runtimeVersion: String(g.process?.version ?? "unknown"),
    };
  }
  if (g.process?.versions?.node) {
    return {
      os: normalizeOs(g.process.platform),
      arch: normalizeArch(g.process.arch),
      runtime: "node",
      runtimeVersion: g.process.versions.node,
    };
  }
  const ua = g.navigator?.userAgent ?? "";
  if (ua.includes("Cloudflare-Workers")) {
    return { os: "Unknown", arch: "unknown", runtime: "workerd", runtimeVersion: "unknown" };
  }
  const browser = /(Edg|Chrome|Firefox|Safari)\/([\d.]+)/.exec(ua);
  if (browser) {
    return {
      os: osFromUserAgent(ua),
      arch: "unknown",
      runtime: `browser:${browser[1]!.toLowerCase()}`,
      runtimeVersion: browser[2]!,
    };
  }
  return { os: "Unknown", arch: "unknown", runtime: "unknown", runtimeVersion: "unknown" };
}

function normalizeOs(platform: string | undefined): string {
  switch ((platform ?? "").toLowerCase()) {
    case "darwin":
      return "MacOS";
    case "linux":
      return "Linux";
    case "win32":
    case "windows":
      return "Windows";
    case "freebsd":
      return "FreeBSD";
    case "openbsd":
      return "OpenBSD";
    case "android":
      return "Android";
    case "":
      return "Unknown";
    default:
      return `Other:${platform}`;
  }
}

function normalizeArch(arch: string | undefined): string {
  switch (arch) {
    case "x64":
    case "x86_64":
      return "x64";
    case "arm64":
    case "aarch64":
      return "arm64";
    case "arm":
      return "arm";
    case "ia32":
    case "x32":
      return "x32";
    case undefined:
    case "":
      return "unknown";
    default:
      return `other:${arch}`;
  }
}

function osFromUserAgent(ua: string): string {
  if (/iPhone|iPad/.test(ua)) return "iOS";
  if (/Android/.test(ua)) return "Android";
  if (/Mac OS X/.test(ua)) return "MacOS";
  if (/Windows/.test(ua)) return "Windows";
  if (/Linux/.test(ua)) return "Linux";
  return "Unknown";
}
