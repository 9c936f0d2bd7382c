import { promises as fs } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { detachAdapter } from '../adapters/index.ts';
import type { AdapterInstance } from '../adapters/types.ts';
import { AnalysisRecorder } from '../analysis/recorder.ts';
import { writeDirAtomic, writeFileAtomic } from '../io/atomic.ts';
import { loadModel } from '../models/index.ts';
import type { LoadedModel } from '../models/types.ts';
import {
  METRICS_FILE,
  newRunId,
  openProject,
  type Project,
  projectPath,
  RUNS_DIR,
  type RunRecord,
  writeRunRecord,
} from '../project/store.ts';
import { type CheckpointState, checkpointDir, saveCheckpoint } from '../runs/index.ts';
import { initialTrainerState } from '../training/trainer.ts';
import { ExportError } from './errors.ts';
import { ADAPTER_CONFIG, loadPeftAdapter, readAdapterConfig } from './peft.ts';
import { disposeBatch, maxAbsDiff, probeBatch, probeOutputs } from './verify.ts';

export interface ImportResult {
  runId: string;
  runDir: string;
  method: string;
  /** The method config read from adapter_config.json, as the run records it. */
  config: Record<string, unknown>;
  /** Adapted modules, and modules saved whole (modules_to_save). */
  modules: string[];
  savedModules: string[];
  /** Largest logit change the adapter makes on a probe batch. */
  adapterEffect: number;
  warnings: string[];
}

const TASK_TYPES: Record<string, string> = { CAUSAL_LM: 'causal-lm', SEQ_CLS: 'seq-cls' };

/** Names a folder's model the way adapter_config.json may: its path, its folder name or `_name_or_path`. */
function modelNames(model: LoadedModel): string[] {
  const names = [resolve(model.dir), basename(resolve(model.dir))];
  const own = model.spec.config._name_or_path;
  if (typeof own === 'string' && own.trim() !== '') names.push(own, basename(own));
  return names;
}

/** A fresh AdamW state (zero moments, step 0) for every trainable tensor, so `resumeRun` trains on from here. */
export function freshOptimizerState(instance: AdapterInstance): Record<string, tf.Tensor> {
  const tensors: Record<string, tf.Tensor> = {};
  for (const p of instance.trainable()) {
    tensors[`${p.name}.exp_avg`] = tf.zerosLike(p.variable);
    tensors[`${p.name}.exp_avg_sq`] = tf.zerosLike(p.variable);
  }
  return tensors;
}

/**
 * The project an adapter folder is imported into and its model, loaded; the adapter's `task_type` must be the
 * project's task (refused naming adapter_config.json otherwise).
 */
export async function openImportTarget(
  source: string,
  projectDir: string,
): Promise<{ project: Project; adapterConfig: Record<string, unknown>; model: LoadedModel }> {
  const project = await openProject(projectDir);
  const settings = project.settings;
  const adapterConfig = await readAdapterConfig(source);
  const configPath = join(source, ADAPTER_CONFIG);
  const taskType = adapterConfig.task_type;
  if (typeof taskType === 'string' && TASK_TYPES[taskType] && TASK_TYPES[taskType] !== settings.task) {
    throw new ExportError(
      `${configPath}: task_type is ${taskType}, but project ${project.dir} is ${settings.task}; import it into a ${TASK_TYPES[taskType]} project`,
    );
  }
  const labels = settings.data.labels;
  const model = await loadModel(projectPath(project.dir, settings.model), {
    task: settings.task,
    numLabels: settings.task === 'seq-cls' ? labels?.length : undefined,
    seed: settings.training.seed,
  });
  return { project, adapterConfig, model };
}

/**
 * The warning for an adapter whose `base_model_name_or_path` names another model than the project's, once every
 * tensor has fit the project's model (a model copied or renamed, a hub id for a local folder); null when it
 * names the project's model.
 */
export function baseModelWarning(
  adapterConfig: Record<string, unknown>,
  source: string,
  model: LoadedModel,
): string | null {
  const base = adapterConfig.base_model_name_or_path;
  if (typeof base !== 'string' || base === '' || modelNames(model).includes(base)) return null;
  return `${join(source, ADAPTER_CONFIG)}: base_model_name_or_path is "${base}", the project's model is ${model.dir}; every tensor fits its shapes, so it was imported`;
}

