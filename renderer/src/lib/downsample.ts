/**
 * Keeps at most `max` points of a series for drawing: the first and last point always, and in between the point
 * of each bucket that is farthest from its bucket's mean, so spikes survive (a cheap cousin of LTTB).
 */
export function downsample<T>(points: readonly T[], max: number, value: (p: T) => number | null): T[] {
  if (points.length <= max || max < 3) return [...points];
  const out: T[] = [points[0]];
  const inner = points.length - 2;
  const buckets = max - 2;
  for (let b = 0; b < buckets; b++) {
    const start = 1 + Math.floor((b * inner) / buckets);
    const end = 1 + Math.floor(((b + 1) * inner) / buckets);
    let sum = 0;
    let count = 0;
    for (let i = start; i < end; i++) {
      const v = value(points[i]);
      if (v !== null && Number.isFinite(v)) {
        sum += v;
        count += 1;
      }
    }
    const mean = count > 0 ? sum / count : 0;
    let best = start;
    let bestDist = -1;
    for (let i = start; i < end; i++) {
      const v = value(points[i]);
      const dist = v === null || !Number.isFinite(v) ? -1 : Math.abs(v - mean);
      if (dist > bestDist) {
        bestDist = dist;
        best = i;
      }
    }
    if (end > start) out.push(points[best]);
  }
  out.push(points[points.length - 1]);
  return out;
}

/** Keeps at most `max` evenly spaced indices of `n`, always the first and the last. */
export function evenIndices(n: number, max: number): number[] {
  if (n <= max) return Array.from({ length: n }, (_, i) => i);
  const out = new Set<number>();
  for (let i = 0; i < max; i++) out.add(Math.round((i * (n - 1)) / (max - 1)));
  return [...out].sort((a, b) => a - b);
}
