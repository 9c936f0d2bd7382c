/**
 * Debiased exponential moving average, as TensorBoard and W&B smooth loss curves: the running average is
 * divided by (1 − weightᵗ) so the first points are not pulled toward zero. Gaps (null) are carried over.
 */
export function emaSmooth(values: readonly (number | null)[], weight: number): (number | null)[] {
  if (weight <= 0) return [...values];
  const w = Math.min(weight, 0.999);
  let last = 0;
  let n = 0;
  return values.map((v) => {
    if (v === null || !Number.isFinite(v)) return null;
    last = last * w + (1 - w) * v;
    n += 1;
    return last / (1 - w ** n);
  });
}
