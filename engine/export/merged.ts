import { promises as fs } from 'node:fs';
import { basename, join } from 'node:path';
import type { AdapterInstance } from '../adapters/types.ts';
import { copyFileTo, writeJsonAtomic } from '../io/atomic.ts';
import type { AdaptableLayer } from '../models/layers.ts';
import type { LoadedModel } from '../models/types.ts';
import {
  type CheckpointReader,
  type Dtype,
  encodeFromFloat32,
  INDEX_FILE,
  openCheckpoint,
  type TensorEntry,
  tensorByteLength,
  writeSafetensorsStreaming,
  writeShardedSafetensors,
} from '../safetensors/index.ts';
import { ExportError } from './errors.ts';

/** Weight files of other formats are never copied next to the merged safetensors. */
const WEIGHT_FILE = /\.(safetensors|bin|pt|pth|ckpt|h5|msgpack|onnx|gguf)$|\.(safetensors|bin)\.index\.json$/;

export interface MergedOptions {
  /** Largest shard of a merged model that was not sharded before (default 5 GB, as transformers). */
  maxShardBytes?: number;
}

/** The merged values of one adapted module, in the checkpoint's stored orientation. */
interface MergedModule {
  weight: Float32Array;
  /** Present when merging changed the bias (LoRA's lora_bias). */
  bias: Float32Array | null;
}

/**
 * Folds the adapter into a copy of one layer's weight via the layer's own `merge` (which knows DoRA's
 * rescaling and lora_bias), reads the result in stored orientation, and puts the exact original tensors
 * back so the in-memory model is bit-for-bit unchanged.
 */
function mergeOne(layer: AdaptableLayer, adapterName: string): MergedModule {
  if (layer.merged.length > 0) {
    throw new ExportError(
      `${layer.name}: adapters [${layer.merged.join(', ')}] are merged in memory; unmerge first`,
    );
  }
  const weight = layer.weight.snapshot();
  const bias = layer.bias ? layer.bias.clone() : null;
  const biasBefore = layer.bias;
  try {
    layer.merge(adapterName);
    const mergedBias =
      layer.bias !== biasBefore && layer.bias ? (layer.bias.dataSync() as Float32Array) : null;
    return {
      weight: layer.weight.float32(),
      bias: mergedBias ? Float32Array.from(mergedBias) : null,
    };
  } finally {
    layer.unmerge(adapterName);
    layer.weight.restore(weight);
    if (bias) {
      if (layer.bias && layer.bias !== bias) layer.bias.dispose();
      layer.bias = bias;
    }
  }
}

/** `x.weight` → `x.bias`. */
function biasKeyOf(weightKey: string): string {
  return weightKey.endsWith('.weight')
    ? `${weightKey.slice(0, -'.weight'.length)}.bias`
    : `${weightKey}.bias`;
}

function isFloatDtype(dtype: Dtype): dtype is 'F32' | 'F16' | 'BF16' | 'F64' {
  return dtype === 'F32' || dtype === 'F16' || dtype === 'BF16' || dtype === 'F64';
}

/** The adapter folded into a checkpoint, one tensor at a time (see `mergedTensors`). */
export interface MergedTensors {
  ckpt: CheckpointReader;
  /** Tensors the checkpoint lacks (randomly initialised task heads), written from memory. */
  extra: TensorEntry[];
  /**
   * The merged float32 values of `entry` (in stored orientation) when merging or a head changes it, null when
   * the checkpoint's own tensor stands. Each adapted module is merged once and kept only until its weight
   * (and changed bias) have been asked for.
   */
  valuesOf(entry: TensorEntry): Float32Array | null;
}

/**
 * Opens the model's checkpoint with the adapter folded in: every tensor of the input checkpoint plus the heads
 * it lacks. The caller closes `ckpt`.
 */
