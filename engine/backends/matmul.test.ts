import * as tf from '@tensorflow/tfjs-core';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { loadGemm, nativeGemmOrder } from './gemm.ts';
import { ensureGradients } from './gradients.ts';
import { setMatMulRoute } from './matmul.ts';
import { maxRelativeDiff, onCpu, randomValues, referenceMatMul } from './parity.ts';
import type { MatMulPath, NativeGemm } from './types.ts';
import { initWasmBackend } from './wasm.ts';

/**
 * Parity of the wasm matmul routes against the tfjs `cpu` backend, for every matmul form models use, and against
 * a float64 reference for general batch broadcasting (where the stock cpu and wasm kernels are wrong: they index
 * batches modulo the smaller batch).
 */

interface RouteCase {
  path: MatMulPath;
  gemm: NativeGemm | null;
  unavailable?: string;
}

const routes: RouteCase[] = nativeGemmOrder.map((path) => {
  try {
    return { path, gemm: loadGemm(path) };
  } catch (error) {
    return { path, gemm: null, unavailable: (error as Error).message };
  }
});
routes.push({ path: 'js-relayout', gemm: null });
for (const r of routes) if (r.unavailable) console.log(`matmul parity: skipping ${r.path}: ${r.unavailable}`);

type Case = [label: string, aShape: number[], bShape: number[], transposeA: boolean, transposeB: boolean];

const matMulCases: Case[] = [
  ['2-D', [37, 29], [29, 23], false, false],
  ['2-D transposeB', [37, 29], [23, 29], false, true],
  ['2-D transposeA', [29, 37], [29, 23], true, false],
  ['2-D both transposed', [29, 37], [23, 29], true, true],
  ['rank 3 batched', [3, 17, 19], [3, 19, 13], false, false],
  ['rank 3 batched transposeB', [3, 17, 19], [3, 13, 19], false, true],
  ['rank 3 batched transposeA', [3, 19, 17], [3, 19, 13], true, false],
  ['rank 3 batched both', [3, 19, 17], [3, 13, 19], true, true],
  ['rank 4 batched', [2, 3, 11, 7], [2, 3, 7, 5], false, false],
  ['rank 4 batched both', [2, 3, 7, 11], [2, 3, 5, 7], true, true],
  ['rank 3 × rank 2 (batch folded)', [4, 10, 16], [16, 8], false, false],
  ['rank 3 × rank 2 transposeB', [4, 10, 16], [8, 16], false, true],
  ['rank 3 transposeA × rank 2', [4, 16, 10], [16, 8], true, false],
  ['rank 2 × rank 3 (left broadcast)', [9, 6], [4, 6, 5], false, false],
  ['batch-1 left × batched right, both transposed', [1, 6, 9], [4, 5, 6], true, true],
  ['batched left × batch-1 right', [4, 9, 6], [1, 6, 5], false, false],
];

const broadcastCases: Case[] = [
  ['rank 4 cross broadcast [2,1]×[1,3]', [2, 1, 5, 7], [1, 3, 7, 4], false, false],
  ['rank 4 cross broadcast, transposed', [3, 1, 7, 5], [1, 2, 4, 7], true, true],
  ['rank 4 × rank 3 broadcast', [2, 1, 5, 7], [3, 7, 4], false, false],
];

const TOL = 2e-5;

function wasmDataIds(): number {
  return (tf.engine().findBackend('wasm') as unknown as { numDataIds(): number }).numDataIds();
}

async function expectedMatMul([, aShape, bShape, tA, tB]: Case, a: Float32Array, b: Float32Array) {
  return onCpu(() =>
    tf.tidy(() => {
      const y = tf.matMul(tf.tensor(a, aShape), tf.tensor(b, bShape), tA, tB);
      return { values: y.dataSync().slice(), shape: y.shape };
    }),
  );
}

beforeAll(async () => {
  await ensureGradients();
  await initWasmBackend();
});

