import * as tf from '@tensorflow/tfjs-core';
import type { AdapterInstance, HostTensor } from '../adapters/types.ts';
import { type Matrix, matrix } from '../linalg/index.ts';
import type { AdaptableLayer, AdapterLayer } from '../models/layers.ts';

export type { HostTensor };

/**
 * Runs `produce` in a tidy scope and downloads what it returns. Tensors the adapter creates on the way are
 * freed; tensors it returns that it also owns (variables, frozen buffers) survive, because only clones leave
 * the scope and the clones are disposed after the download.
 */
export async function download<K extends string>(
  produce: () => Record<K, tf.Tensor>,
): Promise<Record<K, { shape: number[]; data: Float32Array }>> {
  const clones = tf.tidy(() => {
    const out = produce();
    const kept: Record<string, tf.Tensor> = {};
    for (const [k, t] of Object.entries(out) as [string, tf.Tensor][]) kept[k] = t.clone();
    return kept;
  });
  const result = {} as Record<K, { shape: number[]; data: Float32Array }>;
  try {
    for (const [k, t] of Object.entries(clones) as [K, tf.Tensor][]) {
      const data = await t.data();
      result[k] = {
        shape: t.shape.slice(),
        data: data instanceof Float32Array ? data : Float32Array.from(data),
      };
    }
  } finally {
    for (const t of Object.values(clones)) t.dispose();
  }
  return result;
}

export function toMatrix(t: { shape: number[]; data: Float32Array }): Matrix {
  if (t.shape.length !== 2) throw new Error(`expected a 2-D tensor, got shape [${t.shape.join(', ')}]`);
  return matrix(t.shape[0], t.shape[1], t.data);
}

/**
 * Native state keys by module: a key belongs to the longest module name it starts with (`<module>.<suffix>`
 * or the module name itself); the rest are model-level (shared) tensors.
 */
export function groupStateKeys(
  keys: readonly string[],
  modules: readonly string[],
): { perModule: Map<string, { key: string; name: string }[]>; shared: string[] } {
  const byLength = [...modules].sort((a, b) => b.length - a.length);
  const perModule = new Map<string, { key: string; name: string }[]>(modules.map((m) => [m, []]));
  const shared: string[] = [];
  for (const key of keys) {
    const owner = byLength.find((m) => key === m || key.startsWith(`${m}.`));
    if (owner === undefined) shared.push(key);
    else perModule.get(owner)!.push({ key, name: key === owner ? key : key.slice(owner.length + 1) });
  }
  return { perModule, shared };
}

/** Trainable state keys with their optimizer group, matched by name and, failing that, by variable identity. */
export function trainableKeys(
  instance: AdapterInstance,
  state: Record<string, tf.Tensor>,
): Map<string, 'adapter' | 'scaling'> {
  const params = instance.trainable();
  const byName = new Map(params.map((p) => [p.name, p.group]));
  const byId = new Map(params.map((p) => [p.variable.id, p.group]));
  const out = new Map<string, 'adapter' | 'scaling'>();
  for (const [k, t] of Object.entries(state)) {
    const group = byName.get(k) ?? byId.get(t.id);
    if (group) out.set(k, group);
  }
  return out;
}

/**
 * Downloads the adapter's state tensors that `want(key, trainable)` selects (all by default), with their
 * trainable flag.
 */
export async function readState(
  instance: AdapterInstance,
  want: (key: string, trainable: boolean) => boolean = () => true,
): Promise<Map<string, HostTensor>> {
  let flags = new Map<string, 'adapter' | 'scaling'>();
  const host = await download(() => {
    const state = instance.state();
    flags = trainableKeys(instance, state);
    const picked: Record<string, tf.Tensor> = {};
    for (const [k, t] of Object.entries(state)) if (want(k, flags.has(k))) picked[k] = t;
    return picked;
  });
  return new Map(
    Object.entries(host).map(([k, t]) => [k, { ...t, trainable: flags.has(k), group: flags.get(k) }]),
  );
}

/** The factors of `lowRankFactors()` as float64 matrices, or null when the update is not low-rank. */
export async function readFactors(layer: AdapterLayer): Promise<{ left: Matrix; right: Matrix } | null> {
  let lowRank = true;
  const host = await download((): Record<string, tf.Tensor> => {
    const f = layer.lowRankFactors();
    if (!f) {
      lowRank = false;
      return {};
    }
    return { left: f.left, right: f.right };
  });
  if (!lowRank) return null;
  return { left: toMatrix(host.left), right: toMatrix(host.right) };
}

/**
 * The base weight W0 the adapter acts on, in logical orientation. When the adapter is merged into the layer,
 * the stored weight is W0 + ΔW and ΔW is subtracted (`deltaWeight` is defined on the unmerged base).
 */
export function baseWeightTensor(base: AdaptableLayer, adapterName: string): tf.Tensor2D {
  const adapter = base.adapters.get(adapterName);
  const w = base.logicalWeight();
  if (!adapter || !base.merged.includes(adapterName)) return w;
  return tf.tidy(() => tf.sub(w, adapter.deltaWeight())) as tf.Tensor2D;
}

/** Dense W0 and ΔW of one module on the host, for histograms, dense spectra, comparisons and eigenvalues. */
export async function readDense(
  base: AdaptableLayer,
  adapter: AdapterLayer,
  adapterName: string,
): Promise<{ base: Matrix; delta: Matrix }> {
  const host = await download(() => ({
    base: baseWeightTensor(base, adapterName),
    delta: adapter.deltaWeight(),
  }));
  return { base: toMatrix(host.base), delta: toMatrix(host.delta) };
}

/** Transformer block index in a module name: the first purely numeric dotted segment. */
export function layerIndexOf(module: string): number | null {
  const m = /(?:^|\.)(\d+)(?:\.|$)/.exec(module);
  return m ? Number(m[1]) : null;
}

/** The module name with its block index replaced by `*`: modules with one role share a heatmap. */
export function roleOf(module: string): string {
  return module.replace(/(^|\.)(\d+)(\.|$)/, '$1*$3');
}