/**
 * `state.json` of an adapter brought in at `step`: the trainer position of that step, a fresh optimizer (its
 * moments were not brought along) and the project's seed, so `resumeRun` trains on from it.
 */
export function importedCheckpointState(
  instance: AdapterInstance,
  step: number,
  seed: number,
  savedAt: string,
): CheckpointState {
  return {
    schemaVersion: 1,
    step,
    trainer: { ...initialTrainerState(), step },
    rng: {
      seed,
      dataOrder: 'permutation(seed, epoch)',
      dropout: 'trainingContext(seed, microStep)',
      microStep: 0,
    },
    seed,
    optimizerStep: 0,
    method: instance.method,
    config: instance.config,
    adapterName: instance.name,
    savedAt,
  };
}

/**
 * Brings a PEFT adapter folder into a project as a run marked imported (`origin.kind = 'imported-adapter'`):
 * the adapter is loaded onto the project's model (every key, module and shape checked, errors naming the file,
 * the module and the shapes), written as the run's step-0 checkpoint with a fresh optimizer state, and analysed
 * once. The run then works like a trained one: analysis, try-it, eval, every export, and `resumeRun` trains it
 * further with the project's training settings. A `base_model_name_or_path` other than the project's model is
 * a warning when every shape fits.
 */
export async function importPeftAdapter(adapterDir: string, projectDir: string): Promise<ImportResult> {
  const source = resolve(adapterDir);
  const { project, adapterConfig, model } = await openImportTarget(source, projectDir);
  const settings = project.settings;
  const labels = settings.data.labels;
  try {
    const warnings: string[] = [];
    const instance = await loadPeftAdapter(model, source, {
      adapterName: 'default',
      seed: settings.training.seed,
    });
    const foreign = baseModelWarning(adapterConfig, source, model);
    if (foreign) warnings.push(foreign);
    const batch = probeBatch(model.spec.vocabSize);
    let adapterEffect: number;
    try {
      const adapted = probeOutputs(model, batch);
      const layers = [...model.layers.values()];
      for (const l of layers) l.adaptersEnabled = false;
      const plain = probeOutputs(model, batch);
      for (const l of layers) l.adaptersEnabled = true;
      adapterEffect = maxAbsDiff(adapted, plain);
    } finally {
      disposeBatch(batch);
    }
    if (adapterEffect === 0) warnings.push(`${source}: the adapter does not change the model's outputs`);

    const runId = newRunId();
    const runDir = join(project.dir, RUNS_DIR, runId);
    const now = new Date().toISOString();
    const state = importedCheckpointState(instance, 0, settings.training.seed, now);
    const record: RunRecord = {
      schemaVersion: 1,
      runId,
      config: { ...settings, method: { name: instance.method, config: instance.config } },
      status: 'completed',
      reason: 'imported',
      totalSteps: 0,
      step: 0,
      backend: tf.getBackend(),
      ...(labels ? { labels } : {}),
      createdAt: now,
      updatedAt: now,
      finishedAt: now,
      trainSeconds: 0,
      lastCheckpoint: checkpointDir(runDir, 0),
      origin: { kind: 'imported-adapter', source, importedAt: now },
    };
    // The run appears whole or not at all: built in a hidden sibling (which run listings skip), then renamed.
    await writeDirAtomic(runDir, async (tmp) => {
      await fs.mkdir(join(tmp, 'exports'), { recursive: true });
      await writeFileAtomic(join(tmp, METRICS_FILE), '');
      const adapter = instance.state();
      const optimizer = freshOptimizerState(instance);
      try {
        await saveCheckpoint(
          tmp,
          { adapter, optimizer: { step: 0, tensors: optimizer }, state },
          settings.training.keepCheckpoints,
        );
      } finally {
        tf.dispose([...Object.values(adapter), ...Object.values(optimizer)]);
      }
      await writeRunRecord(tmp, record);
      await new AnalysisRecorder({ runDir: tmp, model }).record(0, instance, 'final');
    });
    const result: ImportResult = {
      runId,
      runDir,
      method: instance.method,
      config: instance.config,
      modules: [...instance.layers.keys()],
      savedModules: [...(instance.savedModules?.keys() ?? [])],
      adapterEffect,
      warnings,
    };
    detachAdapter(model, instance.name);
    return result;
  } finally {
    model.dispose();
  }
}
