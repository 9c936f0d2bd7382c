import { describe, expect, it } from 'vitest';
import { thinSeries } from './thinning.ts';

const series = (n: number, y: (i: number) => number | null) =>
  Array.from({ length: n }, (_, i) => ({ step: i + 1, loss: y(i) }));

describe('thinSeries', () => {
  it('keeps the first and last point, and no more than asked', () => {
    const points = series(1000, (i) => Math.sin(i));
    const out = thinSeries(points, 100, (p) => p.loss);
    expect(out.length).toBeLessThanOrEqual(100);
    expect(out[0].step).toBe(1);
    expect(out.at(-1)?.step).toBe(1000);
    expect(out.map((p) => p.step)).toEqual([...out.map((p) => p.step)].sort((a, b) => a - b));
  });

  it('keeps a single-step loss spike and a dip that an even stride drops', () => {
    const points = series(1000, (i) => (i === 501 ? 50 : i === 733 ? -3 : 1));
    const stride = points.filter((_, i) => i % 10 === 0);
    expect(stride.some((p) => p.loss === 50)).toBe(false);
    const out = thinSeries(points, 100, (p) => p.loss);
    expect(out.some((p) => p.loss === 50)).toBe(true);
    expect(out.some((p) => p.loss === -3)).toBe(true);
  });

  it('keeps the lowest and highest of every bucket in step order', () => {
    const points = series(12, (i) => [0, 5, 1, 9, 2, 3, 8, 0, 4, 7, 6, 1][i]);
    // 10 points: first, last, 4 buckets of the 10 inner points, two each
    const out = thinSeries(points, 10, (p) => p.loss).map((p) => p.loss);
    expect(out).toEqual([0, 5, 1, 9, 2, 8, 0, 4, 7, 1]);
  });

  it('keeps a point for a bucket of skipped steps, and evenly spaced rows without a value', () => {
    const points = series(100, (i) => (i >= 40 && i < 60 ? null : 1));
    const out = thinSeries(points, 12, (p) => p.loss);
    expect(out.some((p) => p.loss === null)).toBe(true);
    expect(
      thinSeries(
        series(11, () => 0),
        3,
      ).map((p) => p.step),
    ).toEqual([1, 6, 11]);
    expect(
      thinSeries(
        series(3, () => 0),
        10,
      ),
    ).toHaveLength(3);
  });
});