export async function mergedTensors(model: LoadedModel, instance: AdapterInstance): Promise<MergedTensors> {
  const byKey = new Map<string, AdaptableLayer>();
  // Saved modules (modules_to_save) merge as their trained copy.
  for (const name of [...instance.layers.keys(), ...(instance.savedModules?.keys() ?? [])]) {
    const layer = model.layers.get(name);
    if (!layer)
      throw new ExportError(`adapter "${instance.name}" targets ${name}, which the model does not have`);
    if (layer.tiedWith.length > 0) {
      const peers = layer.tiedWith.map((l) => l.name).join(', ');
      throw new ExportError(
        `cannot merge adapter "${instance.name}" into ${name}: its weight is shared with ${peers} (tie_word_embeddings), so the merged model would change ${peers} too; export --format peft or lora instead`,
      );
    }
    byKey.set(layer.weightKey, layer);
  }
  const ckpt = await openCheckpoint(model.dir);
  try {
    const floatDtype =
      ckpt
        .keys()
        .map((k) => ckpt.info(k).dtype)
        .find(isFloatDtype) ?? 'F32';
    // Task heads the checkpoint lacks (initialised from the run's seed) are written from memory, so the
    // merged folder loads as the same model.
    const heads = new Map<string, { layer: AdaptableLayer; part: 'weight' | 'bias'; entry: TensorEntry }>();
    for (const name of model.newlyInitialized ?? []) {
      const layer = model.layers.get(name);
      if (!layer) throw new ExportError(`the model's randomly initialised module ${name} cannot be exported`);
      const weightKey = `${name}.weight`;
      heads.set(weightKey, {
        layer,
        part: 'weight',
        entry: { name: weightKey, dtype: floatDtype, shape: layer.weight.shape },
      });
      if (layer.bias) {
        const biasKey = `${name}.bias`;
        heads.set(biasKey, {
          layer,
          part: 'bias',
          entry: { name: biasKey, dtype: floatDtype, shape: layer.bias.shape },
        });
      }
    }
    const keys = new Set([...ckpt.keys(), ...heads.keys()]);
    const biasKeys = new Map<string, AdaptableLayer>();
    for (const [key, layer] of byKey) {
      if (!keys.has(key)) {
        throw new ExportError(
          `${ckpt.path}: adapted weight "${key}" (${layer.name}) is not in the model's checkpoint`,
        );
      }
      if (layer.bias) biasKeys.set(biasKeyOf(key), layer);
    }
    // One adapted module at a time: its merged weight (and changed bias) is kept only until written.
    const cache = new Map<AdaptableLayer, { merged: MergedModule; remaining: number }>();
    const take = (layer: AdaptableLayer, part: 'weight' | 'bias'): Float32Array | null => {
      let c = cache.get(layer);
      if (!c) {
        const merged = mergeOne(layer, instance.name);
        const biasKey = biasKeyOf(layer.weightKey);
        if (merged.bias && !keys.has(biasKey)) {
          throw new ExportError(
            `${ckpt.path}: merging changes the bias of ${layer.name}, but "${biasKey}" is not in the checkpoint`,
          );
        }
        c = { merged, remaining: merged.bias ? 2 : 1 };
        cache.set(layer, c);
      }
      const values = part === 'weight' ? c.merged.weight : c.merged.bias;
      if (values && --c.remaining === 0) cache.delete(layer);
      return values;
    };
    const valuesOf = (entry: TensorEntry): Float32Array | null => {
      const weightLayer = byKey.get(entry.name);
      const layer = weightLayer ?? biasKeys.get(entry.name);
      let values = layer ? take(layer, weightLayer ? 'weight' : 'bias') : null;
      const head = heads.get(entry.name);
      if (head && !values) {
        values =
          head.part === 'weight'
            ? head.layer.weight.float32()
            : Float32Array.from(head.layer.bias!.dataSync() as Float32Array);
      }
      if (!values) return null;
      const where = head ? 'the model in memory' : ckpt.fileOf(entry.name);
      if (!isFloatDtype(entry.dtype)) {
        throw new ExportError(`${where}: adapted tensor "${entry.name}" has dtype ${entry.dtype}`);
      }
      const expected = entry.shape.reduce((a, b) => a * b, 1);
      if (values.length !== expected) {
        throw new ExportError(
          `${where}: "${entry.name}" has shape [${entry.shape}] but the model's ${(layer ?? head!.layer).name} holds ${values.length} values`,
        );
      }
      return values;
    };
    return { ckpt, extra: [...heads.values()].map((h) => h.entry), valuesOf };
  } catch (error) {
    await ckpt.close();
    throw error;
  }
}

