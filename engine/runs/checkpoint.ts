import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { writeDirAtomic, writeJsonAtomic } from '../io/atomic.ts';
import { openSafetensors, type TensorData, writeSafetensors } from '../safetensors/index.ts';
import type { TrainerState } from '../training/trainer.ts';

export const CHECKPOINTS_DIR = 'checkpoints';
export const ADAPTER_FILE = 'adapter.safetensors';
export const OPTIMIZER_FILE = 'optimizer.safetensors';
export const STATE_FILE = 'state.json';
export const CHECKPOINT_SCHEMA_VERSION = 1;

/** `state.json` of a checkpoint: where the run is, and what produced the adapter. */
export interface CheckpointState {
  schemaVersion: number;
  step: number;
  trainer: TrainerState;
  /** Data order and dropout are pure functions of (seed, epoch) and (seed, micro-step): this is the whole RNG state. */
  rng: {
    seed: number;
    dataOrder: 'permutation(seed, epoch)';
    dropout: 'trainingContext(seed, microStep)';
    microStep: number;
  };
  seed: number;
  optimizerStep: number;
  method: string;
  /** The parsed method config. */
  config: Record<string, unknown>;
  adapterName: string;
  savedAt: string;
}

export function checkpointDir(runDir: string, step: number): string {
  return join(runDir, CHECKPOINTS_DIR, `step-${step}`);
}

/** Checkpoint steps present in a run, ascending (complete ones only: writes are atomic directory renames). */
export async function listCheckpoints(runDir: string): Promise<number[]> {
  let names: string[];
  try {
    names = await fs.readdir(join(runDir, CHECKPOINTS_DIR));
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw error;
  }
  return names
    .map((n) => /^step-(\d+)$/.exec(n))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => Number(m[1]))
    .sort((a, b) => a - b);
}

async function toTensorData(tensors: Record<string, tf.Tensor>): Promise<Record<string, TensorData>> {
  const out: Record<string, TensorData> = {};
  for (const [name, t] of Object.entries(tensors)) {
    if (t.dtype === 'int32')
      out[name] = { dtype: 'I32', shape: t.shape, data: (await t.data()) as Int32Array };
    else if (t.dtype === 'float32')
      out[name] = { dtype: 'F32', shape: t.shape, data: (await t.data()) as Float32Array };
    else throw new Error(`cannot checkpoint tensor "${name}" of dtype ${t.dtype}`);
  }
  return out;
}

/**
 * Refuses adapter or optimizer state holding NaN or ±Inf, naming the tensor and the file: training on from it,
 * or exporting it, would only spread the non-finite values.
 */
export function checkFinite(values: Float32Array, tensor: string, file: string): Float32Array {
  for (let i = 0; i < values.length; i++) {
    if (!Number.isFinite(values[i])) {
      throw new Error(
        `${file}: tensor "${tensor}" holds a non-finite value (${values[i]} at index ${i} of ${values.length}); the state was saved after the run diverged or the file is damaged`,
      );
    }
  }
  return values;
}

/** Reads every tensor of a safetensors file (F32 and I32 as saved); float values must be finite. */
export async function readTensors(path: string): Promise<Record<string, tf.Tensor>> {
  const file = await openSafetensors(path);
  const out: Record<string, tf.Tensor> = {};
  try {
    for (const key of file.keys()) {
      const info = file.info(key);
      if (info.dtype === 'I32') {
        const raw = await file.readRaw(key);
        const ints = new Int32Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.byteLength));
        out[key] = tf.tensor(ints, info.shape, 'int32');
      } else {
        out[key] = tf.tensor(checkFinite(await file.readFloat32(key), key, path), info.shape, 'float32');
      }
    }
    return out;
  } catch (error) {
    tf.dispose(Object.values(out));
    throw error;
  } finally {
    await file.close();
  }
}

export interface CheckpointContents {
  adapter: Record<string, tf.Tensor>;
  optimizer: { step: number; tensors: Record<string, tf.Tensor> };
  state: CheckpointState;
}

/** Writes `checkpoints/step-N/` atomically (built in a temp folder, then renamed) and prunes to the last `keep`. */
export async function saveCheckpoint(
  runDir: string,
  contents: CheckpointContents,
  keep: number,
): Promise<string> {
  const dir = checkpointDir(runDir, contents.state.step);
  const adapter = await toTensorData(contents.adapter);
  const optimizer = await toTensorData(contents.optimizer.tensors);
  await writeDirAtomic(dir, async (tmp) => {
    await writeSafetensors(join(tmp, ADAPTER_FILE), adapter, {
      format: 'studio-native',
      method: contents.state.method,
      step: String(contents.state.step),
    });
    await writeSafetensors(join(tmp, OPTIMIZER_FILE), optimizer, {
      format: 'studio-adamw',
      step: String(contents.optimizer.step),
    });
    await writeJsonAtomic(join(tmp, STATE_FILE), contents.state);
  });
  const steps = await listCheckpoints(runDir);
  for (const old of steps.slice(0, Math.max(0, steps.length - keep))) {
    await fs.rm(checkpointDir(runDir, old), { recursive: true, force: true });
  }
  return dir;
}

/** Reads `state.json` of a checkpoint folder. */
export async function readCheckpointState(dir: string): Promise<CheckpointState> {
  const path = join(dir, STATE_FILE);
  let state: CheckpointState;
  try {
    state = JSON.parse(await fs.readFile(path, 'utf8'));
  } catch (error) {
    throw new Error(`${path}: cannot read the checkpoint state (${(error as Error).message})`);
  }
  if (state.schemaVersion !== CHECKPOINT_SCHEMA_VERSION) {
    throw new Error(
      `${path}: checkpoint schemaVersion ${state.schemaVersion} is not supported (expected ${CHECKPOINT_SCHEMA_VERSION})`,
    );
  }
  return state;
}

/** Loads a checkpoint folder; the caller disposes the tensors. */
export async function loadCheckpoint(dir: string): Promise<CheckpointContents> {
  const state = await readCheckpointState(dir);
  const adapter = await readTensors(join(dir, ADAPTER_FILE));
  try {
    const optimizer = await readTensors(join(dir, OPTIMIZER_FILE));
    return { adapter, optimizer: { step: state.optimizerStep, tensors: optimizer }, state };
  } catch (error) {
    tf.dispose(Object.values(adapter));
    throw error;
  }
}
