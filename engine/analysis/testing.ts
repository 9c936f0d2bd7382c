import * as tf from '@tensorflow/tfjs-core';
import type { AdapterInstance, MethodName, TrainableParam } from '../adapters/types.ts';
import { FrozenWeight } from '../backends/frozen.ts';
import {
  type AdaptableKind,
  AdaptableLayer,
  type AdapterLayer,
  type ForwardContext,
} from '../models/layers.ts';
import type { LoadedModel } from '../models/types.ts';

/** Deterministic uniform(−0.5, 0.5) values (an LCG), so fixtures do not depend on tfjs' RNG. */
export function seededValues(count: number, seed: number, scale = 1): Float32Array {
  let s = seed >>> 0 || 1;
  const out = new Float32Array(count);
  for (let i = 0; i < count; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = (s / 2 ** 32 - 0.5) * scale;
  }
  return out;
}

export interface FakeModule {
  name: string;
  kind?: AdaptableKind;
  /** Logical out × in (Embedding: num × dim). */
  rows: number;
  cols: number;
}

/** A LoadedModel with random base weights at the given modules (stored orientation as the real ones). */
export function fakeModel(modules: FakeModule[], seed = 1, numParameters = 1_000_000): LoadedModel {
  const layers = new Map<string, AdaptableLayer>();
  modules.forEach((m, i) => {
    const kind = m.kind ?? 'Linear';
    const shape: [number, number] = kind === 'Conv1D' ? [m.cols, m.rows] : [m.rows, m.cols];
    const w = tf.keep(tf.tensor2d(seededValues(m.rows * m.cols, seed * 1000 + i, 0.1), shape));
    layers.set(m.name, new AdaptableLayer(m.name, kind, FrozenWeight.adopt(w), null, `${m.name}.weight`));
  });
  return {
    spec: {
      modelType: 'fake',
      architecture: 'Fake',
      task: 'causal-lm',
      vocabSize: 0,
      hiddenSize: 0,
      numLayers: 0,
      numParameters,
      modules: [],
      config: {},
    },
    dir: '(fake model)',
    layers,
    forward: () => {
      throw new Error('fake model has no forward');
    },
    hidden: () => {
      throw new Error('fake model has no forward');
    },
    head: () => {
      throw new Error('fake model has no forward');
    },
    dispose: () => {
      for (const l of layers.values()) l.weight.dispose();
    },
  };
}

interface FakeTensor {
  key: string;
  variable: tf.Variable;
  trainable: boolean;
  group?: TrainableParam['group'];
}

/** An instance over a flat table of variables (as the real methods keep theirs). */
export class FakeInstance implements AdapterInstance {
  constructor(
    readonly name: string,
    readonly method: MethodName,
    readonly config: Record<string, unknown>,
    readonly layers: ReadonlyMap<string, AdapterLayer>,
    readonly tensors: FakeTensor[],
  ) {}

  trainable(): TrainableParam[] {
    return this.tensors
      .filter((t) => t.trainable)
      .map((t) => ({ name: t.key, variable: t.variable, group: t.group ?? 'adapter' }));
  }

  state(): Record<string, tf.Tensor> {
    return Object.fromEntries(this.tensors.map((t) => [t.key, t.variable.clone()]));
  }

  loadState(state: Record<string, tf.Tensor>): void {
    for (const t of this.tensors) t.variable.assign(state[t.key]);
  }

  dispose(): void {
    for (const t of this.tensors) t.variable.dispose();
  }

  /** Sets a tensor's values (to simulate training). */
  set(key: string, values: Float32Array): void {
    const t = this.tensors.find((x) => x.key === key);
    if (!t) throw new Error(`no tensor ${key}`);
    const value = tf.tensor(values, t.variable.shape);
    t.variable.assign(value);
    value.dispose();
  }
}

/** ΔW = left · right, with factor functions over the instance's variables. */
class LowRankLayer implements AdapterLayer {
  constructor(
    readonly adapterName: string,
    private readonly factors: () => { left: tf.Tensor2D; right: tf.Tensor2D },
  ) {}

  forward(x: tf.Tensor2D, base: tf.Tensor2D, _ctx: ForwardContext): tf.Tensor2D {
    return tf.tidy(() => tf.add(base, tf.matMul(x, this.deltaWeight(), false, true)));
  }

  deltaWeight(): tf.Tensor2D {
    return tf.tidy(() => {
      const { left, right } = this.factors();
      return tf.matMul(left, right);
    });
  }

  lowRankFactors(): { left: tf.Tensor2D; right: tf.Tensor2D } {
    return tf.tidy(() => this.factors());
  }
}

/** A dense update with no factors (as DoRA): ΔW = (m / ‖W0 + BA‖_row) ⊙ (W0 + BA) − W0. */
class DenseLayer implements AdapterLayer {
  constructor(
    readonly adapterName: string,
    private readonly base: AdaptableLayer,
    private readonly a: tf.Variable,
    private readonly b: tf.Variable,
    private readonly m: tf.Variable,
  ) {}

