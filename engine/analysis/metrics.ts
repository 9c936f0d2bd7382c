import * as tf from '@tensorflow/tfjs-core';
import type { AdapterInstance } from '../adapters/types.ts';
import { type Matrix, svd } from '../linalg/index.ts';
import type { AdapterLayer } from '../models/layers.ts';
import type { LoadedModel } from '../models/types.ts';
import { scalingFactors } from './scaling.ts';
import {
  DENSE_SPECTRUM_LIMIT,
  frobeniusOf,
  lowRankSvd,
  spectralNorm,
  summarizeSpectrum,
} from './spectrum.ts';
import {
  baseFrobenius,
  download,
  groupStateKeys,
  type HostTensor,
  layerIndexOf,
  readFactors,
  readState,
  roleOf,
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
}

export function newMetricsCache(): MetricsCache {
  return { baseNorms: new Map(), frozen: new Map(), keys: null };
}

export interface CollectOptions {
  cache?: MetricsCache;
  /** Dense SVD of ΔW for modules without low-rank factors (up to `DENSE_SPECTRUM_LIMIT` entries). */
  denseSpectra?: boolean;
  /** Keep the downloaded dense ΔW of modules without factors (snapshots reuse it for histograms). */
  onDense?: (module: string, delta: Matrix) => void;
  /** Singular vectors of ΔW (for subspace comparisons). */
  onVectors?: (module: string, u: Matrix, v: Matrix) => void;
}

export interface CollectedMetrics {
  modules: ModuleMetrics[];
  shared: TensorNorms[];
  /** The state as downloaded (trainable tensors, plus frozen ones not cached yet). */
  state: Map<string, HostTensor>;
}

/**
 * The cheap per-module metrics: adapter tensor norms, ΔW norms and spectrum from the low-rank factors,
 * ‖ΔW‖_F / ‖W0‖_F and scaling factors. Nothing of size rows × cols is downloaded for low-rank methods.
 */
export async function collectMetrics(
  instance: AdapterInstance,
  model: LoadedModel,
  options: CollectOptions = {},
): Promise<CollectedMetrics> {
  const cache = options.cache ?? newMetricsCache();
  const moduleNames = [...instance.layers.keys()];
  const state = await readState(instance, (key, trainable) => trainable || !cache.frozen.has(key));
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
    const layer = instance.layers.get(module)!;
    const base = model.layers.get(module);
    if (!base)
      throw new Error(`analysis: adapter module "${module}" is not a layer of the model in ${model.dir}`);
    const keys = perModule.get(module) ?? [];
    const tensors = keys.map(({ key, name }) => norms(key, name, false));
    const own = new Map(
      keys.filter(({ key }) => state.has(key)).map(({ key, name }) => [name, state.get(key)!]),
    );
    let baseNorm = cache.baseNorms.get(module);
    if (baseNorm === undefined) {
      baseNorm = await baseFrobenius(base, instance.name);
      cache.baseNorms.set(module, baseNorm);
    }
    const { spectrum, frobenius, spectral } = await deltaSpectrum(module, layer, base.name, options);
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

async function deltaSpectrum(
  module: string,
  layer: AdapterLayer,
  baseName: string,
  options: CollectOptions,
): Promise<{ spectrum: Spectrum; frobenius: number; spectral: number | null }> {
  const factors = await readFactors(layer);
  if (factors) {
    const { s, u, v } = lowRankSvd(factors.left, factors.right, Boolean(options.onVectors));
    if (u && v) options.onVectors?.(module, u, v);
    let f2 = 0;
    for (const x of s) f2 += x * x;
    return {
      spectrum: summarizeSpectrum(s, 'low-rank', factors.left.cols),
      frobenius: Math.sqrt(f2),
      spectral: s.length ? s[0] : 0,
    };
  }
  if (!options.denseSpectra && !options.onDense) {
    const host = await download(() => ({ n: tf.norm(layer.deltaWeight()) }));
    return {
      spectrum: summarizeSpectrum(
        [],
        'none',
        0,
        `${baseName}: ΔW has no low-rank factors (DoRA rescales W0); the dense spectrum is computed in snapshots`,
      ),
      frobenius: host.n.data[0],
      spectral: null,
    };
  }
  const host = await download(() => ({ d: layer.deltaWeight() }));
  const [rows, cols] = host.d.shape;
  const delta: Matrix = { rows, cols, data: Float64Array.from(host.d.data) };
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
  const s = d.s;
  return {
    spectrum: summarizeSpectrum(
      s,
      'dense',
      Math.min(rows, cols),
      'ΔW has no low-rank factors (DoRA rescales W0): SVD of the dense ΔW = W′ − W0',
    ),
    frobenius,
    spectral: s.length ? s[0] : 0,
  };
}
