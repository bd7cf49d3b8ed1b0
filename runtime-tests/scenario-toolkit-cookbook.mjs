/**
 * The cookbook-parity checks of the toolkit part (issue 18), each small but real and web standards
 * only, so that every runtime runs all of them:
 *
 * - `renderersCheck`: `qwen3_5` and `kimi_k25` over tiktoken-style tokenizers made here (all 256
 *   bytes plus each family's special tokens; the byte-level tokenizer has neither `<|im_start|>` nor
 *   Kimi's markers). A conversation with a tool declaration, an assistant turn that reasons and
 *   calls a tool, the tool's result and an answer: the trained tool-call turn parses back into the
 *   call (name, arguments, reasoning), and the whole conversation shows the declaration and the
 *   result. Also `recommendedRendererName` for both families and an unknown model's
 *   `ValidationError`. `tiktokenTokenizer` loads its implementation with a lazy `import()`, which
 *   the bundles, the CommonJS build and the import map must all resolve.
 * - `supervisedCheck`: `readJsonl` over a `ReadableStream` of bytes cut mid-line and mid-character
 *   (records keep their line numbers, a blank line counted), a bad line is a `ValidationError` naming
 *   it; `datasetFromConversations` (one held out) → `trainSupervised` for 4 steps of a linear
 *   schedule with 2 warmup steps: the rates the driver reports and the ones the server applied are
 *   the schedule's, and the held-out NLL at the start and the end is finite.
 * - `rlCheck`: `trainRL` for 2 steps of 2 groups × 4 one-token episodes of a one-step `Env` (reward
 *   1 for an ASCII byte): a report per step, in order, whose counts and rewards add up. Too few
 *   steps to assert learning.
 *
 * Each returns `{ ok, problems, ...what the summary line prints }` and never throws: a check that
 * throws is reported as failed with its error, so the other checks still run.
 */

const BASE_MODEL = "tinker-ts/byte-lm-tiny";

/** Runs `body(problems)`; its result plus `ok`/`problems`, or the error as a problem. */
async function check(body) {
  const started = Date.now();
  const problems = [];
  try {
    const result = await body(problems);
    return { ok: problems.length === 0, problems, ...result, ms: Date.now() - started };
  } catch (error) {
    problems.push(`threw ${String(error?.stack ?? error)}`);
    return { ok: false, problems, ms: Date.now() - started };
  }
}

/** The rank file of the 256 single bytes (`<base64 of the byte> <rank>` per line), no merges. */
const BYTE_RANKS = Array.from({ length: 256 }, (_, b) => `${btoa(String.fromCharCode(b))} ${b}`).join("\n");

/** Kimi K2.x's special tokens (the ones its renderer writes), numbered from 256 here. */
const KIMI_SPECIAL = [
  "<|im_end|>",
  "<|im_user|>",
  "<|im_assistant|>",
  "<|im_system|>",
  "<|im_middle|>",
  "<|media_begin|>",
  "<|media_content|>",
  "<|media_end|>",
  "<think>",
  "</think>",
  "<|tool_calls_section_begin|>",
  "<|tool_calls_section_end|>",
  "<|tool_call_begin|>",
  "<|tool_call_argument_begin|>",
  "<|tool_call_end|>",
];

const TOOLS = [
  {
    name: "get_weather",
    description: "Current weather of a city",
    parameters: { type: "object", properties: { city: { type: "string" } }, required: ["city"] },
  },
];
const CALL_ID = "functions.get_weather:0";

/** The conversation: a question, a turn that reasons and calls the tool, its result, the answer. */
const toolConversation = () => [
  { role: "user", content: "Weather in Paris?" },
  {
    role: "assistant",
    content: "",
    thinking: "I should look it up.",
    toolCalls: [{ id: CALL_ID, name: "get_weather", arguments: { city: "Paris" } }],
  },
  { role: "tool", content: "18°C", toolCallId: CALL_ID, name: "get_weather" },
  { role: "assistant", content: "It is 18°C in Paris." },
];

