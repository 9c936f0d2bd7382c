/** Compute backends the engine can run on, in the order `selectBackend` tries them. */
export type BackendName = 'cuda' | 'webgpu' | 'native' | 'wasm' | 'cpu';

/**
 * How `BatchMatMul` / `_FusedMatMul` run on the `wasm` backend:
 * - `onnxruntime-mlas`: MLAS sgemm bundled in onnxruntime-node, through its synchronous native binding;
 * - `koffi-blas`: `cblas_sgemm` of a system BLAS (OpenBLAS, Accelerate, MKL) called through koffi;
 * - `js-relayout`: explicit transposes and batch folding onto the fast untransposed XNNPACK kernel;
 * - `wasm-stock`: the unmodified tfjs kernel (scalar loop for transposed or batched products).
 */
export type MatMulPath = 'onnxruntime-mlas' | 'koffi-blas' | 'js-relayout' | 'wasm-stock';

export interface CandidateReport {
  name: BackendName;
  /** The backend (or its library) loaded and can run here. */
  available: boolean;
  /** This candidate is the active backend. */
  used: boolean;
  /** Why it was chosen, skipped or unavailable, in one sentence. */
  reason: string;
  details: Record<string, unknown>;
}

export interface BackendReport {
  chosen: BackendName;
  /** For `native` and `wasm`: the matmul route behind the backend. */
  matmul?: MatMulPath;
  reason: string;
  /** What asked for the backend: an explicit argument, `STUDIO_BACKEND`, or automatic order. */
  requestedBy: 'argument' | 'env' | 'auto';
  candidates: CandidateReport[];
}

/**
 * A row-major single-precision GEMM: `c[m×n] = op(a)·op(b)`, where `op(a)` is `m×k` and `op(b)` is `k×n`.
 * Arrays may be views into the wasm heap; implementations write into `c` in place and never keep references.
 */
export interface NativeGemm {
  path: Exclude<MatMulPath, 'js-relayout' | 'wasm-stock'>;
  /** Library and settings, for reports. */
  details: Record<string, unknown>;
  /** Below this many flops the per-call overhead exceeds the gain: the stock kernel runs instead. */
  minFlops: number;
  sgemm(
    transA: boolean,
    transB: boolean,
    m: number,
    n: number,
    k: number,
    a: Float32Array,
    b: Float32Array,
    c: Float32Array,
  ): void;
  /**
   * `batch` independent products; `a` holds `batchA` matrices and `b` holds `batchB`, each either `batch` or 1
   * (a single matrix is broadcast over the batch).
   */
  sgemmBatched(
    transA: boolean,
    transB: boolean,
    batch: number,
    batchA: number,
    batchB: number,
    m: number,
    n: number,
    k: number,
    a: Float32Array,
    b: Float32Array,
    c: Float32Array,
  ): void;
  /**
   * Elementwise functions from the same library, when it has vectorised, threaded ones (the wasm kernels of
   * tanh, exp, sigmoid and erf are scalar loops): `y[i] = f(x[i])`, arrays of equal length. `y` may be `x`.
   */
  unary?: (op: NativeUnaryOp, x: Float32Array, y: Float32Array) => void;
  /** onnxruntime's fused activations (tanh-approximated GELU, x·sigmoid(x), erf GELU), likewise. */
  activation?: (op: NativeActivationOp, x: Float32Array, y: Float32Array) => void;
  /**
   * `y = a ∘ b` with numpy broadcasting over rank-3 shapes (a dimension of 1 repeats), threaded; `y` (of the
   * broadcast shape) may be `a`.
   */
  binary?: (
    op: NativeBinaryOp,
    a: Float32Array,
    aDims: [number, number, number],
    b: Float32Array,
    bDims: [number, number, number],
    y: Float32Array,
  ) => void;
  /** Softmax of each of `rows` rows of `cols` values, when the library has a threaded one. `y` may be `x`. */
  softmax?: (x: Float32Array, y: Float32Array, rows: number, cols: number) => void;
  /** Log-softmax of each row, likewise. */
  logSoftmax?: (x: Float32Array, y: Float32Array, rows: number, cols: number) => void;
}

/** Elementwise functions a native library may provide, by their ONNX (and tfjs) names. */
export type NativeUnaryOp = 'Tanh' | 'Exp' | 'Sigmoid' | 'Erf';

/** Fused activations a native library may provide, by their onnxruntime (com.microsoft) names. */
export type NativeActivationOp = 'FastGelu' | 'QuickGelu' | 'Gelu';

/** Binary elementwise functions a native library may provide, by their ONNX names. */
export type NativeBinaryOp = 'Add' | 'Sub' | 'Mul' | 'Div';
