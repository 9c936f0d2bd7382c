import { createHash, randomUUID } from 'node:crypto';
import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import type { AdapterInstance } from '../adapters/types.ts';
import { writeJsonAtomic } from '../io/atomic.ts';
import { EigCancelledError, eigenvalues, eigFlops } from '../linalg/eig.ts';
import type { Matrix } from '../linalg/index.ts';
import type { LoadedModel } from '../models/types.ts';
import { histogram } from './distribution.ts';
import { readJsonFile } from './store.ts';
import { readDense } from './tensors.ts';
import { ANALYSIS_VERSION, type EigenCost, type EigenResult } from './types.ts';

export { EigCancelledError };

/**
 * Measured rate of `eigenvalues` in flops per second (10·n³ model). Starts from a figure measured on a
 * 2-core development machine (n = 512: 2.5 s) and is replaced by the rate of each finished job with n ≥ 128.
 */
let rate = 5e8;

export function eigenRate(): number {
  return rate;
}

/** Cost of all eigenvalues of an n × n matrix, before starting: n, flops, and seconds at the measured rate. */
export function estimateEigenCost(n: number): EigenCost {
  const flops = eigFlops(n);
  return { n, flops, seconds: flops / rate };
}

/** Cache key: sha256 over the dimension and the float64 bytes of the matrix. */
export function matrixHash(m: Matrix): string {
  const h = createHash('sha256');
  h.update(`${m.rows}x${m.cols}:`);
  h.update(new Uint8Array(m.data.buffer, m.data.byteOffset, m.data.byteLength));
  return h.digest('hex');
}

const memoryCache = new Map<string, EigenResult>();

export interface EigenRequest {
  module: string;
  which: EigenResult['which'];
  matrix: Matrix;
}

export interface EigenJobOptions {
  /** Folder for `<hash>.json` results (`runs/<id>/analysis/eigen`); without it only the in-memory cache. */
  cacheDir?: string;
  onProgress?: (fraction: number) => void;
  /** Compute on this thread (tests; or where workers cannot load TypeScript). */
  inProcess?: boolean;
}

export interface EigenJob {
  readonly id: string;
  readonly module: string;
  readonly which: EigenResult['which'];
  readonly hash: string;
  readonly cost: EigenCost;
  /** 0..1 */
  readonly progress: number;
  /** Resolves with the result; rejects with `EigCancelledError` after `cancel()`. */
  readonly done: Promise<EigenResult>;
  cancel(): void;
}

/** The summary record: counts by sign of the real part and |λ| histograms for each side. */
export function eigenResult(
  req: Omit<EigenRequest, 'matrix'> & { n: number; hash: string },
  re: ArrayLike<number>,
  im: ArrayLike<number>,
  seconds: number,
): EigenResult {
  const pos: number[] = [];
  const neg: number[] = [];
  let radius = 0;
  let complex = 0;
  for (let i = 0; i < re.length; i++) {
    const mag = Math.hypot(re[i], im[i]);
    radius = Math.max(radius, mag);
    if (im[i] !== 0) complex += 1;
    (re[i] >= 0 ? pos : neg).push(mag);
  }
  const range: [number, number] = [0, radius > 0 ? radius : 1];
  return {
    version: ANALYSIS_VERSION,
    kind: 'eigen',
    module: req.module,
    which: req.which,
    n: req.n,
    hash: req.hash,
    re: Array.from(re),
    im: Array.from(im),
    seconds,
    summary: { spectralRadius: radius, positiveReal: pos.length, negativeReal: neg.length, complex },
    magnitudeHistograms: { positive: histogram(pos, 50, range), negative: histogram(neg, 50, range) },
  };
}

async function readCached(cacheDir: string | undefined, hash: string): Promise<EigenResult | null> {
  const hit = memoryCache.get(hash);
  if (hit) return hit;
  if (!cacheDir) return null;
  try {
    await fs.access(join(cacheDir, `${hash}.json`));
  } catch {
    return null;
  }
  const result = await readJsonFile<EigenResult>(join(cacheDir, `${hash}.json`), 'eigen');
  memoryCache.set(hash, result);
  return result;
}

/** Where worker threads load the TypeScript job: tsx registers its loader inside the worker first. */
function startWorker(n: number, data: Float64Array): Worker {
  const api = import.meta.resolve('tsx/esm/api');
  const entry = new URL('./eigen-worker.ts', import.meta.url).href;
  const code = `import(${JSON.stringify(api)}).then((m) => { m.register(); return import(${JSON.stringify(entry)}); });`;
  return new Worker(code, { eval: true, workerData: { n, data } });
}

