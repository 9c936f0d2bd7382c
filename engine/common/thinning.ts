/**
 * The one rule for thinning a series before it is drawn, used by the engine's replies (`runs.status`,
 * `analysis.get`, `analysis.compare`) and by the UI's live series alike, so a chart shows the same points
 * whichever side thinned it. The first and the last point stay; the points between fall into equal buckets,
 * and each bucket keeps its lowest and its highest value in step order, so a loss spike or dip is never
 * dropped. Without a value (rows of several series), each bucket keeps its middle point: evenly spaced picks.
 * This file imports nothing: the engine and the renderer both bundle it.
 */
export function thinSeries<T>(points: readonly T[], max: number, value?: (p: T) => number | null): T[] {
  const n = points.length;
  if (n <= max) return [...points];
  if (max <= 2) return max <= 0 ? [] : max === 1 ? [points[n - 1]] : [points[0], points[n - 1]];
  const perBucket = value && max >= 4 ? 2 : 1;
  const buckets = Math.floor((max - 2) / perBucket);
  const inner = n - 2;
  const out: T[] = [points[0]];
  for (let b = 0; b < buckets; b++) {
    const start = 1 + Math.floor((b * inner) / buckets);
    const end = 1 + Math.floor(((b + 1) * inner) / buckets);
    if (end <= start) continue;
    if (perBucket === 1 || !value) {
      out.push(points[start + Math.floor((end - start - 1) / 2)]);
      continue;
    }
    let lo = -1;
    let hi = -1;
    for (let i = start; i < end; i++) {
      const v = value(points[i]);
      if (v === null || !Number.isFinite(v)) continue;
      if (lo < 0 || v < (value(points[lo]) as number)) lo = i;
      if (hi < 0 || v > (value(points[hi]) as number)) hi = i;
    }
    // a bucket of skipped (non-finite) steps keeps one point, so the gap still shows
    if (lo < 0) out.push(points[start]);
    else if (lo === hi) out.push(points[lo]);
    else out.push(points[Math.min(lo, hi)], points[Math.max(lo, hi)]);
  }
  out.push(points[n - 1]);
  return out;
}
