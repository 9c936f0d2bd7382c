import { promises as fs } from 'node:fs';
import { join, resolve } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { attachAdapter } from '../adapters/index.ts';
import type { AdapterInstance } from '../adapters/types.ts';
import type { AnalysisRecorder } from '../analysis/index.ts';
import { ensureGradients, selectBackend } from '../backends/index.ts';
import { type PreparedData, prepareData } from '../data/prepare.ts';
import { appendLine, writeFileAtomic } from '../io/atomic.ts';
import {
  archConfig,
  type LoadedModel,
  loadModel,
  loadTokenizer,
  type StudioTokenizer,
} from '../models/index.ts';
import type { ProjectSettings, TrainingSettingsInput } from '../project/schema.ts';
import {
  METRICS_FILE,
  newRunId,
  openProject,
  projectDataSources,
  projectOfRun,
  projectPath,
  RUNS_DIR,
  type RunRecord,
  type RunStatus,
  readRunRecord,
  withTrainingOverrides,
  writeRunRecord,
} from '../project/store.ts';
import {
  ADAPTER_FILE,
  type CheckpointState,
  checkpointDir,
  listCheckpoints,
  loadCheckpoint,
  readCheckpointState,
  readTensors,
  saveCheckpoint,
} from './checkpoint.ts';
import { type Generator, greedyGenerator } from './evaluate.ts';
import { type EventOf, makeEvent, parseEventLog, type TrainEvent, type TrainEventType } from './events.ts';
import { Trainer } from './trainer.ts';

export interface RunOptions {
  /** Training settings that override the project's for this run (validated by the same schema). */
  training?: TrainingSettingsInput;
  /** Backend preference overriding the project's; `current` keeps whatever tfjs backend is active. */
  backend?: string;
  /** Record adapter analysis (`analysis/`) every `analysisEvery` steps, at checkpoints and at the end (default true). */
  analysis?: boolean;
}

export interface RunSummary {
  runId: string;
  runDir: string;
  status: RunStatus;
  step: number;
  totalSteps: number;
  reason?: string;
  finalMetrics?: Record<string, number>;
  lastCheckpoint: string | null;
  error?: string;
}

export interface RunHandle {
  readonly runId: string;
  readonly runDir: string;
  /** Every event emitted so far in this process (a late listener can catch up). */
  readonly history: readonly TrainEvent[];
  on(type: 'event', listener: (event: TrainEvent) => void): () => void;
  status(): RunStatus;
  /** Pauses between two steps (the model stays loaded). */
  pause(): void;
  resume(): void;
  /** Stops after the current step, saving a checkpoint the run can be resumed from. */
  cancel(): void;
  readonly done: Promise<RunSummary>;
}

/** The pad id of a batch: the tokenizer's, else EOS (GPT-2 has no pad token), else 0; masked out either way. */
function padIdOf(tokenizer: StudioTokenizer): number {
  return tokenizer.padTokenId ?? tokenizer.eosTokenId ?? 0;
}

/** Positions the model can embed (RoBERTa's learned positions start after the padding index). */
function positionLimit(model: LoadedModel): number {
  const arch = archConfig(model.spec.config, { task: model.spec.task, numLabels: model.spec.numLabels });
  return model.spec.modelType === 'roberta' ? arch.maxPositions - 2 : arch.maxPositions;
}

/** Activates a backend preference (`current` keeps the active one) and names what runs, e.g. `wasm:onnxruntime-mlas`. */
export async function activateBackend(preference: string): Promise<string> {
  if (preference === 'current') {
    await ensureGradients();
    await tf.ready();
    return tf.getBackend();
  }
  const report = await selectBackend({ prefer: preference });
  return report.matmul ? `${report.chosen}:${report.matmul}` : report.chosen;
}

interface Loaded {
  model: LoadedModel;
  tokenizer: StudioTokenizer;
  instance: AdapterInstance;
  data: PreparedData;
  settings: ProjectSettings;
  warnings: string[];
}

/** Loads model, tokenizer, data and a fresh adapter for a run's frozen settings. */
async function loadForRun(projectDir: string, settings: ProjectSettings): Promise<Loaded> {
  const modelDir = projectPath(projectDir, settings.model);
  const labels = settings.data.labels;
  const model = await loadModel(modelDir, {
    task: settings.task,
    numLabels: settings.task === 'seq-cls' ? labels?.length : undefined,
    seed: settings.training.seed,
  });
  try {
    const tokenizer = await loadTokenizer(modelDir);
    const warnings: string[] = [];
    const limit = positionLimit(model);
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
    return { model, tokenizer, instance, data, settings: { ...settings, training }, warnings };
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
    padTokenId: padIdOf(loaded.tokenizer),
    generate: generatorFor(loaded.model, loaded.tokenizer),
  });
}