describe.each(routes)('wasm matmul route $path', (route) => {
  let ids = 0;
  beforeEach(() => {
    if (!route.unavailable) setMatMulRoute(route.path, route.gemm, { minFlops: 0 });
    ids = wasmDataIds();
  });
  afterEach(() => {
    // kernels must free every temporary they allocate on the wasm heap
    expect(wasmDataIds()).toBe(ids);
  });

  it.skipIf(Boolean(route.unavailable)).each(matMulCases)('%s matches cpu', async (...c) => {
    const [, aShape, bShape, tA, tB] = c;
    const a = randomValues(tf.util.sizeFromShape(aShape), 1);
    const b = randomValues(tf.util.sizeFromShape(bShape), 2);
    const expected = await expectedMatMul(c, a, b);
    const actual = tf.tidy(() => {
      const y = tf.matMul(tf.tensor(a, aShape), tf.tensor(b, bShape), tA, tB);
      return { values: y.dataSync().slice(), shape: y.shape };
    });
    expect(actual.shape).toEqual(expected.shape);
    expect(maxRelativeDiff(actual.values, expected.values)).toBeLessThan(TOL);
  });

  it.skipIf(Boolean(route.unavailable)).each(broadcastCases)('%s matches a float64 reference', (...c) => {
    const [, aShape, bShape, tA, tB] = c;
    const a = randomValues(tf.util.sizeFromShape(aShape), 3);
    const b = randomValues(tf.util.sizeFromShape(bShape), 4);
    const expected = referenceMatMul(a, aShape, b, bShape, tA, tB);
    const actual = tf.tidy(() => {
      const y = tf.matMul(tf.tensor(a, aShape), tf.tensor(b, bShape), tA, tB);
      return { values: y.dataSync().slice(), shape: y.shape };
    });
    expect(actual.shape).toEqual(expected.shape);
    expect(maxRelativeDiff(actual.values, expected.values)).toBeLessThan(TOL);
  });

  it.skipIf(Boolean(route.unavailable))(
    'handles empty products: k = 0 gives zeros, m = 0 an empty result',
    () => {
      tf.tidy(() => {
        const zeros = tf.matMul(tf.zeros([4, 0]), tf.zeros([0, 3]));
        expect(zeros.shape).toEqual([4, 3]);
        expect(Array.from(zeros.dataSync())).toEqual(new Array(12).fill(0));
        expect(tf.matMul(tf.zeros([0, 5]), tf.ones([5, 3])).shape).toEqual([0, 3]);
      });
    },
  );

  const activations = ['linear', 'relu', 'relu6', 'elu', 'sigmoid', 'leakyrelu', 'prelu'] as const;
  it.skipIf(Boolean(route.unavailable)).each(activations)(
    '_FusedMatMul with bias and %s matches cpu',
    async (act) => {
      const aShape = [2, 9, 12];
      const bShape = [2, 7, 12];
      const a = randomValues(tf.util.sizeFromShape(aShape), 5);
      const b = randomValues(tf.util.sizeFromShape(bShape), 6);
      const bias = randomValues(7, 7);
      const alpha = randomValues(7, 8);
      const run = () =>
        tf.tidy(() =>
          tf.fused
            .matMul({
              a: tf.tensor(a, aShape),
              b: tf.tensor(b, bShape),
              transposeB: true,
              bias: tf.tensor(bias, [7]),
              activation: act,
              preluActivationWeights: act === 'prelu' ? tf.tensor(alpha, [7]) : undefined,
              leakyreluAlpha: 0.1,
            })
            .dataSync()
            .slice(),
        );
      const expected = await onCpu(run);
      expect(maxRelativeDiff(run(), expected)).toBeLessThan(TOL);
    },
  );

  const gradCases: Case[] = [
    ['2-D', [13, 11], [11, 7], false, false],
    ['2-D transposeB', [13, 11], [7, 11], false, true],
    ['2-D transposeA', [11, 13], [11, 7], true, false],
    ['2-D both', [11, 13], [7, 11], true, true],
    ['rank 3 batched', [3, 8, 6], [3, 6, 5], false, false],
    ['rank 3 batched transposeB', [3, 8, 6], [3, 5, 6], false, true],
    ['rank 4 batched both', [2, 2, 6, 8], [2, 2, 5, 6], true, true],
  ];
  it.skipIf(Boolean(route.unavailable)).each(gradCases)(
    'gradients through %s matMul match cpu',
    async (...c) => {
      const [, aShape, bShape, tA, tB] = c;
      const a = randomValues(tf.util.sizeFromShape(aShape), 9);
      const b = randomValues(tf.util.sizeFromShape(bShape), 10);
      const outShape = (await expectedMatMul(c, a, b)).shape;
      const w = randomValues(tf.util.sizeFromShape(outShape), 11);
      const run = () =>
        tf.tidy(() => {
          const weight = tf.tensor(w, outShape);
          const f = (x: tf.Tensor, y: tf.Tensor) => tf.sum(tf.mul(tf.matMul(x, y, tA, tB), weight));
          const [ga, gb] = tf.grads(f)([tf.tensor(a, aShape), tf.tensor(b, bShape)]);
          return [ga.dataSync().slice(), gb.dataSync().slice()];
        });
      const [ea, eb] = await onCpu(run);
      const [ga, gb] = run();
      expect(maxRelativeDiff(ga, ea)).toBeLessThan(TOL);
      expect(maxRelativeDiff(gb, eb)).toBeLessThan(TOL);
    },
  );

  it.skipIf(Boolean(route.unavailable))(
    'gradients through fused matMul with bias and relu match cpu',
    async () => {
      const a = randomValues(10 * 12, 12);
      const b = randomValues(12 * 6, 13);
      const bias = randomValues(6, 14);
      const w = randomValues(10 * 6, 15);
      const run = () =>
        tf.tidy(() => {
          const f = (x: tf.Tensor, y: tf.Tensor, z: tf.Tensor) =>
            tf.sum(
              tf.mul(
                tf.fused.matMul({ a: x as tf.Tensor2D, b: y as tf.Tensor2D, bias: z, activation: 'relu' }),
                tf.tensor(w, [10, 6]),
              ),
            );
          return tf
            .grads(f)([tf.tensor(a, [10, 12]), tf.tensor(b, [12, 6]), tf.tensor(bias, [6])])
            .map((g) => g.dataSync().slice());
        });
      const expected = await onCpu(run);
      const actual = run();
      for (let i = 0; i < 3; i++) expect(maxRelativeDiff(actual[i], expected[i])).toBeLessThan(TOL);
    },
  );
});

describe.each(routes.filter((r) => r.gemm))('native route $path with its default size threshold', (route) => {
  beforeEach(() => setMatMulRoute(route.path, route.gemm));

  it('routes both small and large batched products correctly', async () => {
    for (const c of [
      ['small', [2, 5, 4], [2, 3, 4], false, true],
      ['large', [2, 64, 96], [2, 80, 96], false, true],
      ['large transposeA', [3, 96, 64], [3, 96, 40], true, false],
    ] as Case[]) {
      const [, aShape, bShape, tA, tB] = c;
      const a = randomValues(tf.util.sizeFromShape(aShape), 16);
      const b = randomValues(tf.util.sizeFromShape(bShape), 17);
      const expected = await expectedMatMul(c, a, b);
      const actual = tf.tidy(() =>
        tf.matMul(tf.tensor(a, aShape), tf.tensor(b, bShape), tA, tB).dataSync().slice(),
      );
      expect(maxRelativeDiff(actual, expected.values)).toBeLessThan(TOL);
    }
  });
});
