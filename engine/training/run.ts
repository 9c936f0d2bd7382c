import { promises as fs } from 'node:fs';
import { join, resolve } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { attachAdapter } from '../adapters/index.ts';
import { activateBackend } from '../backends/activate.ts';
import type { ProjectSettings, TrainingSettingsInput } from '../common/project-schema.ts';
import { prepareData } from '../data/prepare.ts';
import { EXPORT_MARKER } from '../export/marker.ts';
import { writeFileAtomic } from '../io/atomic.ts';
import { formatBytes } from '../io/bytes.ts';
import { writeFs } from '../io/fs.ts';
import { availableMemoryBytes } from '../io/memory.ts';
import {
  type LoadedModel,
  loadModel,
  loadTokenizer,
  readModelConfig,
  type StudioTokenizer,
  specFromConfig,
} from '../models/index.ts';
import {
  METRICS_FILE,
  newRunId,
  openProject,
  projectDataSources,
  projectOfRun,
  projectPath,
  RUNS_DIR,
  type RunRecord,
  withTrainingOverrides,
  writeRunRecord,
} from '../project/store.ts';
import {
  checkProjectFree,
  checkpointDir,
  listCheckpoints,
  loadCheckpoint,
  lockRun,
  recoverRun,
  reserveSpace,
  truncateRunLogs,
} from '../runs/index.ts';
import { type Generator, greedyGenerator } from './evaluate.ts';
import { planRunMemory } from './memory-plan.ts';
import {
  type Loaded,
  type RecorderFactory,
  type RunHandle,
  type RunRecorder,
  RunSession,
} from './session.ts';
import { Trainer } from './trainer.ts';

export type { RecorderFactory, RunHandle, RunRecorder, RunSummary } from './session.ts';

export interface RunOptions {
  /** Training settings that override the project's for this run (validated by the same schema). */
  training?: TrainingSettingsInput;
  /** Backend preference overriding the project's; `current` keeps whatever tfjs backend is active. */
  backend?: string;
  /** Records adapter analysis (`analysis/`) every `analysisEvery` steps, at checkpoints and at the end; none without. */
  recorder?: RecorderFactory;
}

/** The pad id of a batch: the tokenizer's, else EOS (GPT-2 has no pad token), else 0; masked out either way. */
function padIdOf(tokenizer: StudioTokenizer): number {
  return tokenizer.padTokenId ?? tokenizer.eosTokenId ?? 0;
}

/** Loads model, tokenizer, data and a fresh adapter for a run's frozen settings. */
async function loadForRun(projectDir: string, settings: ProjectSettings, backend: string): Promise<Loaded> {
  const modelDir = projectPath(projectDir, settings.model);
  const labels = settings.data.labels;
  // from config.json alone: a run that cannot fit is refused before its weights are read
  const spec = specFromConfig(await readModelConfig(modelDir), {
    task: settings.task,
    numLabels: settings.task === 'seq-cls' ? labels?.length : undefined,
  });
  const memory = planRunMemory(spec, settings, backend, availableMemoryBytes());
  const model = await loadModel(modelDir, {
    task: settings.task,
    numLabels: settings.task === 'seq-cls' ? labels?.length : undefined,
    seed: settings.training.seed,
  });
  try {
    const tokenizer = await loadTokenizer(modelDir);
    const warnings: string[] = [];
    if (memory.checkpointing && settings.training.gradientCheckpointing === 'auto' && memory.estimate) {
      warnings.push(
        `gradient checkpointing on: without it the run would need ~${formatBytes(
          memory.estimate.totalWithoutCheckpointing,
        )}, ${formatBytes(memory.available)} is available`,
      );
    }
    const limit = model.positionLimit?.tokens ?? Number.POSITIVE_INFINITY;
    let training = settings.training;
    if (training.maxSeqLen > limit) {
      warnings.push(`maxSeqLen ${training.maxSeqLen} exceeds the model's ${limit} positions; using ${limit}`);
      training = { ...training, maxSeqLen: limit };
    }
    const data = await prepareData({ ...projectDataSources(projectDir, settings), labels }, tokenizer, {
      maxSeqLen: training.maxSeqLen,
      lossOn: training.lossOn,
    });
    if (data.stats.truncated > 0) {
      warnings.push(
        `${data.stats.truncated} of ${data.stats.trainExamples} training examples were truncated to ${training.maxSeqLen} tokens`,
      );
    }
    const instance = attachAdapter(model, settings.method.name, settings.method.config, {
      adapterName: 'default',
      seed: training.seed,
    });
    // A head in modulesToSave trains (as a copy); any other new head stays at its random start.
    const frozen = (model.newlyInitialized ?? []).filter((name) => !instance.savedModules?.has(name));
    if (frozen.length > 0) warnings.push(`randomly initialised (frozen) head modules: ${frozen.join(', ')}`);
    return {
      model,
      tokenizer,
      instance,
      data,
      settings: { ...settings, training },
      checkpointing: memory.checkpointing,
      warnings,
    };
  } catch (error) {
    model.dispose();
    throw error;
  }
}

function generatorFor(model: LoadedModel, tokenizer: StudioTokenizer): Generator | undefined {
  if (model.spec.task !== 'causal-lm') return undefined;
  return greedyGenerator(model, tokenizer);
}

function trainerFor(loaded: Loaded): Trainer {
  return new Trainer({
    model: loaded.model,
    instance: loaded.instance,
    task: loaded.settings.task,
    train: loaded.data.train,
    validation: loaded.data.validation,
    settings: loaded.settings.training,
    checkpointing: loaded.checkpointing,
    padTokenId: padIdOf(loaded.tokenizer),
    generate: generatorFor(loaded.model, loaded.tokenizer),
  });
}