/**
 * Starts computing the eigenvalues of a square matrix in a worker thread (cost known up front in `cost`),
 * or returns the cached result for identical content. Progress arrives through `onProgress`; `cancel()`
 * terminates the worker.
 */
export function startEigenJob(request: EigenRequest, options: EigenJobOptions = {}): EigenJob {
  const { matrix: m } = request;
  if (m.rows !== m.cols) {
    throw new Error(`eigenvalues of ${request.module}: the matrix is ${m.rows} × ${m.cols}, not square`);
  }
  const n = m.rows;
  const hash = matrixHash(m);
  const cost = estimateEigenCost(n);
  let progress = 0;
  let cancelled = false;
  let cancelHook: (() => void) | null = null;
  const report = (f: number) => {
    progress = f;
    options.onProgress?.(f);
  };
  const meta = { module: request.module, which: request.which, n, hash };
  const finish = async (re: ArrayLike<number>, im: ArrayLike<number>, seconds: number) => {
    const result = eigenResult(meta, re, im, seconds);
    if (n >= 128 && seconds > 0) rate = cost.flops / seconds;
    memoryCache.set(hash, result);
    if (options.cacheDir) await writeJsonAtomic(join(options.cacheDir, `${hash}.json`), result);
    return result;
  };
  const compute = async (): Promise<EigenResult> => {
    const cached = await readCached(options.cacheDir, hash);
    if (cached) {
      report(1);
      return { ...cached, module: request.module, which: request.which };
    }
    if (cancelled) throw new EigCancelledError();
    const started = performance.now();
    let worker: Worker | null = null;
    if (!options.inProcess) {
      try {
        worker = startWorker(n, Float64Array.from(m.data));
      } catch {
        // No module resolution for tsx here (e.g. a bundled app): compute on this thread instead.
        worker = null;
      }
    }
    if (!worker) {
      const { re, im } = eigenvalues(m, { onProgress: report, shouldStop: () => cancelled });
      return finish(re, im, (performance.now() - started) / 1000);
    }
    const running = worker;
    const { re, im } = await new Promise<{ re: Float64Array; im: Float64Array }>((resolve, reject) => {
      let settled = false;
      const settle = (fn: () => void) => {
        if (settled) return;
        settled = true;
        fn();
        void running.terminate();
      };
      cancelHook = () => settle(() => reject(new EigCancelledError()));
      running.on(
        'message',
        (msg: {
          type: string;
          fraction?: number;
          re?: Float64Array;
          im?: Float64Array;
          message?: string;
        }) => {
          if (msg.type === 'progress') report(msg.fraction!);
          else if (msg.type === 'done') settle(() => resolve({ re: msg.re!, im: msg.im! }));
          else if (msg.type === 'error')
            settle(() => reject(new Error(`eigenvalues of ${request.module}: ${msg.message}`)));
        },
      );
      running.on('error', (error) => settle(() => reject(error)));
      running.on('exit', (code) =>
        settle(() => reject(new Error(`eigenvalue worker for ${request.module} exited with code ${code}`))),
      );
    });
    return finish(re, im, (performance.now() - started) / 1000);
  };
  return {
    id: randomUUID(),
    module: request.module,
    which: request.which,
    hash,
    cost,
    get progress() {
      return progress;
    },
    done: compute(),
    cancel() {
      cancelled = true;
      cancelHook?.();
    },
  };
}

/**
 * W0 and W0 + ΔW of one module (logical orientation) as float64 matrices, checked to be square: the
 * matrices whose eigenvalues the TLoRA paper compares.
 */
export async function eigenMatrices(
  instance: AdapterInstance,
  model: LoadedModel,
  module: string,
): Promise<{ base: Matrix; adapted: Matrix }> {
  const layer = instance.layers.get(module);
  const base = model.layers.get(module);
  if (!layer || !base) {
    throw new Error(`eigenvalues: "${module}" is not a module of adapter "${instance.name}"`);
  }
  const dense = await readDense(base, layer, instance.name);
  if (dense.base.rows !== dense.base.cols) {
    throw new Error(`eigenvalues need a square weight; ${module} is ${dense.base.rows} × ${dense.base.cols}`);
  }
  const adapted = Float64Array.from(dense.base.data);
  for (let i = 0; i < adapted.length; i++) adapted[i] += dense.delta.data[i];
  return { base: dense.base, adapted: { rows: dense.base.rows, cols: dense.base.cols, data: adapted } };
}
