/**
 * What every bench case shares: the figure it reports and the one line bench/run.ts reads
 * (`RESULT {json}`), plus the two statistics the cases print.
 */

/** One figure of a bench case. `id` is the measure's letter in issue #7 plus a digit. */
export interface BenchResult {
  id: string;
  measure: string;
  value: number;
  unit: string;
  /** `< n`, `≤ n`, `> n` or `≥ n`: bench/run.ts marks the figure met or not. */
  target?: string;
  detail?: string;
}

/** Prints the line bench/run.ts collects into its summary table. */
export function report(result: BenchResult): void {
  console.log(`RESULT ${JSON.stringify(result)}`);
}

export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/** `min–max` of the samples, for the detail column. */
export function spread(values: readonly number[], digits = 0): string {
  return `${Math.min(...values).toFixed(digits)}–${Math.max(...values).toFixed(digits)}`;
}
