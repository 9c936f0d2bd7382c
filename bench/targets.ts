/** A performance target of the bench, as a ratio: `≥ 1.0×` or `≤ 0.8×`. */
export interface Target {
  op: '≥' | '≤';
  value: number;
}

/** Two decimals, as the ratios print. */
export const ratio2 = (x: number): number => Number(x.toFixed(2));

/** `target ≥ 1.0×: met` (judged on the printed two-decimal ratio). */
export function targetNote(ratio: number, target: Target): string {
  const shown = ratio2(ratio);
  const met = target.op === '≥' ? shown >= target.value : shown <= target.value;
  return `target ${target.op} ${target.value.toFixed(1)}×: ${met ? 'met' : 'not met'}`;
}
