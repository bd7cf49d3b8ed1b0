/**
 * The supervised toolkit's pure parts: learning-rate schedules, datasets (seeded shuffles, batching,
 * positions, held-out split), the builders, and JSONL reading with line numbers in every error.
 */
import { describe, expect, it } from "vitest";
import { type Datum, ValidationError } from "../src/index.js";
import { ByteLevelTokenizer } from "../src/lib/tokenizer/index.js";
import {
  type ChatMessage,
  datasetFromConversations,
  datasetFromJsonl,
  datasetFromPromptCompletions,
  datumFromPromptCompletion,
  getRenderer,
  linearWarmupCosine,
  lrSchedule,
  readJsonl,
  scheduledAdam,
  seededPermutation,
  splitHeldOut,
  supervisedDataset,
} from "../src/toolkit/index.js";

const tokenizer = new ByteLevelTokenizer();
const renderer = getRenderer("role_colon", tokenizer);

/** The issues of the ValidationError `run` throws (fails if it throws anything else or nothing). */
function issuesOf(run: () => unknown): { path: string; message: string }[] {
  try {
    run();
  } catch (error) {
    expect(error).toBeInstanceOf(ValidationError);
    return (error as ValidationError).issues;
  }
  throw new Error("expected a ValidationError");
}

async function asyncIssuesOf(run: () => Promise<unknown>): Promise<{ path: string; message: string }[]> {
  try {
    await run();
  } catch (error) {
    expect(error).toBeInstanceOf(ValidationError);
    return (error as ValidationError).issues;
  }
  throw new Error("expected a ValidationError");
}

describe("lrSchedule", () => {
  it("constant: warmup to baseLR, then flat, past totalSteps too", () => {
    const s = lrSchedule({ kind: "constant", baseLR: 1, warmupSteps: 4 });
    expect([0, 1, 2, 3, 4, 5, 1000].map((i) => s.lrAt(i))).toEqual([0.25, 0.5, 0.75, 1, 1, 1, 1]);
    expect(lrSchedule({ kind: "constant", baseLR: 0.1 }).lrAt(0)).toBe(0.1);
  });

  it("linear: from baseLR at the end of warmup to minLR at totalSteps, then minLR", () => {
    const s = lrSchedule({ kind: "linear", baseLR: 1, totalSteps: 10, warmupSteps: 2, minLR: 0.2 });
    expect(s.lrAt(0)).toBe(0.5);
    expect(s.lrAt(1)).toBe(1);
    expect(s.lrAt(2)).toBe(1);
    expect(s.lrAt(6)).toBeCloseTo(0.6, 12); // halfway through the 8 decay steps
    expect(s.lrAt(9)).toBeCloseTo(0.3, 12);
    expect(s.lrAt(10)).toBe(0.2);
    expect(s.lrAt(50)).toBe(0.2);
    // Without warmup and floor it is the cookbook's 1 - step/total multiplier.
    const plain = lrSchedule({ kind: "linear", baseLR: 2, totalSteps: 4 });
    expect([0, 1, 2, 3].map((i) => plain.lrAt(i))).toEqual([2, 1.5, 1, 0.5]);
  });

  it("cosine: half a cosine from baseLR to minLR; equal to linearWarmupCosine", () => {
    const s = lrSchedule({ kind: "cosine", baseLR: 1, totalSteps: 8 });
    expect(s.lrAt(0)).toBe(1);
    expect(s.lrAt(4)).toBeCloseTo(0.5, 12);
    expect(s.lrAt(2)).toBeCloseTo((1 + Math.cos(Math.PI / 4)) / 2, 12);
    expect(s.lrAt(8)).toBe(0);
    const withWarmup = lrSchedule({
      kind: "cosine",
      baseLR: 0.02,
      totalSteps: 12,
      warmupSteps: 3,
      minLR: 0.002,
    });
    const legacy = linearWarmupCosine({
      peak: 0.02,
      totalSteps: 12,
      warmupSteps: 3,
      floor: 0.002,
      adam: { beta1: 0.8 },
    });
    for (let step = 0; step < 15; step++) {
      expect(legacy(step)).toEqual({ beta1: 0.8, learning_rate: withWarmup.lrAt(step) });
    }
    // Monotone after warmup.
    for (let step = 3; step < 14; step++)
      expect(withWarmup.lrAt(step + 1)).toBeLessThanOrEqual(withWarmup.lrAt(step));
  });

  it("scheduledAdam gives each step its rate with the other settings", () => {
    const adam = scheduledAdam(lrSchedule({ kind: "linear", baseLR: 1, totalSteps: 2 }), {
      weight_decay: 0.1,
    });
    expect([adam(0), adam(1)]).toEqual([
      { weight_decay: 0.1, learning_rate: 1 },
      { weight_decay: 0.1, learning_rate: 0.5 },
    ]);
  });

  it("rejects bad options with every problem named", () => {
    expect(
      issuesOf(() => lrSchedule({ kind: "cosine", baseLR: -1, warmupSteps: 1.5 })).map((i) => i.path),
    ).toEqual(["baseLR", "totalSteps", "warmupSteps"]);
    expect(
      issuesOf(() => lrSchedule({ kind: "linear", baseLR: 1, totalSteps: 3, warmupSteps: 4, minLR: 2 })).map(
        (i) => i.path,
      ),
    ).toEqual(["warmupSteps", "minLR"]);
    expect(issuesOf(() => lrSchedule({ kind: "constant", baseLR: 1, minLR: 0 }))[0]!.path).toBe("minLR");
    expect(issuesOf(() => lrSchedule({ kind: "step" as "linear", baseLR: 1, totalSteps: 2 }))[0]!.path).toBe(
      "kind",
    );
    expect(issuesOf(() => lrSchedule({ kind: "constant", baseLR: 1 }).lrAt(-1))[0]!.path).toBe("step");
    // linearWarmupCosine reports under its own names.
    expect(
      issuesOf(() => linearWarmupCosine({ peak: -1, totalSteps: 4, floor: 2 })).map((i) => i.path),
    ).toEqual(["peak", "floor"]);
  });
});

