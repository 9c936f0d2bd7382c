import * as tf from '@tensorflow/tfjs-core';
import type { AdapterInstance } from '../adapters/types.ts';
import { type Matrix, svd } from '../linalg/index.ts';
import type { LoadedModel } from '../models/types.ts';
import { scalingFactors } from './scaling.ts';
import {
  DENSE_SPECTRUM_LIMIT,
  frobeniusOf,
  gramNorms,
  gramSingularValues,
  lowRankSvd,
  spectralNorm,
  summarizeSpectrum,
} from './spectrum.ts';
import {
  baseWeightTensor,
  download,
  groupStateKeys,
  type HostTensor,
  layerIndexOf,
  roleOf,
  toMatrix,
  trainableKeys,
} from './tensors.ts';
import type { ModuleMetrics, Spectrum, TensorNorms } from './types.ts';

/** Norms of one tensor: Frobenius, and the spectral norm where it is defined (rank ≤ 2). */
export function tensorNorms(name: string, t: HostTensor, shared: boolean): TensorNorms {
  const frobenius = frobeniusOf(t.data);
  let spectral: number | null = null;
  if (t.shape.length <= 1) spectral = frobenius;
  else if (t.shape.length === 2) spectral = spectralNorm(t.data, t.shape[0], t.shape[1]);
  return { name, shape: t.shape.slice(), trainable: t.trainable, shared, frobenius, spectral };
}

/**
 * What stays valid between records of one run: ‖W0‖_F per module and the norms of frozen tensors. A run's
 * frozen tensors and base weights do not change while it trains (a new recorder is made on resume).
 */
export interface MetricsCache {
  baseNorms: Map<string, number>;
  frozen: Map<string, TensorNorms>;
  /** Every state key in the instance's order, from the first (complete) download. */
  keys: string[] | null;
  /** Per module, the last top singular direction of the Gram route (warm start for the next record). */
  powerVectors: Map<string, Float64Array>;
}

export function newMetricsCache(): MetricsCache {
  return { baseNorms: new Map(), frozen: new Map(), keys: null, powerVectors: new Map() };
}

export interface CollectOptions {
  cache?: MetricsCache;
  /** Dense SVD of ΔW for modules without low-rank factors (up to `DENSE_SPECTRUM_LIMIT` entries). */
  denseSpectra?: boolean;
  /** Keep the downloaded dense ΔW of modules without factors (snapshots reuse it for histograms). */
  onDense?: (module: string, delta: Matrix) => void;
  /** Singular vectors of ΔW (for subspace comparisons). */
  onVectors?: (module: string, u: Matrix, v: Matrix) => void;
  /**
   * Above this factor rank k, skip the exact spectrum (O(k³) per module) and take ‖ΔW‖_F and ‖ΔW‖_2 from the
   * k × k Gram matrices computed on the backend (the recorder uses 64; snapshots are exact at any k).
   */
  maxExactRank?: number;
  /**
   * Spectra up to `maxExactRank` from the eigenvalues of the k × k product of the factors' float64 Gram
   * matrices instead of QR + SVD (about 5× fewer flops; accurate for σᵢ ≳ 1e-7·σ₁). The recorder's path.
   */
  gramSpectra?: boolean;
}

export interface CollectedMetrics {
  modules: ModuleMetrics[];
  shared: TensorNorms[];
  /** The state as downloaded (trainable tensors, plus frozen ones not cached yet). */
  state: Map<string, HostTensor>;
}

/**
 * Above this factor rank the snapshot spectrum also comes from the Gram-product eigenvalues: QR + Jacobi SVD
 * of a 256 × 256 core (VeRA's default r) takes seconds per module, the eigenvalue route a fraction of that.
 */
const QR_SPECTRUM_RANK = 64;

/** What the single download of a record brings back for one module's ΔW. */
type DeltaHost =
  | { kind: 'factors'; rank: number; left: Matrix; right: Matrix }
  | { kind: 'gram'; rank: number; gl: Matrix; gr: Matrix }
  | { kind: 'norm'; norm: number }
  | { kind: 'dense'; delta: Matrix };

