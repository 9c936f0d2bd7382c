import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureGradients } from './gradients.ts';
import { getMatMulRoute, setMatMulRoute } from './matmul.ts';
import { NATIVE_UNARY_MIN_ELEMENTS } from './native-unary.ts';
import { loadOrtGemm } from './ort-gemm.ts';
import { randomValues } from './parity.ts';
import { initWasmBackend } from './wasm.ts';

let saved: ReturnType<typeof getMatMulRoute>;

beforeAll(async () => {
  await ensureGradients();
  await initWasmBackend();
  saved = getMatMulRoute();
  setMatMulRoute('onnxruntime-mlas', loadOrtGemm());
});

afterAll(() => setMatMulRoute(saved.path, saved.gemm));

/** float64 references, written independently of both the wasm and the native kernels. */
const reference: Record<string, (x: number) => number> = {
  tanh: Math.tanh,
  exp: Math.exp,
  sigmoid: (x) => 1 / (1 + Math.exp(-x)),
  // Simpson's rule on 2/√π·e^(−t²) over [0, x]: error far below float32 rounding at 2,000 intervals
  erf: (x) => {
    const n = 2000;
    const h = x / n;
    let sum = 0;
    for (let i = 0; i <= n; i++) {
      const w = i === 0 || i === n ? 1 : i % 2 === 1 ? 4 : 2;
      sum += w * Math.exp(-(i * h) * (i * h));
    }
    return ((2 / Math.sqrt(Math.PI)) * sum * h) / 3;
  },
};

describe('tanh, exp, sigmoid and erf through onnxruntime on large tensors', () => {
  for (const size of [NATIVE_UNARY_MIN_ELEMENTS - 1, NATIVE_UNARY_MIN_ELEMENTS * 3 + 5]) {
    // MLAS's tanh and logistic are rational approximations: a few float32 ulps absolute, which is also what
    // GPU backends give; exp is accurate to float32 rounding relative to the value
    it(`match float64 references: tanh, sigmoid, erf within 5e-7 absolute, exp within 2e-7 relative (${size} elements)`, () => {
      const x = randomValues(size, size).map((v) => v * 8);
      const ops: Record<string, (t: tf.Tensor) => tf.Tensor> = {
        tanh: tf.tanh,
        exp: tf.exp,
        sigmoid: tf.sigmoid,
        erf: tf.erf,
      };
      for (const [name, op] of Object.entries(ops)) {
        const got = tf.tidy(() => op(tf.tensor1d(x)).dataSync());
        let worst = 0;
        for (let i = 0; i < size; i++) {
          const want = reference[name](x[i]);
          const error = Math.abs(got[i] - want);
          worst = Math.max(worst, name === 'exp' ? error / want : error);
        }
        expect(worst, name).toBeLessThan(name === 'exp' ? 2e-7 : 5e-7);
      }
    });
  }

  it('the stock kernels run again once the route has no native library', () => {
    const x = randomValues(NATIVE_UNARY_MIN_ELEMENTS * 2, 5);
    const native = tf.tidy(() => tf.tanh(tf.tensor1d(x)).dataSync());
    setMatMulRoute('js-relayout');
    try {
      const stock = tf.tidy(() => tf.tanh(tf.tensor1d(x)).dataSync());
      let worst = 0;
      for (let i = 0; i < x.length; i++) worst = Math.max(worst, Math.abs(stock[i] - native[i]));
      expect(worst).toBeLessThan(1e-6);
    } finally {
      setMatMulRoute('onnxruntime-mlas', loadOrtGemm());
    }
  });
});
