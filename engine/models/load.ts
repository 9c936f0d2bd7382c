import { promises as fs } from 'node:fs';
import { basename, join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { FrozenWeight } from '../backends/frozen.ts';
import { NATIVE_BACKEND } from '../backends/native/backend.ts';
import { placeFrozenWeight } from '../backends/placement.ts';
import { uninitializedWasmTensor } from '../backends/wasm.ts';
import { type CheckpointReader, openCheckpoint, SafetensorsError } from '../safetensors/index.ts';
import { type ArchConfig, ModelError, readModelConfig } from './config.ts';
import { AdaptableLayer } from './layers.ts';
import { TransformerModel } from './model.ts';
import type { ModelWeights } from './network.ts';
import { archConfig, architectureOf, sizeError, specFromConfig } from './registry.ts';
import type { ModelSpec, ModuleInfo, TaskKind } from './types.ts';

export interface LoadOptions {
  task?: TaskKind;
  numLabels?: number;
  /** Seed for head weights missing from the checkpoint (default 0). */
  seed?: number;
}

/** Where each tensor of a module comes from; `null` when the module is initialised at random. */
interface TensorPlan {
  module: ModuleInfo;
  param: 'weight' | 'bias';
  shape: number[];
  key: string | null;
}

/** Module names whose weights may be absent (transformers initialises them at random): task heads. */
function isHeadModule(module: ModuleInfo, arch: ArchConfig): boolean {
  if (arch.task !== 'seq-cls') return false;
  return (
    module.name === 'score' ||
    module.name.startsWith('classifier') ||
    module.name === `${arch.basePrefix}.pooler.dense`
  );
}

/** Checkpoint keys a parameter may be stored under: with or without the base prefix, legacy gamma/beta. */
function candidateKeys(module: ModuleInfo, param: 'weight' | 'bias', arch: ArchConfig): string[] {
  const names = [module.name];
  const prefix = `${arch.basePrefix}.`;
  if (module.name.startsWith(prefix)) names.push(module.name.slice(prefix.length));
  const keys = names.map((n) => `${n}.${param}`);
  if (module.type === 'LayerNorm') {
    const legacy = param === 'weight' ? 'gamma' : 'beta';
    keys.push(...names.map((n) => `${n}.${legacy}`));
  }
  return keys;
}

function sameShape(a: number[], b: number[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

/** Resolves every tensor to a checkpoint key and checks shapes, before any data is read. */
function planTensors(spec: ModelSpec, arch: ArchConfig, reader: CheckpointReader): TensorPlan[] {
  const plan: TensorPlan[] = [];
  const missing: string[] = [];
  for (const module of spec.modules) {
    if (module.tiedTo) continue;
    const params: ('weight' | 'bias')[] = module.hasBias ? ['weight', 'bias'] : ['weight'];
    for (const param of params) {
      const shape =
        param === 'weight' ? module.shape : [module.type === 'Conv1D' ? module.shape[1] : module.shape[0]];
      const candidates = candidateKeys(module, param, arch);
      const key = candidates.find((k) => reader.has(k)) ?? null;
      if (key === null) {
        if (isHeadModule(module, arch)) plan.push({ module, param, shape, key: null });
        else missing.push(candidates[0]);
        continue;
      }
      const actual = reader.info(key).shape;
      if (!sameShape(actual, shape)) {
        const hint =
          isHeadModule(module, arch) &&
          param === 'weight' &&
          module.name !== `${arch.basePrefix}.pooler.dense`
            ? ` (the checkpoint's head has ${actual[0]} labels; load with numLabels ${actual[0]})`
            : '';
        throw new ModelError(
          reader.fileOf(key),
          `tensor "${key}" has shape [${actual}], expected [${shape}] for ${module.name} (${module.type}) from config.json${hint}`,
        );
      }
      plan.push({ module, param, shape, key });
    }
  }
  if (missing.length > 0) {
    const shown = missing.slice(0, 12).join(', ');
    const more = missing.length > 12 ? ` and ${missing.length - 12} more` : '';
    throw new ModelError(
      reader.path,
      `missing ${missing.length} weight${missing.length === 1 ? '' : 's'} for ${spec.architecture}: ${shown}${more}`,
    );
  }
  return plan;
}

/**
 * Before any tensor is planned or read: the parameters config.json implies (task heads that may be absent
 * aside) must fit in the values the weight files hold, by their safetensors headers. A config implying more
 * than twice as many describes another model (`num_hidden_layers` far beyond the checkpoint) and is refused
 * naming the field; a smaller shortfall is missing or misshapen tensors, which the tensor plan lists.
 */
function checkSizeAgainstWeights(
  config: Record<string, unknown>,
  taskOpts: { task?: TaskKind; numLabels?: number },
  spec: ModelSpec,
  reader: CheckpointReader,
): void {
  const needed = (s: ModelSpec, arch: ArchConfig) =>
    s.modules.reduce((sum, m) => sum + (m.tiedTo || isHeadModule(m, arch) ? 0 : m.params), 0);
  const implied = needed(spec, archConfig(config, taskOpts));
  let held = 0;
  for (const key of reader.keys()) held += reader.info(key).shape.reduce((a, b) => a * b, 1);
  if (implied <= 2 * held) return;
  const count = (c: Record<string, unknown>) => needed(specFromConfig(c, taskOpts), archConfig(c, taskOpts));
  const files = reader.files.map((f) => basename(f)).join(', ');
  const holds = reader.files.length === 1 ? 'holds' : 'hold';
  throw sizeError(
    config,
    count,
    implied,
    2 * held,
    `twice the ${held.toLocaleString('en-US')} values ${files} ${holds}`,
  );
}

async function openWeights(dir: string): Promise<CheckpointReader> {
  try {
    return await openCheckpoint(dir);
  } catch (error) {
    if (error instanceof SafetensorsError && error.file === dir) {
      const bin = await fs
        .access(join(dir, 'pytorch_model.bin'))
        .then(() => true)
        .catch(() => false);
      const hint = bin
        ? ' (found pytorch_model.bin: convert it to safetensors, PyTorch pickles are not read)'
        : '';
      throw new ModelError(dir, `no model.safetensors or model.safetensors.index.json${hint}`);
    }
    throw error;
  }
}

export interface WeightsReport {
  /** Safetensors files of the checkpoint. */
  files: string[];
  sharded: boolean;
  /** Tensors the model uses, counted by stored dtype. */
  dtypes: Record<string, number>;
  /** Bytes of the tensors the model uses, as stored. */
  bytes: number;
  /** Head modules absent from the checkpoint (initialised at random on load). */
  newlyInitialized: string[];
  /** Checkpoint tensors the model does not use (buffers, other heads). */
  unused: string[];
}

/** Checks a folder's weights against its config (names, shapes) from the safetensors headers alone. */
export async function checkWeights(dir: string, opts: LoadOptions = {}): Promise<WeightsReport> {
  const config = await readModelConfig(dir);
  const taskOpts = { task: opts.task, numLabels: opts.numLabels };
  const spec = specFromConfig(config, taskOpts);
  const reader = await openWeights(dir);
  try {
    checkSizeAgainstWeights(config, taskOpts, spec, reader);
    const plan = planTensors(spec, archConfig(config, taskOpts), reader);
    const dtypes: Record<string, number> = {};
    let bytes = 0;
    const used = new Set<string>();
    const newlyInitialized: string[] = [];
    for (const item of plan) {
      if (item.key === null) {
        if (!newlyInitialized.includes(item.module.name)) newlyInitialized.push(item.module.name);
        continue;
      }
      const info = reader.info(item.key);
      dtypes[info.dtype] = (dtypes[info.dtype] ?? 0) + 1;
      bytes += info.byteLength;
      used.add(item.key);
    }
    const unused = reader.keys().filter((k) => !used.has(k));
    return { files: reader.files, sharded: reader.sharded, dtypes, bytes, newlyInitialized, unused };
  } finally {
    await reader.close();
  }
}

/**
 * On wasm the weight streams straight into the tensor's heap storage: never two copies of a big embedding. On
 * webgpu a matrix gets its GPU copy in the checkpoint's precision.
 */
async function readWeight(reader: CheckpointReader, key: string, shape: number[]): Promise<tf.Tensor> {
  if (tf.getBackend() === NATIVE_BACKEND) return tf.tensor(await reader.readFloat32(key), shape, 'float32');
  const target = uninitializedWasmTensor(shape);
  if (!target) {
    const t = tf.tensor(await reader.readFloat32(key), shape, 'float32');
    placeFrozenWeight(t, reader.info(key).dtype);
    return t;
  }
  try {
    await reader.readFloat32Into(key, target.view);
    return target.tensor;
  } catch (error) {
    target.tensor.dispose();
    throw error;
  }
}

/** Name lookups over the loaded tensors; a missing name is a bug of the architecture module. */
function weightsOf(layers: Map<string, AdaptableLayer>, params: Map<string, tf.Tensor>): ModelWeights {
  return {
    layer(name) {
      const layer = layers.get(name);
      if (!layer) throw new Error(`model has no module ${name}`);
      return layer;
    },
    param(name) {
      const p = params.get(name);
      if (!p) throw new Error(`model has no parameter ${name}`);
      return p as tf.Tensor1D;
    },
  };
}

/**
 * A module's frozen weight. On the native backend bf16/f16/f32 checkpoint tensors are kept in their own dtype
 * (read as raw bytes: no float32 copy at any point); other dtypes and other backends get float32.
 */
async function readFrozenWeight(
  reader: CheckpointReader,
  key: string,
  shape: [number, number],
): Promise<FrozenWeight> {
  const { dtype } = reader.info(key);
  if (tf.getBackend() === NATIVE_BACKEND && (dtype === 'F32' || dtype === 'BF16' || dtype === 'F16')) {
    const raw = await reader.readRaw(key);
    const aligned = raw.byteOffset % 4 === 0 ? raw : raw.slice();
    const values =
      dtype === 'F32'
        ? new Float32Array(aligned.buffer, aligned.byteOffset, aligned.byteLength / 4)
        : new Uint16Array(aligned.buffer, aligned.byteOffset, aligned.byteLength / 2);
    return FrozenWeight.fromValues(dtype, shape, values);
  }
  return FrozenWeight.adopt((await readWeight(reader, key, shape)) as tf.Tensor2D);
}

/**
 * Loads a Hugging Face model folder: config.json and safetensors weights (single or sharded, any float
 * dtype), streamed one tensor at a time. Adaptable modules' weights become `FrozenWeight`s (in their checkpoint
 * dtype on the native backend); norms and biases float32 tensors.
 */
export async function loadModel(dir: string, opts: LoadOptions = {}): Promise<TransformerModel> {
  const config = await readModelConfig(dir);
  const taskOpts = { task: opts.task, numLabels: opts.numLabels };
  const spec = specFromConfig(config, taskOpts);
  const arch = archConfig(config, taskOpts);
  const reader = await openWeights(dir);
  const tensors = new Map<string, tf.Tensor>();
  const frozen = new Map<string, FrozenWeight>();
  const newlyInitialized: string[] = [];
  try {
    checkSizeAgainstWeights(config, taskOpts, spec, reader);
    const plan = planTensors(spec, arch, reader);
    let seed = opts.seed ?? 0;
    for (const item of plan) {
      const name = `${item.module.name}.${item.param}`;
      const isFrozen = item.module.adaptable !== undefined && item.param === 'weight';
      if (item.key === null) {
        // transformers' _init_weights: normal(0, initializer_range) weights, zero biases
        const t =
          item.param === 'bias'
            ? tf.zeros(item.shape)
            : tf.randomNormal(item.shape, 0, arch.initializerRange, 'float32', seed++);
        if (isFrozen) frozen.set(name, FrozenWeight.adopt(t as tf.Tensor2D));
        else tensors.set(name, t);
        if (!newlyInitialized.includes(item.module.name)) newlyInitialized.push(item.module.name);
        continue;
      }
      if (isFrozen) {
        frozen.set(name, await readFrozenWeight(reader, item.key, item.shape as [number, number]));
      } else {
        tensors.set(name, await readWeight(reader, item.key, item.shape));
      }
    }
    const layers = new Map<string, AdaptableLayer>();
    const params = new Map<string, tf.Tensor>();
    for (const module of spec.modules) {
      if (module.adaptable) {
        const source = module.tiedTo ?? module.name;
        const weight = frozen.get(`${source}.weight`)!;
        const bias = (tensors.get(`${module.name}.bias`) as tf.Tensor1D | undefined) ?? null;
        const item = plan.find((p) => p.module.name === source && p.param === 'weight');
        const layer = new AdaptableLayer(
          module.name,
          module.adaptable,
          weight,
          bias,
          item?.key ?? `${source}.weight`,
        );
        if (module.tiedTo) {
          const peer = layers.get(module.tiedTo)!;
          peer.tiedWith.push(layer);
          layer.tiedWith.push(peer);
        }
        layers.set(module.name, layer);
      } else {
        params.set(`${module.name}.weight`, tensors.get(`${module.name}.weight`)!);
        if (module.hasBias) params.set(`${module.name}.bias`, tensors.get(`${module.name}.bias`)!);
      }
    }
    const architecture = architectureOf(config);
    const network = architecture.network(arch, weightsOf(layers, params));
    return new TransformerModel(
      spec,
      arch,
      dir,
      layers,
      params,
      network,
      architecture.positionLimit(arch),
      newlyInitialized,
    );
  } catch (error) {
    for (const t of tensors.values()) t.dispose();
    for (const w of frozen.values()) w.dispose();
    throw error;
  } finally {
    await reader.close();
  }
}