/**
 * The cheap per-module metrics: adapter tensor norms, ΔW norms and spectrum from the low-rank factors,
 * ‖ΔW‖_F / ‖W0‖_F and scaling factors. Nothing of size rows × cols is downloaded for low-rank methods, and
 * everything a record needs crosses to the host in one batch (each read is an await, costly on a busy loop).
 */
export async function collectMetrics(
  instance: AdapterInstance,
  model: LoadedModel,
  options: CollectOptions = {},
): Promise<CollectedMetrics> {
  const cache = options.cache ?? newMetricsCache();
  const moduleNames = [...instance.layers.keys()];
  for (const module of moduleNames) {
    if (!model.layers.has(module)) {
      throw new Error(`analysis: adapter module "${module}" is not a layer of the model in ${model.dir}`);
    }
  }
  const limit = options.maxExactRank ?? Number.POSITIVE_INFINITY;
  const dense = Boolean(options.denseSpectra || options.onDense);
  const ranks = new Map<string, number>();
  let trainableFlags = new Map<string, 'adapter' | 'scaling'>();
  const host = await download((): Record<string, tf.Tensor> => {
    const out: Record<string, tf.Tensor> = {};
    const state = instance.state();
    trainableFlags = trainableKeys(instance, state);
    for (const [key, t] of Object.entries(state)) {
      if (trainableFlags.has(key) || !cache.frozen.has(key)) out[`state:${key}`] = t;
    }
    for (const module of moduleNames) {
      const layer = instance.layers.get(module)!;
      const base = model.layers.get(module)!;
      if (!cache.baseNorms.has(module)) out[`w0:${module}`] = tf.norm(baseWeightTensor(base, instance.name));
      const f = layer.lowRankFactors();
      if (f) {
        const rank = f.left.shape[1];
        ranks.set(module, rank);
        if (rank <= limit) {
          out[`left:${module}`] = f.left;
          out[`right:${module}`] = f.right;
        } else {
          out[`gl:${module}`] = tf.matMul(f.left, f.left, true, false);
          out[`gr:${module}`] = tf.matMul(f.right, f.right, false, true);
        }
      } else if (dense) {
        out[`dense:${module}`] = layer.deltaWeight();
      } else {
        out[`norm:${module}`] = tf.norm(layer.deltaWeight());
      }
    }
    return out;
  });
  const state = new Map<string, HostTensor>();
  for (const [k, t] of Object.entries(host)) {
    if (!k.startsWith('state:')) continue;
    const key = k.slice('state:'.length);
    state.set(key, { ...t, trainable: trainableFlags.has(key), group: trainableFlags.get(key) });
  }
  cache.keys ??= [...state.keys()];
  const { perModule, shared } = groupStateKeys(cache.keys, moduleNames);
  const norms = (key: string, name: string, isShared: boolean): TensorNorms => {
    const cached = cache.frozen.get(key);
    if (cached) return { ...cached, name };
    const t = state.get(key)!;
    const n = tensorNorms(name, t, isShared);
    if (!t.trainable) cache.frozen.set(key, n);
    return n;
  };
  const sharedHost = new Map([...state].filter(([k]) => shared.includes(k)));
  const modules: ModuleMetrics[] = [];
  for (const [index, module] of moduleNames.entries()) {
    const base = model.layers.get(module)!;
    const keys = perModule.get(module) ?? [];
    const tensors = keys.map(({ key, name }) => norms(key, name, false));
    const own = new Map(
      keys.filter(({ key }) => state.has(key)).map(({ key, name }) => [name, state.get(key)!]),
    );
    if (host[`w0:${module}`]) cache.baseNorms.set(module, host[`w0:${module}`].data[0]);
    const baseNorm = cache.baseNorms.get(module)!;
    const rank = ranks.get(module) ?? 0;
    const delta: DeltaHost = host[`left:${module}`]
      ? {
          kind: 'factors',
          rank,
          left: toMatrix(host[`left:${module}`]),
          right: toMatrix(host[`right:${module}`]),
        }
      : host[`gl:${module}`]
        ? { kind: 'gram', rank, gl: toMatrix(host[`gl:${module}`]), gr: toMatrix(host[`gr:${module}`]) }
        : host[`dense:${module}`]
          ? { kind: 'dense', delta: toMatrix(host[`dense:${module}`]) }
          : { kind: 'norm', norm: host[`norm:${module}`].data[0] };
    const { spectrum, frobenius, spectral } = deltaSpectrum(module, delta, limit, options, cache);
    let trainable2 = 0;
    for (const t of tensors) if (t.trainable) trainable2 += t.frobenius ** 2;
    modules.push({
      module,
      layerIndex: layerIndexOf(module),
      role: roleOf(module),
      rows: base.kind === 'Linear' || base.kind === 'Embedding' ? base.weight.shape[0] : base.weight.shape[1],
      cols: base.kind === 'Linear' || base.kind === 'Embedding' ? base.weight.shape[1] : base.weight.shape[0],
      deltaFrobenius: frobenius,
      deltaSpectral: spectral,
      baseFrobenius: baseNorm,
      relativeDelta: baseNorm > 0 ? frobenius / baseNorm : 0,
      trainableNorm: Math.sqrt(trainable2),
      tensors,
      scaling: scalingFactors({
        method: instance.method,
        config: instance.config,
        module,
        moduleIndex: index,
        moduleCount: moduleNames.length,
        tensors: own,
        shared: sharedHost,
      }),
      spectrum,
    });
  }
  return { modules, shared: shared.map((key) => norms(key, key, true)), state };
}

