import * as tf from '@tensorflow/tfjs-core';
import { FrozenWeight } from '../backends/frozen.ts';
import {
  type AdaptableKind,
  AdaptableLayer,
  type ForwardContext,
  inferenceContext,
} from '../models/layers.ts';
import type { LoadedModel, ModelSpec, ModuleInfo } from '../models/types.ts';
import { Rng } from './random.ts';

/**
 * Shared test helpers for adapter methods: random base layers, a fake model, dense references and a
 * finite-difference gradient check.
 */

export interface RandomLayerOptions {
  seed?: number;
  name?: string;
  bias?: boolean;
}

/**
 * A frozen base layer with N(0, 1/in) weights in its stored orientation (Linear: out × in, Conv1D: in × out,
 * Embedding: num × dim, with `inF` = num_embeddings and `outF` = embedding_dim).
 */
export function randomAdaptableLayer(
  kind: AdaptableKind,
  inF: number,
  outF: number,
  options: RandomLayerOptions = {},
): AdaptableLayer {
  const rng = new Rng(options.seed ?? 1);
  const name = options.name ?? `model.layers.0.${kind.toLowerCase()}`;
  const shape: [number, number] = kind === 'Linear' ? [outF, inF] : [inF, outF];
  const std = kind === 'Embedding' ? 1 : 1 / Math.sqrt(inF);
  const weight = tf.tensor2d(rng.normalArray(inF * outF, 0, std), shape);
  const withBias = (options.bias ?? kind !== 'Embedding') && kind !== 'Embedding';
  const bias = withBias ? tf.tensor1d(rng.normalArray(outF, 0, 0.1)) : null;
  return new AdaptableLayer(name, kind, FrozenWeight.adopt(weight), bias, `${name}.weight`);
}

/** Input for a layer: rows x [n, in] for Linear/Conv1D, ids [n] (int32) for Embedding. */
export function randomInput(layer: AdaptableLayer, n: number, seed = 2): tf.Tensor {
  const rng = new Rng(seed);
  if (layer.kind === 'Embedding') {
    return tf.tensor1d(
      Array.from({ length: n }, () => Math.floor(rng.next() * layer.inFeatures)),
      'int32',
    );
  }
  return tf.tensor2d(rng.normalArray(n * layer.inFeatures), [n, layer.inFeatures]);
}

/** The layer's output with its live adapters: forward for Linear/Conv1D, embed for Embedding. */
export function layerOutput(
  layer: AdaptableLayer,
  input: tf.Tensor,
  ctx: ForwardContext = inferenceContext(),
): tf.Tensor2D {
  return layer.kind === 'Embedding'
    ? layer.embed(input as tf.Tensor1D, ctx)
    : layer.forward(input as tf.Tensor2D, ctx);
}

/** The base output (adapters disabled for the call). */
export function baseOutput(layer: AdaptableLayer, input: tf.Tensor): tf.Tensor2D {
  const enabled = layer.adaptersEnabled;
  layer.adaptersEnabled = false;
  try {
    return layerOutput(layer, input);
  } finally {
    layer.adaptersEnabled = enabled;
  }
}

/** The dense contribution of a logical ΔW: x·ΔWᵀ for rows, ΔW[ids] for embedding ids. */
export function denseDelta(kind: AdaptableKind, input: tf.Tensor, deltaWeight: tf.Tensor2D): tf.Tensor2D {
  return tf.tidy(() =>
    kind === 'Embedding'
      ? (tf.gather(deltaWeight, input as tf.Tensor1D) as tf.Tensor2D)
      : tf.matMul(input as tf.Tensor2D, deltaWeight, false, true),
  );
}

export function maxAbsDiff(a: tf.Tensor, b: tf.Tensor): number {
  return tf.tidy(() => tf.max(tf.abs(tf.sub(a, b))).dataSync()[0]);
}

export function maxAbs(a: tf.Tensor): number {
  return tf.tidy(() => tf.max(tf.abs(a)).dataSync()[0]);
}

/** Sets every variable to N(0, std²) values so an adapter is far from its no-op init. */
export function randomizeVariables(variables: tf.Variable[], seed = 3, std = 0.3): void {
  const rng = new Rng(seed);
  for (const v of variables) {
    const value = tf.tensor(rng.normalArray(v.size, 0, std), v.shape, 'float32');
    v.assign(value);
    value.dispose();
  }
}