/**
 * Writes a complete Hugging Face model folder with the adapter folded in: every tensor of the input
 * checkpoint under the same name and dtype (F16/BF16 kept; adapted weights rounded once after adding ΔW),
 * the same shard layout when the input was sharded, and config/tokenizer files copied. Tensors are
 * produced one at a time, so the model is never in memory twice.
 */
export async function writeMergedModel(
  model: LoadedModel,
  instance: AdapterInstance,
  outDir: string,
  options: MergedOptions = {},
): Promise<{ files: string[]; dtypes: Dtype[] }> {
  const { ckpt, extra, valuesOf } = await mergedTensors(model, instance);
  try {
    const dtypes = new Set<Dtype>();
    const produce = async (entry: TensorEntry): Promise<ArrayBufferView> => {
      dtypes.add(entry.dtype);
      const values = valuesOf(entry);
      // valuesOf checked that a changed tensor has a float dtype
      return values ? encodeFromFloat32(entry.dtype as 'F32', values) : ckpt.readRaw(entry.name);
    };
    const files = await writeWeights(ckpt, extra, outDir, produce, options);
    for (const file of await copyModelFiles(model.dir, outDir)) files.push(file);
    return { files, dtypes: [...dtypes] };
  } finally {
    await ckpt.close();
  }
}

async function writeWeights(
  ckpt: CheckpointReader,
  extra: TensorEntry[],
  outDir: string,
  produce: (entry: TensorEntry) => Promise<ArrayBufferView>,
  options: MergedOptions,
): Promise<string[]> {
  const entryOf = (key: string): TensorEntry => {
    const { dtype, shape } = ckpt.info(key);
    return { name: key, dtype, shape };
  };
  const metadata = Object.keys(ckpt.metadata).length > 0 ? ckpt.metadata : { format: 'pt' };
  if (ckpt.sharded) {
    // Same shard files and weight_map as the input (extra head tensors go into the last shard), so tools
    // that pinned shard names still work.
    const groups = new Map<string, TensorEntry[]>();
    for (const key of ckpt.keys()) {
      const file = basename(ckpt.fileOf(key));
      groups.set(file, [...(groups.get(file) ?? []), entryOf(key)]);
    }
    const last = [...groups.keys()].pop()!;
    groups.get(last)!.push(...extra);
    const files: string[] = [];
    const weightMap: Record<string, string> = {};
    let total = 0;
    for (const [file, entries] of groups) {
      const path = join(outDir, file);
      await writeSafetensorsStreaming(path, entries, produce, metadata);
      for (const e of entries) {
        weightMap[e.name] = file;
        total += tensorByteLength(e.dtype, e.shape, path, e.name);
      }
      files.push(path);
    }
    const sortedMap = Object.fromEntries(
      Object.keys(weightMap)
        .sort()
        .map((k) => [k, weightMap[k]]),
    );
    const indexPath = join(outDir, INDEX_FILE);
    await writeJsonAtomic(indexPath, {
      metadata: { ...ckpt.indexMetadata, total_size: total },
      weight_map: sortedMap,
    });
    files.push(indexPath);
    return files;
  }
  const result = await writeShardedSafetensors(outDir, [...ckpt.keys().map(entryOf), ...extra], produce, {
    maxShardBytes: options.maxShardBytes,
    metadata,
  });
  return result.files;
}

/** Copies config.json, tokenizer and generation files (everything but weights and folders). */
async function copyModelFiles(fromDir: string, toDir: string): Promise<string[]> {
  const copied: string[] = [];
  for (const entry of await fs.readdir(fromDir, { withFileTypes: true })) {
    if (!entry.isFile() || entry.name.startsWith('.') || WEIGHT_FILE.test(entry.name)) continue;
    const to = join(toDir, entry.name);
    await copyFileTo(join(fromDir, entry.name), to);
    copied.push(to);
  }
  if (!copied.some((f) => basename(f) === 'config.json')) {
    throw new ExportError(`${fromDir}: no config.json to copy into the merged model`);
  }
  return copied;
}
