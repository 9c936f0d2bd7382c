import { createRequire } from 'node:module';
import { nativeThreads } from './native-libs.ts';
import { encodeMatMulModel, encodeNodeModel, type MatMulModelSpec } from './onnx-model.ts';
import type { NativeActivationOp, NativeBinaryOp, NativeGemm, NativeUnaryOp } from './types.ts';

/**
 * The onnxruntime-node version whose internal binding this file was written against. The binding
 * (`onnxruntime-node/dist/binding`) is not public API: `ort-gemm.test.ts` pins the version and checks its shape.
 */
export const ORT_PINNED_VERSION = '1.30.0';

const require = createRequire(import.meta.url);

/** What the native `InferenceSession.run` reads from a tensor: plain objects are enough. */
interface OrtTensorLike {
  type: 'float32';
  location: 'cpu';
  dims: number[];
  data: Float32Array;
}

interface OrtNativeSession {
  loadModel(buffer: ArrayBuffer, byteOffset: number, byteLength: number, options: object): void;
  run(feeds: Record<string, OrtTensorLike>, fetches: Record<string, OrtTensorLike>, options: object): unknown;
  dispose(): void;
}

interface OrtBindingModule {
  binding: {
    InferenceSession: new () => OrtNativeSession;
    listSupportedBackends: () => { name: string; bundled: boolean }[];
  };
  initOrt: () => void;
}

export interface OrtGemmOptions {
  /** Intra-op threads for MLAS; defaults to the machine's parallelism, at most 8. */
  threads?: number;
}

function tensor(data: Float32Array, dims: number[]): OrtTensorLike {
  return { type: 'float32', location: 'cpu', dims, data };
}

/**
 * Loads onnxruntime-node's bundled MLAS as a synchronous GEMM. Throws with the reason when the package,
 * its native binding or the pinned version is missing.
 */