function deltaSpectrum(
  module: string,
  host: DeltaHost,
  limit: number,
  options: CollectOptions,
  cache: MetricsCache,
): { spectrum: Spectrum; frobenius: number; spectral: number | null } {
  if (host.kind === 'gram') {
    const { frobenius, spectral, vector } = gramNorms(host.gl, host.gr, cache.powerVectors.get(module));
    if (vector) cache.powerVectors.set(module, vector);
    const note = `factor rank ${host.rank} > ${limit}: ‖ΔW‖ from the Gram matrices; the spectrum is in snapshots`;
    return { spectrum: summarizeSpectrum([], 'none', host.rank, note), frobenius, spectral };
  }
  if (host.kind === 'factors') {
    const fast = (options.gramSpectra || host.rank > QR_SPECTRUM_RANK) && !options.onVectors;
    const { s, u, v } = fast
      ? { s: gramSingularValues(host.left, host.right), u: undefined, v: undefined }
      : lowRankSvd(host.left, host.right, Boolean(options.onVectors));
    if (u && v) options.onVectors?.(module, u, v);
    let f2 = 0;
    for (const x of s) f2 += x * x;
    return {
      spectrum: summarizeSpectrum(s, 'low-rank', host.rank),
      frobenius: Math.sqrt(f2),
      spectral: s.length ? s[0] : 0,
    };
  }
  if (host.kind === 'norm') {
    return {
      spectrum: summarizeSpectrum(
        [],
        'none',
        0,
        'ΔW has no low-rank factors (DoRA rescales W0); the dense spectrum is computed in snapshots',
      ),
      frobenius: host.norm,
      spectral: null,
    };
  }
  const { delta } = host;
  const { rows, cols } = delta;
  options.onDense?.(module, delta);
  const frobenius = frobeniusOf(delta.data);
  if (rows * cols > DENSE_SPECTRUM_LIMIT) {
    return {
      spectrum: summarizeSpectrum(
        [],
        'none',
        0,
        `ΔW has no low-rank factors and ${rows} × ${cols} is above the dense SVD limit (${DENSE_SPECTRUM_LIMIT} entries)`,
      ),
      frobenius,
      spectral: spectralNorm(delta.data, rows, cols),
    };
  }
  const d = svd(delta);
  options.onVectors?.(module, d.u, d.v);
  return {
    spectrum: summarizeSpectrum(
      d.s,
      'dense',
      Math.min(rows, cols),
      'ΔW has no low-rank factors (DoRA rescales W0): SVD of the dense ΔW = W′ − W0',
    ),
    frobenius,
    spectral: d.s.length ? d.s[0] : 0,
  };
}
