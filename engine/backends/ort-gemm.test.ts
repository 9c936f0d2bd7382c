import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';
import { encodeMatMulModel } from './onnx-model.ts';
import { loadOrtGemm, ORT_PINNED_VERSION } from './ort-gemm.ts';
import { randomValues, referenceMatMul } from './parity.ts';

const require = createRequire(import.meta.url);

/** Contract test for the internal onnxruntime-node binding the matmul route depends on. */
describe('onnxruntime-node synchronous binding contract', () => {
  it('the installed and declared versions are the pinned one', () => {
    const installed = (require('onnxruntime-node/package.json') as { version: string }).version;
    const declared = (require('../../package.json') as { dependencies: Record<string, string> }).dependencies[
      'onnxruntime-node'
    ];
    expect(installed).toBe(ORT_PINNED_VERSION);
    expect(declared).toBe(ORT_PINNED_VERSION);
  });

  it('dist/binding exposes a synchronous InferenceSession with loadModel/run and initOrt', () => {
    const mod = require('onnxruntime-node/dist/binding') as {
      binding: {
        InferenceSession: new () => Record<string, unknown>;
        listSupportedBackends: () => unknown[];
      };
      initOrt: () => void;
    };
    expect(typeof mod.initOrt).toBe('function');
    mod.initOrt();
    const session = new mod.binding.InferenceSession();
    expect(typeof session.loadModel).toBe('function');
    expect(typeof session.run).toBe('function');
    expect(typeof session.dispose).toBe('function');
    const backends = mod.binding.listSupportedBackends() as { name: string }[];
    expect(backends.map((b) => b.name)).toContain('cpu');
  });

  it('the hand-encoded models load and write into pre-allocated outputs, for every transpose', () => {
    const gemm = loadOrtGemm({ threads: 1 });
    for (const [tA, tB] of [
      [false, false],
      [false, true],
      [true, false],
      [true, true],
    ] as const) {
      const [m, n, k] = [5, 4, 3];
      const a = randomValues(m * k, 1);
      const b = randomValues(k * n, 2);
      const c = new Float32Array(m * n);
      gemm.sgemm(tA, tB, m, n, k, a, b, c);
      const ref = referenceMatMul(a, tA ? [k, m] : [m, k], b, tB ? [n, k] : [k, n], tA, tB).values;
      for (let i = 0; i < c.length; i++) expect(c[i]).toBeCloseTo(ref[i], 5);
      const batched = new Float32Array(2 * m * n);
      const a2 = new Float32Array([...a, ...randomValues(m * k, 3)]);
      gemm.sgemmBatched(tA, tB, 2, 2, 1, m, n, k, a2, b, batched);
      const ref2 = referenceMatMul(a2, tA ? [2, k, m] : [2, m, k], b, tB ? [n, k] : [k, n], tA, tB).values;
      for (let i = 0; i < batched.length; i++) expect(batched[i]).toBeCloseTo(ref2[i], 5);
    }
  });

  it('unary, softmax and log-softmax may write over their input, a view into a larger array (the fused kernels do)', () => {
    const gemm = loadOrtGemm({ threads: 2 });
    const [rows, cols, offset] = [3, 1000, 17];
    const x = randomValues(rows * cols + 2 * offset, 4).map((v) => v * 8);
    const view = () => x.slice().subarray(offset, offset + rows * cols);
    const runs: [string, (a: Float32Array, b: Float32Array) => void][] = [
      ['Exp', (a, b) => gemm.unary!('Exp', a, b)],
      ['Tanh', (a, b) => gemm.unary!('Tanh', a, b)],
      ['Softmax', (a, b) => gemm.softmax!(a, b, rows, cols)],
      ['LogSoftmax', (a, b) => gemm.logSoftmax!(a, b, rows, cols)],
    ];
    for (const [, run] of runs) {
      const separate = new Float32Array(rows * cols);
      run(view(), separate);
      const inPlace = view();
      run(inPlace, inPlace);
      expect(Array.from(inPlace)).toEqual(Array.from(separate));
    }
    const ls = new Float32Array(rows * cols);
    gemm.logSoftmax!(view(), ls, rows, cols);
    const v = view();
    const max = Math.max(...v.subarray(0, cols));
    const lse = max + Math.log(v.subarray(0, cols).reduce((s, e) => s + Math.exp(e - max), 0));
    expect(ls[5]).toBeCloseTo(v[5] - lse, 5);
  });

  it('encodes symbolic dims and the com.microsoft domain only where needed', () => {
    const text = new TextDecoder().decode(
      encodeMatMulModel({ op: 'FusedMatMul', rankA: 3, rankB: 2, transA: true, transB: false }),
    );
    expect(text).toContain('com.microsoft');
    expect(text).toContain('transA');
    expect(() => encodeMatMulModel({ op: 'Gemm', rankA: 3, rankB: 2, transA: false, transB: false })).toThrow(
      /rank-2/,
    );
  });
});
