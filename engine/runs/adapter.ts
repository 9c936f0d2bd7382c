import { promises as fs } from 'node:fs';
import { join, resolve } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { attachAdapter } from '../adapters/index.ts';
import type { AdapterInstance } from '../adapters/types.ts';
import { activateBackend } from '../backends/activate.ts';
import type { ProjectSettings } from '../common/project-schema.ts';
import { type LoadedModel, loadModel, loadTokenizer, type StudioTokenizer } from '../models/index.ts';
import { projectOfRun, projectPath, type RunRecord, readRunRecord } from '../project/store.ts';
import {
  ADAPTER_FILE,
  type CheckpointState,
  checkpointDir,
  listCheckpoints,
  readCheckpointState,
  readTensors,
} from './checkpoint.ts';

/** The run folder and checkpoint folder of a path that is either. */
export async function locateCheckpoint(
  runOrCheckpointDir: string,
): Promise<{ runDir: string; checkpoint: string }> {
  const dir = resolve(runOrCheckpointDir);
  const isCheckpoint = await fs
    .access(join(dir, ADAPTER_FILE))
    .then(() => true)
    .catch(() => false);
  if (isCheckpoint) return { runDir: resolve(dir, '..', '..'), checkpoint: dir };
  const steps = await listCheckpoints(dir);
  if (steps.length === 0) throw new Error(`${dir}: neither a checkpoint folder nor a run with checkpoints`);
  return { runDir: dir, checkpoint: checkpointDir(dir, steps[steps.length - 1]) };
}

/**
 * Activates the backend a saved run (or one of its checkpoints) is read on: `preference` when given, else the
 * run's own setting. Returns the run folder.
 */
export async function activateRunBackend(runOrCheckpointDir: string, preference?: string): Promise<string> {
  const { runDir } = await locateCheckpoint(runOrCheckpointDir);
  await activateBackend(preference ?? (await readRunRecord(runDir)).config.backend);
  return runDir;
}

export interface RunAdapter {
  model: LoadedModel;
  tokenizer: StudioTokenizer;
  instance: AdapterInstance;
  runConfig: ProjectSettings;
  record: RunRecord;
  runDir: string;
  checkpoint: string;
  state: CheckpointState;
}

/** A trained adapter back in memory: the run's model with the checkpoint's adapter attached (latest when given a run). */
export async function loadRunAdapter(runOrCheckpointDir: string): Promise<RunAdapter> {
  const { runDir, checkpoint } = await locateCheckpoint(runOrCheckpointDir);
  const record = await readRunRecord(runDir);
  const state = await readCheckpointState(checkpoint);
  const settings = record.config;
  const modelDir = projectPath(projectOfRun(runDir), settings.model);
  const model = await loadModel(modelDir, {
    task: settings.task,
    numLabels: settings.task === 'seq-cls' ? (record.labels ?? settings.data.labels)?.length : undefined,
    seed: settings.training.seed,
  });
  let instance: AdapterInstance | null = null;
  try {
    const tokenizer = await loadTokenizer(modelDir);
    instance = attachAdapter(model, state.method, state.config, {
      adapterName: state.adapterName,
      seed: state.seed,
    });
    const tensors = await readTensors(join(checkpoint, ADAPTER_FILE));
    try {
      instance.loadState(tensors);
    } finally {
      tf.dispose(Object.values(tensors));
    }
    return { model, tokenizer, instance, runConfig: settings, record, runDir, checkpoint, state };
  } catch (error) {
    instance?.dispose();
    model.dispose();
    throw error;
  }
}