/** Datums told apart by their first target token. */
function numbered(n: number): Datum[] {
  return Array.from({ length: n }, (_, i) =>
    datumFromPromptCompletion(tokenizer, [i], [i + 1], { addEos: false }),
  );
}
const idOf = (d: Datum) =>
  Number(d.model_input.chunks[0]!.type === "encoded_text" ? d.model_input.chunks[0].tokens[0] : -1);

describe("supervisedDataset", () => {
  it("shuffles each epoch by (seed, epoch): a permutation, reproducible, different across epochs and seeds", () => {
    const data = numbered(20);
    const a = supervisedDataset(data, { batchSize: 3, seed: 5 });
    const b = supervisedDataset(data, { batchSize: 3, seed: 5 });
    const c = supervisedDataset(data, { batchSize: 3, seed: 6 });
    for (const epoch of [0, 1, 7]) {
      expect([...a.order(epoch)].sort((x, y) => x - y)).toEqual(data.map((_, i) => i));
      expect(b.order(epoch)).toEqual(a.order(epoch));
    }
    expect(a.order(1)).not.toEqual(a.order(0));
    expect(c.order(0)).not.toEqual(a.order(0));
    // Asking out of order gives the same answers (no iterator state).
    const late = a.batch(3, 2).map(idOf);
    a.batch(0, 0);
    expect(a.batch(3, 2).map(idOf)).toEqual(late);
    expect(supervisedDataset(data, { batchSize: 3, shuffle: false }).batch(4, 1).map(idOf)).toEqual([
      3, 4, 5,
    ]);
  });

  it("batches an epoch with or without its short last batch, and maps steps to positions", () => {
    const data = numbered(10);
    const keep = supervisedDataset(data, { batchSize: 4, seed: 1 });
    const drop = supervisedDataset(data, { batchSize: 4, seed: 1, dropLast: true });
    expect(keep.batchesPerEpoch).toBe(3);
    expect(drop.batchesPerEpoch).toBe(2);
    expect([0, 1, 2].map((i) => keep.batch(0, i).length)).toEqual([4, 4, 2]);
    expect(keep.batch(0, 0)).toEqual(drop.batch(0, 0));
    // One epoch covers every example once.
    const seen = [0, 1, 2].flatMap((i) => keep.batch(2, i).map(idOf)).sort((x, y) => x - y);
    expect(seen).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(keep.position(7)).toEqual({ epoch: 2, batch: 1 });
    const steps = [...keep.batches(2, 5)];
    expect(steps.map(({ step, epoch, batch }) => [step, epoch, batch])).toEqual([
      [2, 0, 2],
      [3, 1, 0],
      [4, 1, 1],
    ]);
    expect(steps[1]!.data).toEqual(keep.batch(1, 0));
    expect(() => keep.batch(0, 3)).toThrow(ValidationError);
  });

  it("rejects bad options", () => {
    expect(issuesOf(() => supervisedDataset([], { batchSize: 0, seed: -1 })).map((i) => i.path)).toEqual([
      "examples",
      "options.batchSize",
      "options.seed",
    ]);
    expect(
      issuesOf(() => supervisedDataset(numbered(3), { batchSize: 4, dropLast: true }))[0]!.message,
    ).toMatch(/only 3 examples/);
  });
});

