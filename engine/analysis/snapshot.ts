import type * as tf from '@tensorflow/tfjs-core';
import type { AdapterInstance } from '../adapters/types.ts';
import type { Matrix } from '../linalg/index.ts';
import type { LoadedModel } from '../models/types.ts';
import { shapeSize } from '../shape.ts';
import { DEFAULT_BINS, histogram } from './distribution.ts';
import { collectMetrics, type MetricsCache, tensorNorms } from './metrics.ts';
import { baseWeightTensor, download, groupStateKeys, readState, toMatrix } from './tensors.ts';
import {
  ANALYSIS_VERSION,
  type BudgetSummary,
  type Histogram,
  type ModuleSnapshot,
  type Snapshot,
} from './types.ts';

export interface AnalyzeOptions {
  step?: number | null;
  bins?: number;
  /** Reuse ‖W0‖_F and frozen-tensor norms across calls (the recorder passes its own). */
  cache?: MetricsCache;
  /** W0 histograms by module: the base weight never changes during a run, so the recorder keeps them. */
  baseHistograms?: Map<string, Histogram>;
}

/** Trainable and frozen adapter parameters (shared tensors once) against the model size. */
export function budgetOf(
  state: ReadonlyMap<string, { shape: number[]; trainable: boolean }>,
  model: LoadedModel,
): BudgetSummary {
  let trainable = 0;
  let frozen = 0;
  for (const t of state.values()) {
    if (t.trainable) trainable += shapeSize(t.shape);
    else frozen += shapeSize(t.shape);
  }
  const modelParameters = model.spec.numParameters;
  return {
    trainable,
    frozenAdapter: frozen,
    modelParameters,
    fraction: modelParameters ? trainable / modelParameters : 0,
  };
}

/**
 * The full analysis of an adapter: the cheap metrics plus dense spectra for modules without low-rank
 * factors, and histograms with moments of W0, ΔW and every adapter tensor. Downloads each targeted base
 * weight once (or takes its histogram from `baseHistograms`).
 */
export async function analyzeAdapter(
  instance: AdapterInstance,
  model: LoadedModel,
  options: AnalyzeOptions = {},
): Promise<Snapshot> {
  const started = performance.now();
  const bins = options.bins ?? DEFAULT_BINS;
  const dense = new Map<string, Matrix>();
  const metrics = await collectMetrics(instance, model, {
    cache: options.cache,
    denseSpectra: true,
    onDense: (module, delta) => dense.set(module, delta),
  });
  const state = await readState(instance);
  const { perModule, shared } = groupStateKeys([...state.keys()], [...instance.layers.keys()]);
  const modules: ModuleSnapshot[] = [];
  for (const m of metrics.modules) {
    const base = model.layers.get(m.module)!;
    const layer = instance.layers.get(m.module)!;
    let baseHist = options.baseHistograms?.get(m.module);
    let delta = dense.get(m.module);
    if (!baseHist || !delta) {
      const host = await download(
        (): Record<string, tf.Tensor> => ({
          ...(baseHist ? {} : { base: baseWeightTensor(base, instance.name) }),
          ...(delta ? {} : { delta: layer.deltaWeight() }),
        }),
      );
      if (!baseHist) {
        baseHist = histogram(host.base.data, bins);
        options.baseHistograms?.set(m.module, baseHist);
      }
      delta ??= toMatrix(host.delta);
    }
    const tensorHists: Record<string, Histogram> = {};
    for (const { key, name } of perModule.get(m.module) ?? [])
      tensorHists[name] = histogram(state.get(key)!.data, bins);
    modules.push({
      ...m,
      histograms: { base: baseHist, delta: histogram(delta.data, bins), tensors: tensorHists },
    });
  }
  return {
    version: ANALYSIS_VERSION,
    kind: 'snapshot',
    step: options.step ?? null,
    createdAt: new Date().toISOString(),
    adapterName: instance.name,
    method: instance.method,
    config: instance.config,
    budget: budgetOf(state, model),
    modules,
    shared: shared.map((key) => {
      const t = state.get(key)!;
      return { ...tensorNorms(key, t, true), histogram: histogram(t.data, bins) };
    }),
    elapsedMs: performance.now() - started,
  };
}