export function renderersCheck(sdk, toolkit) {
  const { ValidationError } = sdk;
  const { getRenderer, recommendedRendererName, tiktokenTokenizer } = toolkit;
  return check(async (problems) => {
    const families = [
      {
        name: "qwen3_5",
        model: "Qwen/Qwen3.5-4B",
        special: { "<|im_start|>": 256, "<|im_end|>": 257 },
        eos: "<|im_end|>",
        // The declaration in the system turn, and the result in a user turn.
        shows: ["<tools>", '"name": "get_weather"', "<tool_response>\n18°C\n</tool_response>"],
      },
      {
        name: "kimi_k25",
        model: "moonshotai/Kimi-K2.5",
        special: Object.fromEntries(KIMI_SPECIAL.map((token, i) => [token, 256 + i])),
        eos: "<|im_end|>",
        shows: ["tool_declare<|im_middle|>", "get_weather", `## Return of ${CALL_ID}\n18°C`],
      },
    ];
    const calls = [];
    for (const family of families) {
      const where = family.name;
      const recommended = recommendedRendererName(family.model);
      if (recommended !== family.name) {
        problems.push(`recommendedRendererName(${family.model}) is ${recommended}, not ${family.name}`);
      }
      const tokenizer = await tiktokenTokenizer({
        id: `synthetic-${family.name}`,
        ranks: BYTE_RANKS,
        specialTokens: family.special,
        pattern: /\S+|\s+/u,
        eosToken: family.eos,
      });
      const renderer = getRenderer(family.name, tokenizer);
      const messages = toolConversation();

      // The tool-call turn as trained: the generation prompt of what came before, then the turn.
      const prompt = renderer.buildGenerationPrompt(messages.slice(0, 1), { tools: TOOLS });
      const example = renderer.buildSupervisedExample(messages.slice(0, 2), { tools: TOOLS });
      const prefixOk = prompt.every((id, i) => example.tokens[i] === id);
      if (!prefixOk) problems.push(`${where}: the example does not start with the generation prompt`);
      const completion = example.tokens.slice(prompt.length);
      // Trained: the turn up to its stop token (Qwen's newline after <|im_end|> is not).
      const end = completion.findIndex((id) => renderer.stopSequences().includes(id)) + 1;
      const weights = example.weights.slice(prompt.length).join("");
      if (!(end > 0 && weights === "1".repeat(end) + "0".repeat(completion.length - end))) {
        problems.push(`${where}: the tool-call turn's weights are ${weights}`);
      }
      const parsed = renderer.parseResponse(completion);
      const call = parsed.message?.toolCalls?.[0];
      let args;
      try {
        args = typeof call?.arguments === "string" ? JSON.parse(call.arguments) : call?.arguments;
      } catch {
        args = call?.arguments;
      }
      if (
        !(
          parsed.termination === "stop" &&
          parsed.message.toolCalls.length === 1 &&
          call.name === "get_weather" &&
          JSON.stringify(args) === '{"city":"Paris"}' &&
          parsed.message.thinking === "I should look it up." &&
          parsed.message.content === ""
        )
      ) {
        problems.push(`${where}: parseResponse gave ${JSON.stringify(parsed)}`);
      }
      if (family.name === "kimi_k25" && call?.id !== CALL_ID) {
        problems.push(`${where}: tool call id ${call?.id}, not ${CALL_ID}`);
      }

      // The whole conversation: declaration, result and answer all rendered.
      const whole = renderer.buildSupervisedExample(messages, { tools: TOOLS });
      const text = tokenizer.decode(whole.tokens);
      for (const part of [...family.shows, "It is 18°C in Paris."]) {
        if (!text.includes(part)) problems.push(`${where}: the conversation lacks ${JSON.stringify(part)}`);
      }
      calls.push({ renderer: family.name, call: `${call?.name}(${JSON.stringify(args)})` });
    }

    let unknown;
    try {
      recommendedRendererName("acme/unknown-7B");
      unknown = "no error";
    } catch (error) {
      unknown = error instanceof ValidationError ? "ValidationError" : `unexpected ${describe(error)}`;
    }
    if (unknown !== "ValidationError") problems.push(`recommendedRendererName(unknown model): ${unknown}`);
    return { calls, unknownModel: unknown };
  });
}

const chat = (question, answer) => ({
  messages: [
    { role: "user", content: question },
    { role: "assistant", content: answer },
  ],
});
/** JSONL conversations: a blank line 3, so the records are lines 1, 2, 4, 5, 6. */
const JSONL = [
  chat("Hi", "Hello."),
  chat("2+2?", "4."),
  null,
  chat("Café?", "Oui."),
  chat("Bye", "Bye."),
  chat("3+3?", "6."),
]
  .map((record) => (record === null ? "" : JSON.stringify(record)))
  .join("\n");

/**
 * A stream of the text's UTF-8 bytes cut every `size` bytes (across lines) and inside every
 * multi-byte character (the `é` of Café), which readJsonl must join before decoding.
 */
function byteStream(text, size) {
  const bytes = new TextEncoder().encode(text);
  const cuts = new Set([bytes.length]);
  for (let i = 1; i < bytes.length; i++) {
    if (i % size === 0 || bytes[i - 1] >= 0xc0) cuts.add(i);
  }
  const ends = [...cuts].sort((x, y) => x - y);
  let at = 0;
  return new ReadableStream({
    pull(controller) {
      const end = ends.shift();
      if (end === undefined) return controller.close();
      controller.enqueue(bytes.slice(at, end));
      at = end;
    },
  });
}