describe("splitHeldOut", () => {
  it("is a seeded, disjoint, order-keeping split by count or fraction", () => {
    const items = Array.from({ length: 20 }, (_, i) => i);
    const split = splitHeldOut(items, 5, 3);
    expect(split.heldOut).toHaveLength(5);
    expect([...split.train, ...split.heldOut].sort((a, b) => a - b)).toEqual(items);
    expect(split.heldOut).toEqual([...split.heldOut].sort((a, b) => a - b));
    expect(splitHeldOut(items, 5, 3)).toEqual(split);
    expect(splitHeldOut(items, 5, 4).heldOut).not.toEqual(split.heldOut);
    expect(splitHeldOut(items, { fraction: 0.25 }, 3).heldOut).toHaveLength(5);
    expect(issuesOf(() => splitHeldOut(items, 20))[0]!.path).toBe("options.heldOut");
    expect(issuesOf(() => splitHeldOut(items, { fraction: 1 }))[0]!.path).toBe("options.heldOut.fraction");
  });

  it("differs from the epoch shuffles of the same seed", () => {
    expect(seededPermutation(20, 3, 2)).not.toEqual(seededPermutation(20, 3, 1, 0));
  });
});

const CHATS: ChatMessage[][] = Array.from({ length: 8 }, (_, i) => [
  { role: "user", content: `Question ${i}?` },
  { role: "assistant", content: `Answer ${i}.` },
  { role: "user", content: "And?" },
  { role: "assistant", content: "Done." },
]);