export interface GradientCheckOptions {
  /** Central-difference step (default 1e-2: the check runs in float32). */
  eps?: number;
  /** Coordinates sampled per variable (default 6). */
  samples?: number;
  rtol?: number;
  atol?: number;
  seed?: number;
}

export interface GradientMismatch {
  variable: string;
  index: number;
  analytic: number;
  numeric: number;
}

/**
 * Compares tf's gradients of `loss` with central differences at sampled coordinates of each variable and
 * returns the mismatches (empty when every sample is within atol + rtol·|numeric|). Central differences are
 * exact for losses quadratic in each coordinate (products of factors), so float32 rounding is the only
 * error; keep sizes small.
 */
export function gradientCheck(
  loss: () => tf.Scalar,
  variables: { name: string; variable: tf.Variable }[],
  options: GradientCheckOptions = {},
): GradientMismatch[] {
  const eps = options.eps ?? 1e-2;
  const samples = options.samples ?? 6;
  const rtol = options.rtol ?? 2e-2;
  const atol = options.atol ?? 2e-3;
  const rng = new Rng(options.seed ?? 5);
  const { grads } = tf.variableGrads(
    loss,
    variables.map((v) => v.variable),
  );
  const mismatches: GradientMismatch[] = [];
  for (const { name, variable } of variables) {
    const grad = grads[variable.name].dataSync();
    const original = Float32Array.from(variable.dataSync());
    const picks = new Set<number>();
    while (picks.size < Math.min(samples, variable.size)) picks.add(Math.floor(rng.next() * variable.size));
    for (const index of picks) {
      const evalAt = (delta: number) => {
        const values = Float32Array.from(original);
        values[index] += delta;
        const t = tf.tensor(values, variable.shape, 'float32');
        variable.assign(t);
        t.dispose();
        return tf.tidy(() => loss().dataSync()[0]);
      };
      const numeric = (evalAt(eps) - evalAt(-eps)) / (2 * eps);
      const analytic = grad[index];
      if (Math.abs(analytic - numeric) > atol + rtol * Math.abs(numeric)) {
        mismatches.push({ variable: name, index, analytic, numeric });
      }
    }
    const restore = tf.tensor(original, variable.shape, 'float32');
    variable.assign(restore);
    restore.dispose();
  }
  for (const g of Object.values(grads)) g.dispose();
  return mismatches;
}

/** A ModuleInfo for an adaptable layer, as specFromConfig would list it. */
export function moduleInfoOf(layer: AdaptableLayer, extra: Partial<ModuleInfo> = {}): ModuleInfo {
  return {
    name: layer.name,
    type: layer.kind,
    shape: [...layer.weight.shape],
    params: layer.weight.size + (layer.bias?.size ?? 0),
    adaptable: layer.kind,
    inFeatures: layer.inFeatures,
    outFeatures: layer.outFeatures,
    ...extra,
  };
}

/** A hand-built ModelSpec (no weights) over module infos. */
export function fakeSpec(modules: ModuleInfo[], overrides: Partial<ModelSpec> = {}): ModelSpec {
  return {
    modelType: 'llama',
    architecture: 'LlamaForCausalLM',
    task: 'causal-lm',
    vocabSize: 32,
    hiddenSize: 8,
    numLayers: 2,
    numParameters: modules.reduce((s, m) => s + m.params, 0),
    modules,
    config: {},
    ...overrides,
  };
}

/** A LoadedModel over loose layers, for attach/detach tests (its forward is not implemented). */
export function fakeModel(layers: AdaptableLayer[], overrides: Partial<ModelSpec> = {}): LoadedModel {
  const spec = fakeSpec(
    layers.map((l) => moduleInfoOf(l)),
    overrides,
  );
  return {
    spec,
    dir: '(test)',
    layers: new Map(layers.map((l) => [l.name, l])),
    forward: () => {
      throw new Error('fakeModel has no forward; call the layers');
    },
    hidden: () => {
      throw new Error('fakeModel has no forward; call the layers');
    },
    head: () => {
      throw new Error('fakeModel has no forward; call the layers');
    },
    dispose: () => {
      for (const l of layers) {
        l.weight.dispose();
        l.bias?.dispose();
      }
    },
  };
}
