/**
 * The SDK over real loopback HTTP, for the runtimes that have `node:http` (Node, Bun, Deno): the
 * embedded backend behind a node:http server, reached through whatever transport the package's
 * export conditions give the runtime (Node: the keep-alive HTTP/1.1 transport; Bun and Deno:
 * their fetch). Checks that training and sampling work over it, that a 307 redirect is followed
 * with the body resent (the base URL is under a prefix the server moves), and that an answer over
 * `maxResponseBytes` fails with APIError. Reports which transport carried the requests: the
 * scenario counts the calls of `globalThis.fetch` (the SDK looks it up at each request).
 */
import http from "node:http";

function serve(local) {
  const seen = { requests: 0, redirected: 0 };
  const server = http.createServer(async (req, res) => {
    const chunks = [];
    for await (const chunk of req) chunks.push(chunk);
    seen.requests++;
    if (req.url.startsWith("/moved/")) {
      seen.redirected++;
      res.writeHead(307, { location: req.url.slice("/moved".length) });
      res.end();
      return;
    }
    const headers = new Headers();
    for (const [name, value] of Object.entries(req.headers)) {
      if (typeof value === "string") headers.set(name, value);
    }
    const body = req.method === "GET" || req.method === "HEAD" ? undefined : Buffer.concat(chunks);
    const response = await local.fetch(
      new Request(`http://127.0.0.1${req.url}`, { method: req.method, headers, body }),
    );
    const bytes = Buffer.from(await response.arrayBuffer());
    res.writeHead(response.status, Object.fromEntries(response.headers));
    res.end(bytes);
  });
  return new Promise((resolve) => {
    server.listen(0, "127.0.0.1", () => resolve({ server, seen, port: server.address().port }));
  });
}

export async function httpScenario(sdk, runtime) {
  const started = Date.now();
  const { ServiceClient, ModelInput, datum, APIError, createLocalTinker } = sdk;
  const local = createLocalTinker();
  const { server, seen, port } = await serve(local);
  const problems = [];
  const runtimeFetch = globalThis.fetch;
  let fetched = 0;
  globalThis.fetch = (input, init) => {
    fetched++;
    return runtimeFetch(input, init);
  };
  const service = new ServiceClient({ apiKey: "tml-runtime", baseURL: `http://127.0.0.1:${port}/moved` });
  try {
    const training = await service.createLoraTrainingClient("tinker-ts/byte-lm-tiny", { rank: 4 });
    const example = datum(ModelInput.fromInts([256, 72, 105]), {
      target_tokens: [72, 105, 33],
      weights: [0, 1, 1],
    });
    const fb = await training.forwardBackward([example], "cross_entropy");
    if (typeof fb.metrics["loss:sum"] !== "number") problems.push("no loss:sum over HTTP");
    await training.optimStep({ learning_rate: 1e-2 });
    const sampler = await service.createSamplingClient({ baseModel: "tinker-ts/byte-lm-tiny" });
    const sample = await sampler.sample(ModelInput.fromInts([256, 72]), 1, { max_tokens: 2, temperature: 0 });
    if (sample.sequences[0]?.tokens.length !== 2) problems.push("sample over HTTP did not return 2 tokens");
    if (seen.redirected === 0) problems.push("no request went through the redirect");
    const tiny = new ServiceClient({
      apiKey: "tml-runtime",
      baseURL: `http://127.0.0.1:${port}`,
      maxResponseBytes: 64,
    });
    try {
      await tiny.getServerCapabilities();
      problems.push("an answer over maxResponseBytes was accepted");
    } catch (error) {
      if (!(error instanceof APIError && /exceeds the limit of 64 bytes/.test(error.message)))
        problems.push(`over maxResponseBytes: ${error}`);
    } finally {
      await tiny.close();
    }
  } catch (error) {
    problems.push(String(error?.stack ?? error));
  } finally {
    await service.close();
    globalThis.fetch = runtimeFetch;
    server.closeAllConnections?.();
    server.close();
  }
  const transport = fetched === 0 ? "node" : fetched === seen.requests ? "fetch" : "mixed";
  const expected = runtime.startsWith("node") ? "node" : "fetch";
  if (transport !== expected) problems.push(`transport ${transport}, expected ${expected}`);
  return {
    runtime,
    ok: problems.length === 0,
    problems,
    summary: `over HTTP: train+sample ok, 307 followed (${seen.redirected}×), size limit ok; transport ${transport}, ${seen.requests} requests, ${Date.now() - started}ms`,
  };
}