describe("dataset builders", () => {
  it("conversations: trained on every assistant turn by default, split and batched", () => {
    const built = datasetFromConversations(renderer, CHATS, { batchSize: 2, heldOut: 2, seed: 1 });
    expect(built.train.examples).toHaveLength(6);
    expect(built.heldOut).toHaveLength(2);
    expect(built.train.batchesPerEpoch).toBe(3);
    const weighted = (d: Datum) => d.loss_fn_inputs.weights!.data.filter((w) => w > 0).length;
    const everyTurn = datasetFromConversations(renderer, CHATS.slice(0, 1), { batchSize: 1 });
    const lastTurn = datasetFromConversations(renderer, CHATS.slice(0, 1), {
      batchSize: 1,
      trainOnWhat: "last_assistant_message",
    });
    // "Answer 0." + EOS, "Done." + EOS — against "Done." + EOS alone.
    expect(weighted(everyTurn.train.examples[0]!)).toBe(10 + 6);
    expect(weighted(lastTurn.train.examples[0]!)).toBe(6);
    // The same seed, the same split and batches.
    const again = datasetFromConversations(renderer, CHATS, { batchSize: 2, heldOut: 2, seed: 1 });
    expect(again.heldOut).toEqual(built.heldOut);
    expect(again.train.batch(1, 2)).toEqual(built.train.batch(1, 2));
  });

  it("prompt/completion pairs, with the failing pair named", () => {
    const built = datasetFromPromptCompletions(
      tokenizer,
      [
        { prompt: "2+2=", completion: "4" },
        { prompt: "3+3=", completion: "6" },
      ],
      { batchSize: 2 },
    );
    expect(built.train.examples[0]).toEqual(datumFromPromptCompletion(tokenizer, "2+2=", "4"));
    expect(built.heldOut).toEqual([]);
    expect(
      issuesOf(() =>
        datasetFromPromptCompletions(
          tokenizer,
          [
            { prompt: "a", completion: "b" },
            { prompt: "a", completion: 3 as unknown as string },
          ],
          { batchSize: 1 },
        ),
      ),
    ).toEqual([{ path: "pairs[1].completion", message: "must be a string or an array of token ids" }]);
    expect(
      issuesOf(() =>
        datasetFromConversations(renderer, [[{ role: "user", content: "hi" }]], { batchSize: 1 }),
      )[0]!.path,
    ).toBe("conversations[0].messages");
  });
});

const encoder = new TextEncoder();
const chat = (q: string, a: string) =>
  JSON.stringify({
    messages: [
      { role: "user", content: q },
      { role: "assistant", content: a },
    ],
  });

async function collect(source: Parameters<typeof readJsonl>[0], options?: Parameters<typeof readJsonl>[1]) {
  const out = [];
  for await (const record of readJsonl(source, options)) out.push(record);
  return out;
}

describe("readJsonl", () => {
  it("reads records with their line numbers from a byte stream cut anywhere, even inside a character", async () => {
    const text = `\uFEFF{"a":"é"}\r\n\n  \n{"b":[1,2]}\n{"c":"日本"}`;
    const bytes = encoder.encode(text);
    // Three-byte chunks split the two- and three-byte characters across chunks.
    const stream = new ReadableStream<Uint8Array>({
      start(controller) {
        for (let i = 0; i < bytes.length; i += 3) controller.enqueue(bytes.slice(i, i + 3));
        controller.close();
      },
    });
    const expected = [
      { line: 1, value: { a: "é" } },
      { line: 4, value: { b: [1, 2] } },
      { line: 5, value: { c: "日本" } },
    ];
    expect(await collect(stream)).toEqual(expected);
    expect(await collect(text)).toEqual(expected);
    expect(await collect(['{"x":', '1}\n{"y"', ":2}\n"])).toEqual([
      { line: 1, value: { x: 1 } },
      { line: 2, value: { y: 2 } },
    ]);
    // From a line reader: one line per chunk, without newlines.
    expect(await collect(['{"x":1}', "", '{"y":2}\n'], { linePerChunk: true })).toEqual([
      { line: 1, value: { x: 1 } },
      { line: 3, value: { y: 2 } },
    ]);
  });

  it("names the line of invalid JSON and of invalid UTF-8", async () => {
    const bad = await asyncIssuesOf(() => collect('{"ok":1}\n\n{"broken": }\n{"ok":2}\n'));
    expect(bad).toHaveLength(1);
    expect(bad[0]!.path).toBe("line 3");
    expect(bad[0]!.message).toMatch(/^is not valid JSON/);
    const bytes = new Uint8Array([...encoder.encode('{"a":1}\n{"b":"'), 0xff, ...encoder.encode('"}\n')]);
    expect(await asyncIssuesOf(() => collect(new Blob([bytes]).stream()))).toEqual([
      { path: "line 2", message: "is not valid UTF-8" },
    ]);
    expect((await asyncIssuesOf(() => collect(42 as unknown as string)))[0]!.path).toBe("source");
  });

  it("releases the stream when reading stops early", async () => {
    let cancelled = false;
    const stream = new ReadableStream<Uint8Array>({
      pull(controller) {
        controller.enqueue(encoder.encode('{"n":1}\n'));
      },
      cancel() {
        cancelled = true;
      },
    });
    for await (const record of readJsonl(stream)) {
      expect(record.line).toBe(1);
      break;
    }
    expect(cancelled).toBe(true);
  });
});