export function supervisedCheck(sdk, toolkit, service, renderer) {
  const { ValidationError } = sdk;
  const { datasetFromConversations, readJsonl, trainSupervised } = toolkit;
  return check(async (problems) => {
    const records = [];
    for await (const record of readJsonl(byteStream(JSONL, 7))) records.push(record);
    const lines = records.map((r) => r.line);
    if (lines.join() !== "1,2,4,5,6") problems.push(`readJsonl lines [${lines}], not [1,2,4,5,6]`);
    if (records[2]?.value?.messages?.[0]?.content !== "Café?") {
      problems.push(`readJsonl line 4 read as ${JSON.stringify(records[2]?.value)}`);
    }

    let badLine;
    try {
      for await (const _ of readJsonl(byteStream('{"messages": []}\n\n{"messages": [\n{}\n', 5))) {
      }
      badLine = "no error";
    } catch (error) {
      badLine = error instanceof ValidationError ? error.issues?.[0]?.path : `unexpected ${describe(error)}`;
    }
    if (badLine !== "line 3") problems.push(`readJsonl of a bad line 3: ${badLine}`);

    // Five conversations, one held out: 4 training examples, batch 1, one epoch = 4 steps.
    const built = datasetFromConversations(
      renderer,
      records.map((r) => r.value.messages),
      { batchSize: 1, heldOut: 1, seed: 0 },
    );
    const training = await service.createLoraTrainingClient(BASE_MODEL, { rank: 4, seed: 0 });
    const baseLR = 2e-2;
    const metrics = [];
    const result = await trainSupervised({
      trainingClient: training,
      dataset: built.train,
      evalDataset: built.heldOut,
      learningRate: baseLR,
      // Linear decay over the run's 4 steps after 2 warmup steps: b/2, b, then b·(1 − (s − 2)/2).
      schedule: { kind: "linear", warmupSteps: 2 },
      onMetrics: (m) => metrics.push(m),
    });
    const want = [baseLR / 2, baseLR, baseLR, baseLR / 2];
    const close = (a, b) => Number.isFinite(a) && Math.abs(a - b) <= 1e-12 * b;
    const reported = metrics.map((m) => m.learningRate);
    const applied = metrics.map((m) => m.server["learning_rate:mean"]);
    if (!(result.step === 4 && metrics.length === 4 && metrics.every((m, i) => m.step === i + 1))) {
      problems.push(`trainSupervised ran ${result.step} steps, reported [${metrics.map((m) => m.step)}]`);
    }
    if (!(reported.length === 4 && reported.every((lr, i) => close(lr, want[i])))) {
      problems.push(`reported learning rates [${reported}], not [${want}]`);
    }
    if (!(applied.length === 4 && applied.every((lr, i) => close(lr, want[i])))) {
      problems.push(`the server applied learning rates [${applied}], not [${want}]`);
    }
    if (!metrics.every((m) => Number.isFinite(m.trainMeanNll) && m.trainMeanNll > 0)) {
      problems.push(`train mean NLL [${metrics.map((m) => m.trainMeanNll)}]`);
    }
    const evals = result.evaluations;
    if (
      !(
        evals.map((e) => e.step).join() === "0,4" &&
        evals.every((e) => Number.isFinite(e.nll) && e.nll > 0 && e.tokens > 0)
      )
    ) {
      problems.push(`held-out evaluations ${JSON.stringify(evals)}`);
    }
    return {
      jsonlLines: lines,
      badLine,
      steps: result.step,
      learningRates: reported,
      evalNll: evals.map((e) => e.nll),
    };
  });
}

export function rlCheck(toolkit, service, tokenizer) {
  const { envGroupBuilder, trainRL } = toolkit;
  return check(async (problems) => {
    const observation = [tokenizer.bosTokenId, ...tokenizer.encode("a:", { addSpecialTokens: false })];
    /** One turn: one byte; reward 1 when it is ASCII (about half of the untrained model's samples). */
    const makeEnv = () => ({
      initialObservation: () => ({ observation }),
      step: (action) => {
        const ascii = action[0] < 128 ? 1 : 0;
        return { reward: ascii, done: true, metrics: { ascii } };
      },
    });
    const groups = 2;
    const groupSize = 4;
    const reports = [];
    const result = await trainRL({
      service,
      baseModel: BASE_MODEL,
      lora: { rank: 4, seed: 0 },
      dataset: {
        length: 2,
        getBatch: () => Array.from({ length: groups }, () => envGroupBuilder(makeEnv)),
      },
      groupSize,
      maxTokens: 1,
      learningRate: 1e-2,
      seed: 0,
      onMetrics: (report) => reports.push(report),
    });
    const steps = reports.map((r) => r.step);
    if (!(result.steps === 2 && steps.join() === "0,1")) {
      problems.push(`trainRL ran ${result.steps} steps, reported steps [${steps}]`);
    }
    for (const { step, metrics: m } of reports) {
      const reward = m["reward/mean"];
      const kept = m["groups/count"] * (1 - m["groups/skipped_zero_advantage"]);
      if (
        !(
          reward >= 0 &&
          reward <= 1 &&
          m["env/ascii"] === reward &&
          m["groups/count"] === groups &&
          m["episodes/count"] === groups * groupSize &&
          m["tokens/action"] === groups * groupSize &&
          m["datums/count"] === Math.round(kept) * groupSize &&
          m["optim/lr"] === 1e-2
        )
      ) {
        problems.push(`step ${step} metrics ${JSON.stringify(m)}`);
      }
    }
    return { steps: reports.length, rewards: reports.map((r) => r.metrics["reward/mean"]) };
  });
}

function describe(error) {
  return `${error?.constructor?.name ?? typeof error}: ${error?.message ?? String(error)}`;
}
