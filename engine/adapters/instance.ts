import type * as tf from '@tensorflow/tfjs-core';
import { StudioError } from '../common/errors.ts';
import type { AdaptableLayer, AdapterLayer } from '../models/layers.ts';
import type { AdapterInstance, MethodName, TrainableParam } from './types.ts';

/** A bad adapter state (checkpoint or PEFT file): the message names the key and the problem. */
export class AdapterStateError extends StudioError {
  constructor(message: string) {
    super('conflict', message);
    this.name = 'AdapterStateError';
  }
}

/** One tensor of an adapter under its native key (`<module>.<suffix>` per module, `<name>` model-level). */
export interface AdapterTensor {
  key: string;
  variable: tf.Variable;
  trainable: boolean;
  group?: TrainableParam['group'];
}

export interface InstanceHooks {
  /** Undo changes made outside the adapter's own tensors (see `AdapterInstance.detach`). */
  detach?(): void;
  /** Extra cleanup (per-layer caches); the variables in `tensors` are disposed by the instance. */
  dispose?(): void;
}

/**
 * An `AdapterInstance` over a flat table of variables: the native state is exactly that table, so every
 * method gets the same checkpoint format and the same state errors.
 */
export class TensorTableInstance implements AdapterInstance {
  private readonly byKey: Map<string, AdapterTensor>;
  private disposed = false;

  constructor(
    readonly name: string,
    readonly method: MethodName,
    readonly config: Record<string, unknown>,
    readonly layers: ReadonlyMap<string, AdapterLayer>,
    readonly tensors: readonly AdapterTensor[],
    private readonly hooks: InstanceHooks = {},
  ) {
    this.byKey = new Map();
    for (const t of tensors) {
      if (this.byKey.has(t.key)) throw new Error(`${method}: duplicate adapter tensor key "${t.key}"`);
      this.byKey.set(t.key, t);
    }
  }

  trainable(): TrainableParam[] {
    return this.tensors
      .filter((t) => t.trainable)
      .map((t) => ({ name: t.key, variable: t.variable, group: t.group ?? 'adapter' }));
  }

  /** Copies of every tensor (the caller owns and disposes them). */
  state(): Record<string, tf.Tensor> {
    const out: Record<string, tf.Tensor> = {};
    for (const t of this.tensors) out[t.key] = t.variable.clone();
    return out;
  }

  loadState(state: Record<string, tf.Tensor>): void {
    const missing = this.tensors.filter((t) => !(t.key in state)).map((t) => t.key);
    const unexpected = Object.keys(state).filter((k) => !this.byKey.has(k));
    if (missing.length > 0 || unexpected.length > 0) {
      const parts: string[] = [];
      if (missing.length > 0) parts.push(`missing ${listKeys(missing)}`);
      if (unexpected.length > 0) parts.push(`unexpected ${listKeys(unexpected)}`);
      throw new AdapterStateError(
        `${this.method} adapter "${this.name}": state does not match: ${parts.join('; ')}`,
      );
    }
    for (const t of this.tensors) {
      const value = state[t.key];
      if (!sameShape(value.shape, t.variable.shape)) {
        const module = [...this.layers.keys()].find((m) => t.key.startsWith(`${m}.`));
        throw new AdapterStateError(
          `${this.method} adapter "${this.name}": "${t.key}"${module ? ` (module ${module})` : ''} has shape [${value.shape.join(', ')}], expected [${t.variable.shape.join(', ')}]`,
        );
      }
      if (value.dtype !== 'float32') {
        throw new AdapterStateError(
          `${this.method} adapter "${this.name}": "${t.key}" has dtype ${value.dtype}, expected float32`,
        );
      }
    }
    for (const t of this.tensors) t.variable.assign(state[t.key]);
  }

  detach(): void {
    this.hooks.detach?.();
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.hooks.dispose?.();
    for (const t of this.tensors) t.variable.dispose();
  }
}

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((v, i) => v === b[i]);
}

function listKeys(keys: string[]): string {
  const shown = keys.slice(0, 5).map((k) => `"${k}"`);
  return keys.length > 5 ? `${shown.join(', ')} and ${keys.length - 5} more` : shown.join(', ');
}

/**
 * Builds one adapter layer per base module: `build` pushes the tensors it creates and calls `attach` for each
 * layer. A module that already has an adapter named `adapterName` is refused before anything is built; when
 * `build` throws, every attached layer is detached (after `undo`) and every tensor disposed.
 */
export function createLayers<L extends AdapterLayer & { readonly base: AdaptableLayer }>(
  method: MethodName,
  adapterName: string,
  layers: readonly AdaptableLayer[],
  build: (tensors: AdapterTensor[], attach: (layer: L) => void) => void,
  undo?: (layer: L) => void,
): { layers: Map<string, L>; tensors: AdapterTensor[] } {
  for (const base of layers) {
    if (base.adapters.has(adapterName)) {
      throw new Error(`${method}: module ${base.name} already has an adapter named "${adapterName}"`);
    }
  }
  const tensors: AdapterTensor[] = [];
  const created: L[] = [];
  try {
    build(tensors, (layer) => {
      created.push(layer);
      layer.base.adapters.set(adapterName, layer);
    });
  } catch (error) {
    for (const layer of created) {
      undo?.(layer);
      layer.base.adapters.delete(adapterName);
    }
    for (const t of tensors) t.variable.dispose();
    throw error;
  }
  return { layers: new Map(created.map((l) => [l.base.name, l])), tensors };
}
