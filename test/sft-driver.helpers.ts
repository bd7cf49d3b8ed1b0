/** Reading examples/toolkit/sft-driver.ts's output: its per-step metrics lines. */

export interface StepLine {
  step: number;
  epoch: number;
  batch: number;
  /** As printed (5 decimals), to compare with the schedule's rate formatted the same way. */
  lr: string;
  trainNll: number;
  heldOutNll?: number;
  checkpoint?: string;
}

const STEP =
  /^step +(\d+) epoch (\d+) batch (\d+) lr (\S+) train_nll (\S+) tokens \d+ time \d+ms(?: held_out_nll (\S+))?(?: checkpoint (\S+))?$/;

/** Every `step N epoch … lr … train_nll …` line of `text`, in order. */
export function stepLines(text: string): StepLine[] {
  return text
    .split("\n")
    .map((line) => STEP.exec(line))
    .filter((m) => m !== null)
    .map((m) => ({
      step: Number(m[1]),
      epoch: Number(m[2]),
      batch: Number(m[3]),
      lr: m[4]!,
      trainNll: Number(m[5]),
      ...(m[6] === undefined ? {} : { heldOutNll: Number(m[6]) }),
      ...(m[7] === undefined ? {} : { checkpoint: m[7] }),
    }));
}