function recorderFor(
  runDir: string,
  loaded: Loaded,
  factory: RecorderFactory | undefined,
): RunRecorder | null {
  return (
    factory?.({ runDir, model: loaded.model, analysisEvery: loaded.settings.training.analysisEvery }) ?? null
  );
}

/**
 * Creates and locks a run folder with its empty log, the space it holds back and `run.json`, in that order:
 * run.json last, so a folder without it is never mistaken for a run. A folder that cannot be completed (a full
 * disk) is removed again: a run folder is complete or not there.
 */
async function createRunFolder(runDir: string, record: RunRecord): Promise<() => Promise<void>> {
  try {
    const io = writeFs();
    await io.mkdir(join(runDir, 'analysis'));
    await io.mkdir(join(runDir, 'exports'));
    const unlock = await lockRun(runDir);
    await reserveSpace(runDir);
    await writeFileAtomic(join(runDir, METRICS_FILE), '');
    await writeRunRecord(runDir, record);
    return unlock;
  } catch (error) {
    await fs.rm(runDir, { recursive: true, force: true });
    throw error;
  }
}

/**
 * Starts a new run of a project: creates `runs/<run-id>/` with the frozen configuration, loads the model,
 * data and a fresh adapter, and trains in this process, yielding to the event loop between steps.
 */
export async function startRun(projectDir: string, options: RunOptions = {}): Promise<RunHandle> {
  const project = await openProject(projectDir);
  // refused before anything is loaded; lockRun checks again once the new run's lock is taken
  await checkProjectFree(join(project.dir, RUNS_DIR));
  const settings = withTrainingOverrides(
    project.settings,
    (options.training ?? {}) as Record<string, unknown>,
  );
  const backend = await activateBackend(options.backend ?? settings.backend);
  const loaded = await loadForRun(project.dir, settings, backend);
  const runId = newRunId();
  const runDir = join(project.dir, RUNS_DIR, runId);
  let trainer: Trainer | null = null;
  let record: RunRecord;
  let unlock: () => Promise<void>;
  try {
    trainer = trainerFor(loaded);
    const now = new Date().toISOString();
    record = {
      schemaVersion: 1,
      runId,
      config: settings,
      status: 'pending',
      totalSteps: trainer.totalSteps,
      step: 0,
      backend,
      labels: loaded.data.labels,
      createdAt: now,
      updatedAt: now,
      trainSeconds: 0,
      lastCheckpoint: null,
    };
    unlock = await createRunFolder(runDir, record);
  } catch (error) {
    trainer?.dispose();
    loaded.instance.dispose();
    loaded.model.dispose();
    throw error;
  }
  return new RunSession({
    runDir,
    record,
    loaded,
    trainer,
    recorder: recorderFor(runDir, loaded, options.recorder),
    resumedFrom: null,
    unlock,
  });
}

export interface ResumeOptions {
  backend?: string;
  /** As `RunOptions.recorder`. */
  recorder?: RecorderFactory;
  /** Train to this many steps in total (to continue a finished run; the schedule is recomputed). */
  maxSteps?: number;
}

/**
 * Continues a run from its last checkpoint, after a pause, a cancel or a killed process. Adapter, optimizer,
 * data position and counters are restored, so the remaining losses equal those of an uninterrupted run.
 */
export async function resumeRun(runDir: string, options: ResumeOptions = {}): Promise<RunHandle> {
  const dir = resolve(runDir);
  const record = await recoverRun(dir);
  const unlock = await lockRun(dir);
  try {
    return await resumeLocked(dir, record, options, unlock);
  } catch (error) {
    await unlock();
    throw error;
  }
}

async function resumeLocked(
  dir: string,
  record: RunRecord,
  options: ResumeOptions,
  unlock: () => Promise<void>,
): Promise<RunHandle> {
  const steps = await listCheckpoints(dir);
  if (steps.length === 0) throw new Error(`${dir}: the run has no checkpoint to resume from`);
  let settings = record.config;
  if (options.maxSteps !== undefined)
    settings = withTrainingOverrides(settings, { maxSteps: options.maxSteps });
  const last = steps[steps.length - 1];
  const backend = await activateBackend(options.backend ?? settings.backend);
  const checkpoint = await loadCheckpoint(checkpointDir(dir, last));
  let loaded: Loaded | null = null;
  let trainer: Trainer | null = null;
  try {
    loaded = await loadForRun(projectOfRun(dir), settings, backend);
    trainer = trainerFor(loaded);
    if (trainer.state.step === 0 && last >= trainer.totalSteps) {
      throw new Error(
        `${dir}: the run already reached step ${last} of ${trainer.totalSteps}; pass a larger maxSteps to continue`,
      );
    }
    loaded.instance.loadState(checkpoint.adapter);
    trainer.optimizer.loadState(checkpoint.optimizer);
    trainer.restore(checkpoint.state.trainer);
    await truncateRunLogs(dir, last);
    await fs.rm(join(dir, EXPORT_MARKER), { force: true });
    await reserveSpace(dir);
  } catch (error) {
    trainer?.dispose();
    loaded?.instance.dispose();
    loaded?.model.dispose();
    throw error;
  } finally {
    tf.dispose([...Object.values(checkpoint.adapter), ...Object.values(checkpoint.optimizer.tensors)]);
  }
  const resumedRecord: RunRecord = {
    ...record,
    config: settings,
    totalSteps: trainer.totalSteps,
    backend,
    finishedAt: undefined,
    error: undefined,
    lastCheckpoint: checkpointDir(dir, last),
  };
  return new RunSession({
    runDir: dir,
    record: resumedRecord,
    loaded,
    trainer,
    recorder: recorderFor(dir, loaded, options.recorder),
    resumedFrom: last,
    unlock,
  });
}
