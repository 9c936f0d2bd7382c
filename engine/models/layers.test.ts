import * as tf from '@tensorflow/tfjs-core';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { FrozenWeight } from '../backends/frozen.ts';
import { getMatMulRoute, setMatMulRoute } from '../backends/matmul.ts';
import { useTestBackend } from '../backends/testing.ts';
import { AdaptableLayer, inferenceContext } from './layers.ts';

/** Dense y = x·Wᵀ + b in plain JS, the reference. */
function dense(x: number[][], w: number[][], b: number[]): number[][] {
  return x.map((row) => w.map((wr, o) => wr.reduce((s, v, i) => s + v * row[i], b[o])));
}

function randomMatrix(rows: number, cols: number, seed: number): number[][] {
  let s = seed;
  const next = () => {
    s = (s * 1103515245 + 12345) % 2147483648;
    return s / 2147483648 - 0.5;
  };
  return Array.from({ length: rows }, () => Array.from({ length: cols }, next));
}

describe('AdaptableLayer Linear forward', () => {
  let route: ReturnType<typeof getMatMulRoute>;
  beforeAll(async () => {
    await useTestBackend();
    route = getMatMulRoute();
  });
  afterEach(() => {
    if (tf.getBackend() === 'wasm') setMatMulRoute(route.path, route.gemm);
  });

  // without a native GEMM on wasm, 1 row takes the (W·xᵀ)ᵀ form and 40 rows the x·Wᵀ form; every form must
  // give the dense product and its gradient
  for (const [rows, relayout] of [
    [1, false],
    [40, false],
    [1, true],
    [40, true],
  ] as const) {
    it(`matches the dense product and its input gradient with ${rows} row(s)${relayout ? ', JS re-layout matmuls' : ''}`, () => {
      if (relayout && tf.getBackend() === 'wasm') setMatMulRoute('js-relayout');
      const w = randomMatrix(12, 9, 1);
      const b = randomMatrix(1, 12, 2)[0];
      const x = randomMatrix(rows, 9, 3);
      const layer = new AdaptableLayer(
        'fc',
        'Linear',
        FrozenWeight.adopt(tf.tensor2d(w)),
        tf.tensor1d(b),
        'fc.weight',
      );
      const y = layer.forward(tf.tensor2d(x), inferenceContext());
      const expected = dense(x, w, b);
      const got = y.arraySync();
      for (let r = 0; r < rows; r++)
        for (let o = 0; o < 12; o++) expect(got[r][o]).toBeCloseTo(expected[r][o], 5);
      // d(sum(y·c))/dx = c·W
      const c = randomMatrix(rows, 12, 4);
      const grad = tf
        .grad((input: tf.Tensor) =>
          tf.sum(tf.mul(layer.forward(input as tf.Tensor2D, inferenceContext()), tf.tensor2d(c))),
        )(tf.tensor2d(x))
        .arraySync() as number[][];
      for (let r = 0; r < rows; r++) {
        for (let i = 0; i < 9; i++) {
          const ref = c[r].reduce((s, cv, o) => s + cv * w[o][i], 0);
          expect(grad[r][i]).toBeCloseTo(ref, 5);
        }
      }
    });
  }
});