  forward(x: tf.Tensor2D, base: tf.Tensor2D, _ctx: ForwardContext): tf.Tensor2D {
    return tf.tidy(() => tf.add(base, tf.matMul(x, this.deltaWeight(), false, true)));
  }

  deltaWeight(): tf.Tensor2D {
    return tf.tidy(() => {
      const w = this.base.logicalWeight();
      const adapted = tf.add(w, tf.matMul(this.b, this.a));
      const k = tf.reshape(tf.div(this.m, tf.norm(adapted, 'euclidean', 1)), [-1, 1]);
      return tf.sub(tf.mul(k, adapted), w);
    });
  }

  lowRankFactors(): null {
    return null;
  }
}

function variable(values: Float32Array, shape: number[]): tf.Variable {
  return tf.variable(tf.tensor(values, shape));
}

/**
 * LoRA-shaped fake: lora_A (r × in), lora_B (out × r), ΔW = s·B·A with s = loraAlpha / r. Both factors are
 * random so ΔW ≠ 0.
 */
export function fakeLora(
  model: LoadedModel,
  r: number,
  loraAlpha = 16,
  seed = 7,
  name = 'default',
): FakeInstance {
  const s = loraAlpha / r;
  const layers = new Map<string, AdapterLayer>();
  const tensors: FakeTensor[] = [];
  let i = 0;
  for (const [module, base] of model.layers) {
    const out = base.kind === 'Conv1D' ? base.weight.shape[1] : base.weight.shape[0];
    const inF = base.kind === 'Conv1D' ? base.weight.shape[0] : base.weight.shape[1];
    const a = variable(seededValues(r * inF, seed + i++), [r, inF]);
    const b = variable(seededValues(out * r, seed + i++, 0.2), [out, r]);
    tensors.push({ key: `${module}.lora_A`, variable: a, trainable: true });
    tensors.push({ key: `${module}.lora_B`, variable: b, trainable: true });
    layers.set(
      module,
      new LowRankLayer(name, () => ({
        left: tf.mul(b, s) as tf.Tensor2D,
        right: a as tf.Variable<tf.Rank.R2>,
      })),
    );
  }
  return new FakeInstance(
    name,
    'lora',
    { r, loraAlpha, useRslora: false, rankPattern: {}, alphaPattern: {} },
    layers,
    tensors,
  );
}

/**
 * TLoRA-shaped fake: random_A (in × r) and random_C (r × out) frozen, lora_B (r × r) and lora_scaling (1)
 * trainable; ΔW = α·(A·B·C)ᵀ = α·Cᵀ·Bᵀ·Aᵀ.
 */
export function fakeTlora(model: LoadedModel, r: number, alphas: number[], seed = 11): FakeInstance {
  const layers = new Map<string, AdapterLayer>();
  const tensors: FakeTensor[] = [];
  let i = 0;
  for (const [module, base] of model.layers) {
    const out = base.weight.shape[0];
    const inF = base.weight.shape[1];
    const a = variable(seededValues(inF * r, seed + i++), [inF, r]);
    const b = variable(seededValues(r * r, seed + i++, 0.3), [r, r]);
    const c = variable(seededValues(r * out, seed + i++), [r, out]);
    const alpha = variable(Float32Array.of(alphas[layers.size] ?? 1), [1]);
    tensors.push({ key: `${module}.random_A`, variable: a, trainable: false });
    tensors.push({ key: `${module}.lora_B`, variable: b, trainable: true });
    tensors.push({ key: `${module}.random_C`, variable: c, trainable: false });
    tensors.push({ key: `${module}.lora_scaling`, variable: alpha, trainable: true, group: 'scaling' });
    layers.set(
      module,
      new LowRankLayer('default', () => ({
        left: tf.mul(tf.transpose(c), alpha) as tf.Tensor2D,
        right: tf.transpose(tf.matMul(a, b)) as tf.Tensor2D,
      })),
    );
  }
  return new FakeInstance('default', 'tlora', { r }, layers, tensors);
}

/** DoRA-shaped fake (Linear modules only): no low-rank factors, a trainable magnitude per output row. */
export function fakeDora(model: LoadedModel, r: number, seed = 5): FakeInstance {
  const layers = new Map<string, AdapterLayer>();
  const tensors: FakeTensor[] = [];
  let i = 0;
  for (const [module, base] of model.layers) {
    const [out, inF] = base.weight.shape;
    const a = variable(seededValues(r * inF, seed + i++), [r, inF]);
    const b = variable(seededValues(out * r, seed + i++, 0.2), [out, r]);
    const m = variable(
      Float32Array.from(seededValues(out, seed + i++), (x) => 1 + x),
      [out],
    );
    tensors.push({ key: `${module}.lora_A`, variable: a, trainable: true });
    tensors.push({ key: `${module}.lora_B`, variable: b, trainable: true });
    tensors.push({ key: `${module}.lora_magnitude_vector`, variable: m, trainable: true });
    layers.set(module, new DenseLayer('default', base, a, b, m));
  }
  return new FakeInstance('default', 'lora', { r, loraAlpha: r, useDora: true }, layers, tensors);
}
