/**
 * The page script: fine-tune a LoRA adapter on the embedded backend, plot the loss after every
 * step, then answer each training question greedily. Then the box under the answers asks the
 * fine-tune anything, its reply streamed token by token through the backend's OpenAI-compatible
 * route (tinker-ts/openai).
 *
 * It runs on the page's main thread to stay short; each step blocks the page for a fraction of a
 * second, so a real app would move the same code into a Web Worker. Bundle it (SDK included)
 * with esbuild, as README.md shows. Outside this repository, import from "tinker-ts",
 * "tinker-ts/local" and "tinker-ts/openai".
 */
import { type Datum, datum, ModelInput, ServiceClient } from "tinker-ts";
import { BUILTIN_BASE_MODEL, createLocalTinker, decodeTokens, type LocalTinker } from "tinker-ts/local";
import { chunkText, TinkerOpenAI } from "tinker-ts/openai";
import { promptTokens, QA_PAIRS, supervisedExample } from "../qa-dataset.js";

const STEPS = 30;
const LEARNING_RATE = 1e-2; // large, because the model is tiny
const PAIRS = QA_PAIRS.slice(0, 6);

const chart = document.querySelector<SVGSVGElement>("#chart")!;
const status = document.querySelector<HTMLElement>("#status")!;
const answers = document.querySelector<HTMLUListElement>("#answers")!;
const before = document.querySelector<HTMLElement>("#before")!;
const chatForm = document.querySelector<HTMLFormElement>("#chat")!;
const chatInput = document.querySelector<HTMLInputElement>("#chat-input")!;
const chatOutput = document.querySelector<HTMLElement>("#chat-output")!;

/** Redraws the curve; the plotted values also go to `data-losses` for anyone reading the page. */
function plot(losses: number[]): void {
  const [width, height, pad] = [640, 260, 40];
  const top = Math.max(...losses);
  const x = (step: number) => pad + ((width - 2 * pad) * step) / (STEPS - 1);
  const y = (loss: number) => height - pad - ((height - 2 * pad) * loss) / top;
  const points = losses.map((loss, i) => `${x(i).toFixed(1)},${y(loss).toFixed(1)}`).join(" ");
  chart.innerHTML = `
    <line class="axis" x1="${pad}" y1="${height - pad}" x2="${width - pad}" y2="${height - pad}" />
    <line class="axis" x1="${pad}" y1="${pad}" x2="${pad}" y2="${height - pad}" />
    <text x="${pad}" y="${pad - 14}">loss per answer token</text>
    <text x="${pad - 6}" y="${pad + 4}" text-anchor="end">${top.toFixed(1)}</text>
    <text x="${pad - 6}" y="${height - pad + 4}" text-anchor="end">0</text>
    <text x="${width - pad}" y="${height - 12}" text-anchor="end">step ${losses.length} / ${STEPS}</text>
    <polyline class="curve" points="${points}" />`;
  chart.dataset.losses = losses.map((loss) => loss.toFixed(4)).join(",");
}

/** Lets the browser paint before the next (blocking) step. */
const nextFrame = () => new Promise<void>((resolve) => requestAnimationFrame(() => resolve()));