describe("datasetFromJsonl", () => {
  it("builds a conversation dataset from a stream", async () => {
    const lines = Array.from({ length: 6 }, (_, i) => chat(`Q${i}?`, `A${i}.`));
    const fromJsonl = await datasetFromJsonl(new Blob([lines.join("\n")]).stream(), {
      format: "conversations",
      renderer,
      batchSize: 2,
      heldOut: 1,
      seed: 2,
    });
    const direct = datasetFromConversations(
      renderer,
      lines.map((l) => JSON.parse(l).messages),
      { batchSize: 2, heldOut: 1, seed: 2 },
    );
    expect(fromJsonl.heldOut).toEqual(direct.heldOut);
    expect(fromJsonl.train.examples).toEqual(direct.train.examples);
  });

  it("names the line of a record that is not a conversation or cannot be trained", async () => {
    const blank = "";
    const source = [chat("a", "b"), blank, '{"message": []}'].join("\n");
    expect(
      await asyncIssuesOf(() =>
        datasetFromJsonl(source, { format: "conversations", renderer, batchSize: 1 }),
      ),
    ).toEqual([{ path: "line 3: messages", message: 'must be an array: { "messages": [...] }' }]);
    const noReply = [chat("a", "b"), JSON.stringify({ messages: [{ role: "user", content: "hi" }] })].join(
      "\n",
    );
    const issues = await asyncIssuesOf(() =>
      datasetFromJsonl(noReply, { format: "conversations", renderer, batchSize: 1 }),
    );
    expect(issues[0]!.path).toBe("line 2: messages");
    const badRole = JSON.stringify({ messages: [{ role: "robot", content: "x" }] });
    expect(
      (
        await asyncIssuesOf(() =>
          datasetFromJsonl(`${chat("a", "b")}\n${badRole}`, {
            format: "conversations",
            renderer,
            batchSize: 1,
          }),
        )
      )[0]!.path,
    ).toBe("line 2: messages[0].role");
    expect(
      await asyncIssuesOf(() =>
        datasetFromJsonl('{"prompt":"a","completion":"b"}\n{"prompt":"a"}', {
          format: "prompt_completion",
          tokenizer,
          batchSize: 1,
        }),
      ),
    ).toEqual([{ path: "line 2: completion", message: "must be a string" }]);
  });

  it("checks the options before reading anything", async () => {
    let pulled = false;
    // highWaterMark 0: pulled only when something reads it.
    const stream = new ReadableStream<Uint8Array>(
      {
        pull() {
          pulled = true;
        },
      },
      { highWaterMark: 0 },
    );
    const issues = await asyncIssuesOf(() =>
      datasetFromJsonl(stream, { format: "conversations", renderer, batchSize: 0 }),
    );
    expect(issues[0]!.path).toBe("options.batchSize");
    expect(
      (await asyncIssuesOf(() => datasetFromJsonl("", { format: "csv", batchSize: 1 } as never)))[0]!.path,
    ).toBe("options.format");
    expect(pulled).toBe(false);
    expect(
      (
        await asyncIssuesOf(() =>
          datasetFromJsonl("\n\n", { format: "conversations", renderer, batchSize: 1 }),
        )
      )[0]!.path,
    ).toBe("source");
  });
});