export function loadOrtGemm(options: OrtGemmOptions = {}): NativeGemm {
  const { version } = require('onnxruntime-node/dist/version') as { version: string };
  if (version !== ORT_PINNED_VERSION) {
    throw new Error(
      `onnxruntime-node ${version} is installed, but the synchronous binding is only verified for ${ORT_PINNED_VERSION}`,
    );
  }
  const mod = require('onnxruntime-node/dist/binding') as OrtBindingModule;
  mod.initOrt();
  const threads = options.threads ?? nativeThreads();
  const sessionOptions = {
    intraOpNumThreads: threads,
    interOpNumThreads: 1,
    executionMode: 'sequential',
    graphOptimizationLevel: 'all',
    // spinning intra-op threads would starve the JS thread between GEMMs
    extra: { session: { intra_op: { allow_spinning: '0' }, inter_op: { allow_spinning: '0' } } },
  };
  const sessions = new Map<string, OrtNativeSession>();
  const cached = (key: string, encode: () => Uint8Array): OrtNativeSession => {
    let s = sessions.get(key);
    if (!s) {
      const model = encode();
      s = new mod.binding.InferenceSession();
      s.loadModel(model.buffer as ArrayBuffer, model.byteOffset, model.byteLength, sessionOptions);
      sessions.set(key, s);
    }
    return s;
  };
  const session = (spec: MatMulModelSpec): OrtNativeSession =>
    cached(`${spec.op}:${spec.rankA}:${spec.rankB}:${spec.transA}:${spec.transB}`, () =>
      encodeMatMulModel(spec),
    );
  const unarySession = (op: NativeUnaryOp): OrtNativeSession =>
    cached(op, () =>
      encodeNodeModel({ op, inputs: [{ name: 'X', rank: 1 }], outputs: [{ name: 'Y', rank: 1 }] }),
    );
  const activationSession = (op: NativeActivationOp): OrtNativeSession =>
    cached(op, () =>
      encodeNodeModel({
        op,
        domain: 'com.microsoft',
        inputs: [{ name: 'X', rank: 1 }],
        outputs: [{ name: 'Y', rank: 1 }],
        // QuickGelu is x·sigmoid(αx): SiLU at α = 1
        floatAttributes: op === 'QuickGelu' ? { alpha: 1 } : undefined,
      }),
    );
  const binarySession = (op: NativeBinaryOp): OrtNativeSession =>
    cached(op, () =>
      encodeNodeModel({
        op,
        inputs: [
          { name: 'A', rank: 3 },
          { name: 'B', rank: 3 },
        ],
        outputs: [{ name: 'Y', rank: 3 }],
      }),
    );
  const rowSession = (op: 'Softmax' | 'LogSoftmax'): OrtNativeSession =>
    cached(op, () =>
      encodeNodeModel({ op, inputs: [{ name: 'X', rank: 2 }], outputs: [{ name: 'Y', rank: 2 }] }),
    );
  const runOptions = {};

  const sgemm: NativeGemm['sgemm'] = (transA, transB, m, n, k, a, b, c) => {
    const s = session({ op: 'Gemm', rankA: 2, rankB: 2, transA, transB });
    s.run(
      { A: tensor(a, transA ? [k, m] : [m, k]), B: tensor(b, transB ? [n, k] : [k, n]) },
      { Y: tensor(c, [m, n]) },
      runOptions,
    );
  };

  const gemm: NativeGemm = {
    path: 'onnxruntime-mlas',
    details: {
      package: `onnxruntime-node ${version}`,
      binding: 'onnxruntime-node/dist/binding (synchronous)',
      intraOpThreads: threads,
      allowSpinning: false,
      elementwise:
        'Tanh, Exp, Sigmoid, Erf, FastGelu, QuickGelu, Gelu, Softmax and LogSoftmax on large tensors',
    },
    // one run costs tens of microseconds of binding overhead
    minFlops: 1 << 17,
    sgemm,
    unary(op, x, y) {
      unarySession(op).run({ X: tensor(x, [x.length]) }, { Y: tensor(y, [y.length]) }, runOptions);
    },
    activation(op, x, y) {
      activationSession(op).run({ X: tensor(x, [x.length]) }, { Y: tensor(y, [y.length]) }, runOptions);
    },
    binary(op, a, aDims, b, bDims, y) {
      const yDims = aDims.map((d, i) => Math.max(d, bDims[i]));
      binarySession(op).run(
        { A: tensor(a, aDims), B: tensor(b, bDims) },
        { Y: tensor(y, yDims) },
        runOptions,
      );
    },
    softmax(x, y, rows, cols) {
      rowSession('Softmax').run({ X: tensor(x, [rows, cols]) }, { Y: tensor(y, [rows, cols]) }, runOptions);
    },
    logSoftmax(x, y, rows, cols) {
      rowSession('LogSoftmax').run(
        { X: tensor(x, [rows, cols]) },
        { Y: tensor(y, [rows, cols]) },
        runOptions,
      );
    },
    sgemmBatched(transA, transB, batch, batchA, batchB, m, n, k, a, b, c) {
      if (batch === 1) {
        sgemm(transA, transB, m, n, k, a, b, c);
        return;
      }
      const s = session({ op: 'FusedMatMul', rankA: 3, rankB: 3, transA, transB });
      s.run(
        {
          A: tensor(a, transA ? [batchA, k, m] : [batchA, m, k]),
          B: tensor(b, transB ? [batchB, n, k] : [batchB, k, n]),
        },
        { Y: tensor(c, [batch, m, n]) },
        runOptions,
      );
    },
  };
  // a first run validates that the binding accepts our tensors and writes into the given output
  const probe = new Float32Array([1, 2, 3, 4, 5, 6]);
  const out = new Float32Array(4);
  gemm.sgemm(false, true, 2, 2, 3, probe, probe, out);
  if (out[0] !== 14 || out[1] !== 32 || out[3] !== 77) {
    throw new Error(`onnxruntime-node ${version}: the Gemm probe returned ${Array.from(out).join(', ')}`);
  }
  return gemm;
}
