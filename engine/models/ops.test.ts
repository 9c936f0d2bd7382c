import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { useTestBackend } from '../backends/testing.ts';
import { activation, addShapes, attend, layerNorm, rmsNorm, weightedTokenNll } from './ops.ts';

/** Deterministic values in [-1, 1). */
function values(n: number, seed: number): number[] {
  let s = seed;
  return Array.from({ length: n }, () => {
    s = (s * 1103515245 + 12345) % 2147483648;
    return (s / 2147483648) * 2 - 1;
  });
}

type Rows = (flat: number[][]) => number[];

/**
 * Compares tfjs gradients of L = Σ c·f(inputs) with central differences of a float64 plain-JS f, so the
 * custom backward passes are checked against an independent forward definition.
 */
function checkGradients(
  shapes: number[][],
  tfOp: (...inputs: tf.Tensor[]) => tf.Tensor,
  reference: Rows,
  seed: number,
): void {
  const inputs = shapes.map((shape, i) =>
    values(
      shape.reduce((p, d) => p * d, 1),
      seed + i,
    ),
  );
  const outSize = reference(inputs).length;
  const c = values(outSize, seed + 99);
  const loss = (xs: number[][]) => reference(xs).reduce((s, y, i) => s + y * c[i], 0);
  const grads = tf.tidy(() =>
    tf
      .grads((...ts: tf.Tensor[]) => tf.sum(tf.mul(tfOp(...ts), tf.tensor(c, tfOp(...ts).shape))))(
        inputs.map((v, i) => tf.tensor(v, shapes[i])),
      )
      .map((g) => Array.from(g.dataSync())),
  );
  const h = 1e-5;
  inputs.forEach((input, k) => {
    input.forEach((_, j) => {
      const plus = inputs.map((v) => [...v]);
      const minus = inputs.map((v) => [...v]);
      plus[k][j] += h;
      minus[k][j] -= h;
      const numeric = (loss(plus) - loss(minus)) / (2 * h);
      expect(Math.abs(grads[k][j] - numeric)).toBeLessThan(2e-4 * Math.max(1, Math.abs(numeric)));
    });
  });
}

function rowsOf(flat: number[], width: number): number[][] {
  return Array.from({ length: flat.length / width }, (_, r) => flat.slice(r * width, (r + 1) * width));
}

const mean = (v: number[]) => v.reduce((s, x) => s + x, 0) / v.length;

describe('custom-gradient ops match finite differences of float64 references', () => {
  beforeAll(async () => {
    await useTestBackend();
  });

  it('layerNorm (input, weight, bias)', () => {
    checkGradients(
      [[3, 5], [5], [5]],
      (x, w, b) => layerNorm(x as tf.Tensor2D, w as tf.Tensor1D, b as tf.Tensor1D, 1e-5),
      ([x, w, b]) =>
        rowsOf(x, 5).flatMap((row) => {
          const mu = mean(row);
          const r = 1 / Math.sqrt(mean(row.map((v) => (v - mu) ** 2)) + 1e-5);
          return row.map((v, i) => (v - mu) * r * w[i] + b[i]);
        }),
      1,
    );
  });

  it('rmsNorm (input, weight)', () => {
    checkGradients(
      [[3, 6], [6]],
      (x, w) => rmsNorm(x as tf.Tensor2D, w as tf.Tensor1D, 1e-6),
      ([x, w]) =>
        rowsOf(x, 6).flatMap((row) => {
          const r = 1 / Math.sqrt(mean(row.map((v) => v * v)) + 1e-6);
          return row.map((v, i) => v * r * w[i]);
        }),
      2,
    );
  });

  const erf = (x: number): number => {
    // Abramowitz–Stegun 7.1.26 is too coarse for differences; integrate the Taylor series instead
    let term = x;
    let sum = x;
    for (let n = 1; n < 60; n++) {
      term *= (-x * x) / n;
      sum += term / (2 * n + 1);
    }
    return (2 / Math.sqrt(Math.PI)) * sum;
  };
  const acts: [string, (x: number) => number][] = [
    ['gelu_new', (x) => 0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (x + 0.044715 * x ** 3)))],
    ['gelu', (x) => 0.5 * x * (1 + erf(x / Math.SQRT2))],
    ['silu', (x) => x / (1 + Math.exp(-x))],
  ];
  for (const [name, f] of acts) {
    it(`activation ${name}`, () => {
      checkGradients(
        [[4, 5]],
        (x) => tf.mul(activation(name)(x), 3),
        ([x]) => x.map((v) => 3 * f(v)),
        3,
      );
    });
  }

  it.each([
    ['1/√d scale', {}],
    ['a custom scale and tanh soft-capping', { scale: 0.3, softcap: 0.8 }],
  ] as const)('attend (q, k, v) with a causal bias, %s', (_, opts: { scale?: number; softcap?: number }) => {
    const [b, h, t, d] = [1, 2, 3, 4];
    const bias = Array.from({ length: t * t }, (_, i) => (i % t <= Math.floor(i / t) ? 0 : -1e9));
    const scale = opts.scale ?? 1 / Math.sqrt(d);
    const cap = (x: number) => (opts.softcap ? opts.softcap * Math.tanh(x / opts.softcap) : x);
    checkGradients(
      [
        [b, h, t, d],
        [b, h, t, d],
        [b, h, t, d],
      ],
      (q, k, v) =>
        attend(q as tf.Tensor4D, k as tf.Tensor4D, v as tf.Tensor4D, tf.tensor4d(bias, [1, 1, t, t]), opts),
      ([q, k, v]) => {
        const out: number[] = [];
        for (let head = 0; head < h; head++) {
          const at = (m: number[], i: number, j: number) => m[(head * t + i) * d + j];
          for (let i = 0; i < t; i++) {
            const s = Array.from(
              { length: t },
              (_, j) =>
                cap(
                  Array.from({ length: d }, (_, e) => at(q, i, e) * at(k, j, e)).reduce((x, y) => x + y, 0) *
                    scale,
                ) + bias[i * t + j],
            );
            const m = Math.max(...s);
            const e = s.map((x) => Math.exp(x - m));
            const z = e.reduce((x, y) => x + y, 0);
            for (let c = 0; c < d; c++) out.push(e.reduce((acc, p, j) => acc + (p / z) * at(v, j, c), 0));
          }
        }
        return out;
      },
      4,
    );
  });

  it('weightedTokenNll (logits)', () => {
    const targets = [2, 0, 4];
    const weights = [1, 0, 0.5];
    checkGradients(
      [[3, 5]],
      (x) => weightedTokenNll(x as tf.Tensor2D, tf.tensor1d(targets, 'int32'), tf.tensor1d(weights)),
      ([x]) => [
        rowsOf(x, 5).reduce((s, row, r) => {
          const m = Math.max(...row);
          const lse = m + Math.log(row.reduce((a, v) => a + Math.exp(v - m), 0));
          return s + weights[r] * (lse - row[targets[r]]);
        }, 0),
      ],
      5,
    );
  });

  it('addShapes broadcasts like add', () => {
    checkGradients(
      [[3, 4], [4]],
      (a, b) => addShapes(a, b),
      ([a, b]) => a.map((v, i) => v + b[i % 4]),
      6,
    );
  });
});