/** The analysis recorder of a run; loaded on demand so training does not depend on the analysis code otherwise. */
async function recorderFor(runDir: string, loaded: Loaded, enabled = true): Promise<AnalysisRecorder | null> {
  if (!enabled) return null;
  const { AnalysisRecorder } = await import('../analysis/index.ts');
  const every = loaded.settings.training.analysisEvery;
  return new AnalysisRecorder({ runDir, model: loaded.model, every: every > 0 ? every : 1 });
}

const LOCK_FILE = 'run.lock';

/**
 * Claims a run folder for this process: a second trainer on the same run would interleave checkpoints.
 * A lock left by a killed process (its pid no longer alive) is taken over.
 */
async function lockRun(runDir: string): Promise<() => Promise<void>> {
  const path = join(runDir, LOCK_FILE);
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      await fs.writeFile(path, String(process.pid), { flag: 'wx' });
      return () => fs.rm(path, { force: true });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      const pid = Number((await fs.readFile(path, 'utf8').catch(() => '')).trim());
      if (Number.isInteger(pid) && pid > 0 && isAlive(pid)) {
        throw new Error(`${runDir}: the run is being trained by process ${pid}`);
      }
      await fs.rm(path, { force: true });
    }
  }
  throw new Error(`${runDir}: cannot lock the run folder`);
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

const yieldToEventLoop = () => new Promise<void>((r) => setImmediate(r));

/** One training session in this process: a new run, or a run continued from its last checkpoint. */
class RunSession implements RunHandle {
  readonly history: TrainEvent[] = [];
  private readonly listeners = new Set<(e: TrainEvent) => void>();
  private writes: Promise<void> = Promise.resolve();
  private pauseRequested = false;
  private cancelRequested = false;
  private wake: (() => void) | null = null;
  private current: RunStatus = 'created';
  private sessionStart = Date.now();
  private baseTrainSeconds: number;
  readonly done: Promise<RunSummary>;
  readonly runId: string;

  constructor(
    readonly runDir: string,
    private record: RunRecord,
    private readonly loaded: Loaded,
    private readonly trainer: Trainer,
    private readonly recorder: AnalysisRecorder | null,
    private readonly resumedFrom: number | null,
    private readonly unlock: () => Promise<void>,
  ) {
    this.runId = record.runId;
    this.baseTrainSeconds = record.trainSeconds;
    this.done = yieldToEventLoop().then(() => this.loop());
  }

