import * as tf from '@tensorflow/tfjs-core';
import type { AdaptableLayer, AdapterLayer, ForwardContext } from '../../models/layers.ts';
import { AdapterStateError } from '../instance.ts';
import type { AdapterInstance, SavedModule, TrainableParam } from '../types.ts';

/**
 * A trainable copy of a whole module (PEFT's `ModulesToSaveWrapper`): while the adapter is active the module
 * computes with the copy instead of its base weight and bias. Tensors keep the checkpoint's stored orientation,
 * so they are the module's `weight` / `bias` exactly as PEFT saves them.
 */
export class SavedModuleLayer implements AdapterLayer, SavedModule {
  readonly weight: tf.Variable<tf.Rank.R2>;
  readonly bias: tf.Variable<tf.Rank.R1> | null;
  /** The base weight and bias while merged (merging swaps the copy in). */
  private original: { weight: tf.Tensor2D; bias: tf.Tensor1D | null } | null = null;

  constructor(
    readonly adapterName: string,
    readonly base: AdaptableLayer,
  ) {
    // a float32 copy in the stored orientation, whatever dtype the frozen weight is held in
    this.weight = tf.tidy(() => tf.variable(base.weight.toTensor(), true));
    this.bias = base.bias ? tf.variable(base.bias, true) : null;
  }

  /** Tensor keys in the native state and (after `base_model.model.`) in PEFT files. */
  get keys(): { weight: string; bias: string | null } {
    return { weight: `${this.base.name}.weight`, bias: this.bias ? `${this.base.name}.bias` : null };
  }

  private logical(): tf.Tensor2D {
    return this.base.kind === 'Conv1D' ? tf.transpose(this.weight) : this.weight;
  }

  forward(x: tf.Tensor2D, _base: tf.Tensor2D, _ctx: ForwardContext): tf.Tensor2D {
    return tf.tidy(() => {
      let y = (
        this.base.kind === 'Linear' ? tf.matMul(x, this.weight, false, true) : tf.matMul(x, this.weight)
      ) as tf.Tensor2D;
      if (this.bias) y = tf.add(y, this.bias);
      return y;
    });
  }

  embed(ids: tf.Tensor1D, _base: tf.Tensor2D, _ctx: ForwardContext): tf.Tensor2D {
    return tf.gather(this.weight, ids) as tf.Tensor2D;
  }

  deltaWeight(): tf.Tensor2D {
    return tf.tidy(() => {
      const w = this.original ? this.original.weight.clone() : this.base.logicalWeight();
      const stored = this.base.kind === 'Conv1D' ? tf.transpose(w) : w;
      const diff = tf.sub(this.weight, stored) as tf.Tensor2D;
      return this.base.kind === 'Conv1D' ? tf.transpose(diff) : diff;
    });
  }

  lowRankFactors(): null {
    return null;
  }

  mergeInto(w: tf.Tensor2D): tf.Tensor2D {
    this.original?.weight.dispose();
    this.original = { weight: tf.keep(w.clone()), bias: this.base.bias };
    if (this.bias) this.base.bias = tf.keep(this.bias.clone());
    return tf.tidy(() => this.logical().clone());
  }

  unmergeFrom(_merged: tf.Tensor2D): tf.Tensor2D {
    if (!this.original)
      throw new Error(`saved module ${this.base.name} of "${this.adapterName}" is not merged`);
    const { weight, bias } = this.original;
    if (this.bias && this.base.bias !== bias) {
      this.base.bias?.dispose();
      this.base.bias = bias;
    }
    this.original = null;
    return weight;
  }

  dispose(): void {
    this.original?.weight.dispose();
    this.original = null;
    this.weight.dispose();
    this.bias?.dispose();
  }
}

/**
 * An adapter instance with `modules_to_save` copies: the method's own instance plus one `SavedModuleLayer` per
 * saved module, whose tensors join the trainable parameters and the native state under `<module>.weight` /
 * `<module>.bias` (PEFT's keys without `base_model.model.`).
 */
export class SavedModulesInstance implements AdapterInstance {
  constructor(
    private readonly inner: AdapterInstance,
    readonly savedModules: ReadonlyMap<string, SavedModuleLayer>,
  ) {}

  get name(): string {
    return this.inner.name;
  }
  get method() {
    return this.inner.method;
  }
  get config(): Record<string, unknown> {
    return this.inner.config;
  }
  get layers(): ReadonlyMap<string, AdapterLayer> {
    return this.inner.layers;
  }

  private savedTensors(): { key: string; variable: tf.Variable }[] {
    return [...this.savedModules.values()].flatMap((m) => [
      { key: m.keys.weight, variable: m.weight as tf.Variable },
      ...(m.bias ? [{ key: m.keys.bias!, variable: m.bias as tf.Variable }] : []),
    ]);
  }

  trainable(): TrainableParam[] {
    return [
      ...this.inner.trainable(),
      ...this.savedTensors().map(({ key, variable }) => ({ name: key, variable, group: 'adapter' as const })),
    ];
  }

  state(): Record<string, tf.Tensor> {
    const out = this.inner.state();
    for (const { key, variable } of this.savedTensors()) out[key] = variable.clone();
    return out;
  }

  loadState(state: Record<string, tf.Tensor>): void {
    const saved = this.savedTensors();
    const savedKeys = new Set(saved.map((t) => t.key));
    const missing = saved.filter((t) => !(t.key in state)).map((t) => `"${t.key}"`);
    if (missing.length > 0) {
      throw new AdapterStateError(
        `${this.method} adapter "${this.name}": state does not match: missing ${missing.join(', ')} (modulesToSave)`,
      );
    }
    for (const { key, variable } of saved) {
      const value = state[key];
      if (value.shape.join(',') !== variable.shape.join(',') || value.dtype !== 'float32') {
        throw new AdapterStateError(
          `${this.method} adapter "${this.name}": "${key}" has shape [${value.shape.join(', ')}] (${value.dtype}), expected [${variable.shape.join(', ')}] (float32)`,
        );
      }
    }
    this.inner.loadState(Object.fromEntries(Object.entries(state).filter(([k]) => !savedKeys.has(k))));
    for (const { key, variable } of saved) variable.assign(state[key]);
  }

  detach(): void {
    this.inner.detach?.();
  }

  dispose(): void {
    this.inner.dispose();
    for (const m of this.savedModules.values()) m.dispose();
  }
}

/** Attaches a trainable copy of each module under the instance's name and wraps the method's instance. */
export function withSavedModules(
  instance: AdapterInstance,
  modules: readonly AdaptableLayer[],
): AdapterInstance {
  if (modules.length === 0) return instance;
  const saved = new Map<string, SavedModuleLayer>();
  for (const base of modules) {
    const layer = new SavedModuleLayer(instance.name, base);
    base.adapters.set(instance.name, layer);
    saved.set(base.name, layer);
  }
  return new SavedModulesInstance(instance, saved);
}