async function main(): Promise<void> {
  // The embedded backend is a fetch handler; the client calls it instead of the network.
  const local = createLocalTinker();
  let chatting = false;
  const service = new ServiceClient({
    apiKey: "tml-local",
    baseURL: "http://local.tinker",
    fetch: local.fetch,
  });
  try {
    status.textContent = "Creating a LoRA training client…";
    const training = await service.createLoraTrainingClient(BUILTIN_BASE_MODEL, { rank: 16, seed: 0 });

    // What fine-tuning starts from: the base model is untrained, so its answer is random bytes.
    status.textContent = "Asking the untrained base model…";
    const base = await service.createSamplingClient({ baseModel: BUILTIN_BASE_MODEL });
    const first = await base.sample(ModelInput.fromInts(promptTokens(PAIRS[0]!.question)), 1, {
      max_tokens: 12,
      temperature: 0,
      stop: ["\n"],
    });
    before.textContent =
      `Before training, the base model is untrained and answers "${PAIRS[0]!.question}" with random ` +
      `bytes: ${JSON.stringify(decodeTokens(first.sequences[0]!.tokens).trim())}. Fine-tuning follows.`;

    // One next-token datum per pair, with the loss on the answer tokens only.
    const batch: Datum[] = PAIRS.map(({ question, answer }) => {
      const { input, targets, weights } = supervisedExample(question, answer);
      return datum(ModelInput.fromInts(input), { target_tokens: targets, weights });
    });
    const answerTokens = batch.reduce(
      (n, d) => n + d.loss_fn_inputs.weights!.data.reduce((a, b) => a + b, 0),
      0,
    );

    const losses: number[] = [];
    for (let step = 1; step <= STEPS; step++) {
      // Queue both operations at once; the backend runs them in call order.
      const [output] = await Promise.all([
        training.forwardBackward(batch, "cross_entropy"),
        training.optimStep({ learning_rate: LEARNING_RATE }),
      ]);
      losses.push(output.metrics["loss:sum"]! / answerTokens);
      plot(losses);
      status.textContent = `Training: step ${step} of ${STEPS}, loss ${losses.at(-1)!.toFixed(4)}`;
      await nextFrame();
    }

    // Freeze the adapter into a sampler and answer each question greedily.
    status.textContent = "Sampling…";
    const sampler = await training.saveWeightsAndGetSamplingClient();
    for (const { question, answer } of PAIRS) {
      const result = await sampler.sample(ModelInput.fromInts(promptTokens(question)), 1, {
        max_tokens: 24,
        temperature: 0,
        stop: ["\n"],
      });
      const text = decodeTokens(result.sequences[0]!.tokens).trim();
      const item = document.createElement("li");
      item.className = text === answer ? "ok" : "wrong";
      item.innerHTML = `<span class="q"></span> <b class="a"></b>`;
      item.querySelector(".q")!.textContent = `${question} →`;
      item.querySelector(".a")!.textContent = text;
      answers.append(item);
    }
    // Named sampler weights: a `tinker://` path, the model string of the OpenAI-compatible route.
    const { path } = await training.saveWeightsForSampler("browser-chat");
    startChat(local, path);
    chatting = true;
    status.textContent = `Done: loss ${losses[0]!.toFixed(3)} → ${losses.at(-1)!.toFixed(4)} in ${STEPS} steps.`;
    status.dataset.state = "done";
  } catch (error) {
    status.textContent = `Failed: ${error}`;
    status.dataset.state = "error";
    throw error;
  } finally {
    await service.close();
    // The chat box keeps using the backend for as long as the page is open.
    if (!chatting) await local.close();
  }
}

/**
 * The chat box: each question goes to the fine-tune in the format it was trained on ("Q: …\nA:")
 * as a streamed text completion, and the reply is shown piece by piece as the tokens are drawn.
 */
function startChat(local: LocalTinker, model: string): void {
  const client = new TinkerOpenAI({
    apiKey: "tml-local",
    baseURL: "http://local.tinker",
    fetch: local.fetch,
  });
  chatForm.hidden = false;
  chatForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    chatOutput.textContent = "";
    chatOutput.dataset.state = "streaming";
    let pieces = 0;
    try {
      const stream = await client.completions.create({
        model,
        prompt: `Q: ${chatInput.value.trim()}\nA:`,
        max_tokens: 48,
        temperature: 0,
        stop: ["\n"],
        stream: true,
      });
      for await (const chunk of stream) {
        const text = chunkText(chunk);
        if (text === "") continue;
        chatOutput.textContent += text;
        chatOutput.dataset.pieces = String(++pieces);
        await nextFrame(); // paint each piece
      }
      chatOutput.dataset.state = "done";
    } catch (error) {
      chatOutput.textContent = `Failed: ${error}`;
      chatOutput.dataset.state = "error";
    }
  });
}

void main();