  on(_type: 'event', listener: (event: TrainEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  status(): RunStatus {
    return this.current;
  }

  pause(): void {
    if (this.current === 'running' || this.current === 'created') this.pauseRequested = true;
  }

  resume(): void {
    this.pauseRequested = false;
    this.wake?.();
  }

  cancel(): void {
    this.cancelRequested = true;
    this.wake?.();
  }

  private emit<T extends TrainEventType>(type: T, fields: Omit<EventOf<T>, 'type' | 'time'>): void {
    const event = makeEvent(type, fields);
    this.history.push(event);
    const line = JSON.stringify(event);
    this.writes = this.writes.then(() => appendLine(join(this.runDir, METRICS_FILE), line));
    for (const listener of this.listeners) {
      try {
        listener(event);
      } catch {
        // a listener's failure must not stop training
      }
    }
  }

  private trainSeconds(): number {
    return this.baseTrainSeconds + (Date.now() - this.sessionStart) / 1000;
  }

  private async saveRecord(patch: Partial<RunRecord>): Promise<void> {
    this.record = {
      ...this.record,
      ...patch,
      step: this.trainer.state.step,
      trainSeconds: this.trainSeconds(),
      updatedAt: new Date().toISOString(),
    };
    await writeRunRecord(this.runDir, this.record);
  }

  private async checkpoint(): Promise<string> {
    const { trainer, loaded } = this;
    const s = loaded.settings;
    const state: CheckpointState = {
      schemaVersion: 1,
      step: trainer.state.step,
      trainer: trainer.state,
      rng: {
        seed: s.training.seed,
        dataOrder: 'permutation(seed, epoch)',
        dropout: 'trainingContext(seed, microStep)',
        microStep: trainer.state.step * s.training.gradAccumSteps,
      },
      seed: s.training.seed,
      optimizerStep: trainer.optimizer.stepCount,
      method: s.method.name,
      config: s.method.config,
      adapterName: loaded.instance.name,
      savedAt: new Date().toISOString(),
    };
    // `state()` returns copies the caller owns.
    const adapter = loaded.instance.state();
    let dir: string;
    try {
      dir = await saveCheckpoint(
        this.runDir,
        { adapter, optimizer: trainer.optimizer.state(), state },
        s.training.keepCheckpoints,
      );
    } finally {
      tf.dispose(Object.values(adapter));
    }
    this.emit('checkpoint-saved', { step: state.step, path: dir });
    await this.saveRecord({ lastCheckpoint: dir });
    if (this.recorder) await this.recordAnalysis(state.step >= trainer.totalSteps ? 'final' : 'checkpoint');
    return dir;
  }

  private async recordAnalysis(trigger: 'interval' | 'checkpoint' | 'final'): Promise<void> {
    const step = this.trainer.state.step;
    try {
      await this.recorder!.record(step, this.loaded.instance, trigger);
      this.emit('analysis-saved', { step, path: join(this.runDir, 'analysis') });
    } catch (error) {
      this.emit('warning', {
        step: this.trainer.state.step,
        code: 'analysis-failed',
        message: (error as Error).message,
      });
    }
  }

  private async evaluate(): Promise<Record<string, number> | null> {
    if (this.loaded.data.validation.length === 0) return null;
    const metrics = await this.trainer.evaluate();
    this.emit('eval', { step: this.trainer.state.step, metrics });
    return metrics;
  }

  private async loop(): Promise<RunSummary> {
    const { trainer, loaded } = this;
    const s = loaded.settings.training;
    let lastCheckpointStep = this.resumedFrom ?? -1;
    let lastEvalStep = -1;
    let finalMetrics: Record<string, number> | undefined;
    let reason: string | undefined;
    try {
      this.current = 'running';
      await this.saveRecord({ status: 'running' });
      if (this.resumedFrom !== null) this.emit('resumed', { step: this.resumedFrom, from: 'checkpoint' });
      this.emit('run-started', {
        runId: this.runId,
        step: trainer.state.step,
        totalSteps: trainer.totalSteps,
        resumedFrom: this.resumedFrom ?? undefined,
        method: loaded.settings.method.name,
        task: loaded.settings.task,
        trainableParams: trainer.params.reduce((n, p) => n + p.variable.size, 0),
        trainExamples: loaded.data.train.length,
        validationExamples: loaded.data.validation.length,
        backend: this.record.backend,
      });
      for (const message of loaded.warnings)
        this.emit('warning', { step: trainer.state.step, code: 'setup', message });
      const stepTimes: number[] = [];
      while (trainer.state.step < trainer.totalSteps) {
        await yieldToEventLoop();
        if (this.pauseRequested && !this.cancelRequested) {
          this.current = 'paused';
          this.emit('paused', { step: trainer.state.step });
          await this.saveRecord({ status: 'paused' });
          const pausedAt = Date.now();
          while (this.pauseRequested && !this.cancelRequested)
            await new Promise<void>((r) => {
              this.wake = r;
            });
          this.wake = null;
          this.sessionStart += Date.now() - pausedAt;
          if (!this.cancelRequested) {
            this.current = 'running';
            this.emit('resumed', { step: trainer.state.step, from: 'pause' });
            await this.saveRecord({ status: 'running' });
          }
        }
        if (this.cancelRequested) {
          const path =
            lastCheckpointStep === trainer.state.step ? this.record.lastCheckpoint : await this.checkpoint();
          this.current = 'cancelled';
          this.emit('cancelled', { step: trainer.state.step, checkpoint: path });
          await this.saveRecord({ status: 'cancelled', reason: 'cancelled' });
          return await this.summary();
        }
        const started = performance.now();
        const r = trainer.step();
        const seconds = (performance.now() - started) / 1000;
        stepTimes.push(seconds);
        if (stepTimes.length > 20) stepTimes.shift();
        if (r.skipped) {
          this.emit('warning', {
            step: r.step,
            code: 'non-finite',
            message: `step ${r.step} skipped: non-finite ${Number.isFinite(r.loss) ? 'gradient' : 'loss'} (${trainer.state.nonFiniteInARow} in a row)`,
          });
          if (trainer.state.nonFiniteInARow >= s.maxNonFiniteSteps) {
            throw new Error(
              `stopped after ${trainer.state.nonFiniteInARow} consecutive non-finite steps; lower the learning rate or check the data (resume from the last checkpoint)`,
            );
          }
        } else {
          const mean = stepTimes.reduce((a, b) => a + b, 0) / stepTimes.length;
          this.emit('step', {
            step: r.step,
            epoch: r.epoch,
            loss: r.loss,
            lr: r.lr,
            gradNorm: r.gradNorm,
            tokensPerSec: seconds > 0 ? r.tokens / seconds : 0,
            etaSec: mean * (trainer.totalSteps - r.step),
          });
        }
        let stop = false;
        if (s.evalEvery > 0 && r.step % s.evalEvery === 0) {
          const metrics = await this.evaluate();
          lastEvalStep = r.step;
          if (metrics) {
            finalMetrics = metrics;
            stop = trainer.observeEval(metrics);
          }
        }
        const atCheckpoint = s.checkpointEvery > 0 && r.step % s.checkpointEvery === 0;
        if (this.recorder && s.analysisEvery > 0 && r.step % s.analysisEvery === 0 && !atCheckpoint) {
          await this.recordAnalysis('interval');
        }
        if (atCheckpoint && r.step < trainer.totalSteps && !stop) {
          await this.checkpoint();
          lastCheckpointStep = r.step;
        }
        if (stop) {
          reason = 'early-stopping';
          break;
        }
      }
      if (lastEvalStep !== trainer.state.step) finalMetrics = (await this.evaluate()) ?? finalMetrics;
      if (lastCheckpointStep !== trainer.state.step) await this.checkpoint();
      this.current = 'finished';
      const finishedReason = reason === 'early-stopping' ? 'early-stopping' : 'max-steps';
      this.emit('finished', {
        step: trainer.state.step,
        reason: finishedReason,
        metrics: finalMetrics,
        durationSec: this.trainSeconds(),
      });
      await this.saveRecord({
        status: 'finished',
        reason: finishedReason,
        finalMetrics,
        finishedAt: new Date().toISOString(),
      });
      return await this.summary();
    } catch (error) {
      const message = (error as Error).message;
      this.current = 'failed';
      this.emit('error', { step: trainer.state.step, message });
      await this.saveRecord({ status: 'failed', error: message }).catch(() => undefined);
      return await this.summary();
    } finally {
      trainer.dispose();
      loaded.instance.dispose();
      loaded.model.dispose();
      await this.unlock();
    }
  }

  private async summary(): Promise<RunSummary> {
    await this.writes;
    return {
      runId: this.runId,
      runDir: this.runDir,
      status: this.current,
      step: this.trainer.state.step,
      totalSteps: this.trainer.totalSteps,
      reason: this.record.reason,
      finalMetrics: this.record.finalMetrics,
      lastCheckpoint: this.record.lastCheckpoint,
      error: this.record.error,
    };
  }
}

/**
 * Starts a new run of a project: creates `runs/<run-id>/` with the frozen configuration, loads the model,
 * data and a fresh adapter, and trains in this process, yielding to the event loop between steps.
 */
export async function startRun(projectDir: string, options: RunOptions = {}): Promise<RunHandle> {
  const project = await openProject(projectDir);
  const settings = withTrainingOverrides(
    project.settings,
    (options.training ?? {}) as Record<string, unknown>,
  );
  const backend = await activateBackend(options.backend ?? settings.backend);
  const loaded = await loadForRun(project.dir, settings);
  let trainer: Trainer;
  try {
    trainer = trainerFor(loaded);
  } catch (error) {
    loaded.instance.dispose();
    loaded.model.dispose();
    throw error;
  }
  const runId = newRunId();
  const runDir = join(project.dir, RUNS_DIR, runId);
  await fs.mkdir(join(runDir, 'analysis'), { recursive: true });
  await fs.mkdir(join(runDir, 'exports'), { recursive: true });
  await writeFileAtomic(join(runDir, METRICS_FILE), '');
  const now = new Date().toISOString();
  const record: RunRecord = {
    schemaVersion: 1,
    runId,
    config: settings,
    status: 'created',
    totalSteps: trainer.totalSteps,
    step: 0,
    backend,
    labels: loaded.data.labels,
    createdAt: now,
    updatedAt: now,
    trainSeconds: 0,
    lastCheckpoint: null,
  };
  await writeRunRecord(runDir, record);
  const unlock = await lockRun(runDir);
  return new RunSession(
    runDir,
    record,
    loaded,
    trainer,
    await recorderFor(runDir, loaded, options.analysis),
    null,
    unlock,
  );
}

/** Drops logged events past the checkpoint a run resumes from (they will be produced again). */
async function truncateEventLog(runDir: string, step: number): Promise<void> {
  const file = join(runDir, METRICS_FILE);
  let text = '';
  try {
    text = await fs.readFile(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
  const kept = parseEventLog(text, file).filter(
    (e) => !('step' in e) || e.step === undefined || e.step <= step,
  );
  await writeFileAtomic(file, kept.map((e) => `${JSON.stringify(e)}\n`).join(''));
}

/** Drops analysis time-series rows past the checkpoint (the resumed run records those steps again). */
async function truncateAnalysisLog(runDir: string, step: number): Promise<void> {
  const file = join(runDir, 'analysis', 'timeseries.jsonl');
  let text: string;
  try {
    text = await fs.readFile(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw error;
  }
  const kept = text.split('\n').filter((line) => {
    if (line.trim() === '') return false;
    try {
      const row = JSON.parse(line) as { step?: unknown };
      return typeof row.step !== 'number' || row.step <= step;
    } catch {
      return false;
    }
  });
  await writeFileAtomic(file, kept.map((l) => `${l}\n`).join(''));
}

export interface ResumeOptions {
  backend?: string;
  analysis?: boolean;
  /** Train to this many steps in total (to continue a finished run; the schedule is recomputed). */
  maxSteps?: number;
}

/**
 * Continues a run from its last checkpoint, after a pause, a cancel or a killed process. Adapter, optimizer,
 * data position and counters are restored, so the remaining losses equal those of an uninterrupted run.
 */
export async function resumeRun(runDir: string, options: ResumeOptions = {}): Promise<RunHandle> {
  const dir = resolve(runDir);
  const record = await readRunRecord(dir);
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
  const loaded = await loadForRun(projectOfRun(dir), settings);
  let trainer: Trainer | null = null;
  const checkpoint = await loadCheckpoint(checkpointDir(dir, last));
  try {
    trainer = trainerFor(loaded);
    if (trainer.state.step === 0 && last >= trainer.totalSteps) {
      throw new Error(
        `${dir}: the run already reached step ${last} of ${trainer.totalSteps}; pass a larger maxSteps to continue`,
      );
    }
    loaded.instance.loadState(checkpoint.adapter);
    trainer.optimizer.loadState(checkpoint.optimizer);
    trainer.restore(checkpoint.state.trainer);
  } catch (error) {
    trainer?.dispose();
    loaded.instance.dispose();
    loaded.model.dispose();
    throw error;
  } finally {
    tf.dispose([...Object.values(checkpoint.adapter), ...Object.values(checkpoint.optimizer.tensors)]);
  }
  await truncateEventLog(dir, last);
  await truncateAnalysisLog(dir, last);
  const resumedRecord: RunRecord = {
    ...record,
    config: settings,
    totalSteps: trainer.totalSteps,
    backend,
    finishedAt: undefined,
    error: undefined,
    lastCheckpoint: checkpointDir(dir, last),
  };
  return new RunSession(
    dir,
    resumedRecord,
    loaded,
    trainer,
    await recorderFor(dir, loaded, options.analysis),
    last,
    unlock,
  );
}

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

export interface RunAdapter {
  model: LoadedModel;
  tokenizer: StudioTokenizer;
  instance: AdapterInstance;
  runConfig: ProjectSettings;
  record: RunRecord;
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
  try {
    const tokenizer = await loadTokenizer(modelDir);
    const instance = attachAdapter(model, state.method, state.config, {
      adapterName: state.adapterName,
      seed: state.seed,
    });
    const tensors = await readTensors(join(checkpoint, ADAPTER_FILE));
    try {
      instance.loadState(tensors);
    } finally {
      tf.dispose(Object.values(tensors));
    }
    return { model, tokenizer, instance, runConfig: settings, record, checkpoint, state };
  } catch (error) {
    model.dispose();
    throw error;
  }
}

/** Events of a run's `metrics.jsonl`. */
export async function readRunEvents(runDir: string): Promise<TrainEvent[]> {
  const file = join(runDir, METRICS_FILE);
  return parseEventLog(await fs.readFile(file, 'utf8'), file);
}
