import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import type { AdapterInstance } from '../adapters/types.ts';
import { describeError } from '../common/errors.ts';
import type { ProjectSettings } from '../common/project-schema.ts';
import { type EventOf, makeEvent, type TrainEvent, type TrainEventType } from '../common/train-events.ts';
import type { PreparedData } from '../data/prepare.ts';
import { appendJsonLine } from '../io/jsonl.ts';
import type { LoadedModel, StudioTokenizer } from '../models/index.ts';
import { METRICS_FILE, type RunRecord, type RunStatus, writeRunRecord } from '../project/store.ts';
import { type CheckpointState, releaseSpace, saveCheckpoint } from '../runs/index.ts';
import { dueActions } from './actions.ts';
import type { StepResult, Trainer } from './trainer.ts';

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

/**
 * Records adapter analysis during a run. The caller supplies it (the analysis module's `runRecorder`), so
 * training does not depend on analysis.
 */
export interface RunRecorder {
  record(
    step: number,
    instance: AdapterInstance,
    trigger: 'interval' | 'checkpoint' | 'final',
  ): Promise<unknown>;
}

/** Makes a run's recorder once its model is loaded; `analysisEvery` is the run's setting (0: checkpoints only). */
export type RecorderFactory = (run: {
  runDir: string;
  model: LoadedModel;
  analysisEvery: number;
}) => RunRecorder;

/** What a session trains: the run's model, tokenizer, adapter and data, loaded for its frozen settings. */
export interface Loaded {
  model: LoadedModel;
  tokenizer: StudioTokenizer;
  instance: AdapterInstance;
  data: PreparedData;
  settings: ProjectSettings;
  /** `gradientCheckpointing` resolved for this run (auto: on when the memory estimate says it must be). */
  checkpointing: boolean;
  warnings: string[];
}

export interface SessionSetup {
  runDir: string;
  record: RunRecord;
  loaded: Loaded;
  trainer: Trainer;
  recorder: RunRecorder | null;
  /** The checkpoint step the session continues from, or null for a new run. */
  resumedFrom: number | null;
  unlock: () => Promise<void>;
}

const yieldToEventLoop = () => new Promise<void>((r) => setImmediate(r));

/**
 * One training session in this process: a new run, or a run continued from its last checkpoint. The loop takes
 * optimizer steps, handles pause and cancel between them, and executes what `dueActions` schedules after each.
 */
export class RunSession implements RunHandle {
  readonly history: TrainEvent[] = [];
  private readonly listeners = new Set<(e: TrainEvent) => void>();
  private pauseRequested = false;
  private cancelRequested = false;
  private wake: (() => void) | null = null;
  private current: RunStatus = 'pending';
  private sessionStart = Date.now();
  private readonly baseTrainSeconds: number;
  private record: RunRecord;
  private lastCheckpointStep: number;
  private finalMetrics: Record<string, number> | undefined;
  private readonly stepTimes: number[] = [];
  readonly done: Promise<RunSummary>;
  readonly runId: string;
  readonly runDir: string;
  private readonly loaded: Loaded;
  private readonly trainer: Trainer;

  constructor(private readonly setup: SessionSetup) {
    this.runDir = setup.runDir;
    this.record = setup.record;
    this.loaded = setup.loaded;
    this.trainer = setup.trainer;
    this.runId = setup.record.runId;
    this.baseTrainSeconds = setup.record.trainSeconds;
    this.lastCheckpointStep = setup.resumedFrom ?? -1;
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
    if (this.current === 'running' || this.current === 'pending') this.pauseRequested = true;
  }

  resume(): void {
    this.pauseRequested = false;
    this.wake?.();
  }

  cancel(): void {
    this.cancelRequested = true;
    this.wake?.();
  }

  /**
   * Logs an event to `metrics.jsonl`, flushed to the disk, and only then tells the listeners: what they
   * are told survives a crash, and each step is on disk before the next one starts.
   */
  private async emit<T extends TrainEventType>(
    type: T,
    fields: Omit<EventOf<T>, 'type' | 'time'>,
  ): Promise<void> {
    const event = makeEvent(type, fields);
    this.history.push(event);
    await appendJsonLine(join(this.runDir, METRICS_FILE), event);
    this.notify(event);
  }

  private notify(event: TrainEvent): void {
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
    this.lastCheckpointStep = state.step;
    await this.emit('checkpoint-saved', { step: state.step, path: dir });
    await this.saveRecord({ lastCheckpoint: dir });
    if (this.setup.recorder)
      await this.recordAnalysis(state.step >= trainer.totalSteps ? 'final' : 'checkpoint');
    return dir;
  }

  private async recordAnalysis(trigger: 'interval' | 'checkpoint' | 'final'): Promise<void> {
    const step = this.trainer.state.step;
    try {
      await this.setup.recorder!.record(step, this.loaded.instance, trigger);
      await this.emit('analysis-saved', { step, path: join(this.runDir, 'analysis') });
    } catch (error) {
      await this.emit('warning', { step, code: 'analysis-failed', message: (error as Error).message });
    }
  }

  /** Scores the validation data (none: nothing to do); returns whether early stopping says to stop. */
  private async evaluate(): Promise<boolean> {
    const step = this.trainer.state.step;
    if (this.loaded.data.validation.length === 0) return false;
    const metrics = await this.trainer.evaluate();
    await this.emit('eval', { step, metrics });
    this.finalMetrics = metrics;
    return this.trainer.observeEval(metrics);
  }

  /** Waits while a pause is requested (a cancel ends the wait). */
  private async pauseIfRequested(): Promise<void> {
    if (!this.pauseRequested || this.cancelRequested) return;
    const step = this.trainer.state.step;
    this.current = 'paused';
    await this.emit('paused', { step });
    await this.saveRecord({ status: 'paused' });
    const pausedAt = Date.now();
    while (this.pauseRequested && !this.cancelRequested)
      await new Promise<void>((r) => {
        this.wake = r;
      });
    this.wake = null;
    this.sessionStart += Date.now() - pausedAt;
    if (this.cancelRequested) return;
    this.current = 'running';
    await this.emit('resumed', { step, from: 'pause' });
    await this.saveRecord({ status: 'running' });
  }

  /** One optimizer step, logged as a step event or, when skipped for a non-finite value, a warning. */
  private async takeStep(): Promise<StepResult> {
    const { trainer } = this;
    const started = performance.now();
    const r = await trainer.step();
    const seconds = (performance.now() - started) / 1000;
    this.stepTimes.push(seconds);
    if (this.stepTimes.length > 20) this.stepTimes.shift();
    if (r.skipped) {
      await this.emit('warning', {
        step: r.step,
        code: 'non-finite',
        message: `step ${r.step} skipped: non-finite ${Number.isFinite(r.loss) ? 'gradient' : 'loss'} (${trainer.state.nonFiniteInARow} in a row)`,
      });
      if (trainer.state.nonFiniteInARow >= this.loaded.settings.training.maxNonFiniteSteps) {
        throw new Error(
          `stopped after ${trainer.state.nonFiniteInARow} consecutive non-finite steps; lower the learning rate or check the data (resume from the last checkpoint)`,
        );
      }
      return r;
    }
    const mean = this.stepTimes.reduce((a, b) => a + b, 0) / this.stepTimes.length;
    await this.emit('step', {
      step: r.step,
      epoch: r.epoch,
      loss: r.loss,
      lr: r.lr,
      gradNorm: r.gradNorm,
      tokensPerSec: seconds > 0 ? r.tokens / seconds : 0,
      etaSec: mean * (trainer.totalSteps - r.step),
    });
    return r;
  }

  /** Executes the actions due after `step`; returns whether early stopping ends the run there. */
  private async afterStep(step: number): Promise<boolean> {
    const due = dueActions(step, this.loaded.settings.training, this.trainer.totalSteps);
    const stop = due.eval && (await this.evaluate()) && step < this.trainer.totalSteps;
    if (due.analysis && this.setup.recorder) await this.recordAnalysis('interval');
    // the run ends at an early stop, so its step gets the last checkpoint
    if (due.checkpoint || stop) await this.checkpoint();
    return stop;
  }

  /** A run whose last loss (training or validation) is not finite has failed, whatever its step count. */
  private checkFinalLoss(last: StepResult | null): void {
    const evalLoss = this.finalMetrics?.loss;
    const bad =
      last && !Number.isFinite(last.loss)
        ? `the training loss of the last step (${last.step}) is ${last.loss}`
        : evalLoss !== undefined && !Number.isFinite(evalLoss)
          ? `the final validation loss is ${evalLoss}`
          : null;
    if (bad) {
      throw new Error(
        `${bad}: the run diverged; lower the learning rate or check the data, and resume from an earlier checkpoint`,
      );
    }
  }

  private async started(): Promise<void> {
    const { trainer, loaded } = this;
    const resumedFrom = this.setup.resumedFrom;
    if (resumedFrom !== null) await this.emit('resumed', { step: resumedFrom, from: 'checkpoint' });
    await this.emit('run-started', {
      runId: this.runId,
      step: trainer.state.step,
      totalSteps: trainer.totalSteps,
      resumedFrom: resumedFrom ?? undefined,
      method: loaded.settings.method.name,
      task: loaded.settings.task,
      trainableParams: trainer.params.reduce((n, p) => n + p.variable.size, 0),
      trainExamples: loaded.data.train.length,
      validationExamples: loaded.data.validation.length,
      backend: this.record.backend,
    });
    for (const message of loaded.warnings)
      await this.emit('warning', { step: trainer.state.step, code: 'setup', message });
  }

  private async loop(): Promise<RunSummary> {
    const { trainer, loaded } = this;
    try {
      this.current = 'running';
      await this.saveRecord({ status: 'running' });
      await this.started();
      let earlyStop = false;
      let last: StepResult | null = null;
      while (trainer.state.step < trainer.totalSteps && !earlyStop) {
        await yieldToEventLoop();
        await this.pauseIfRequested();
        if (this.cancelRequested) return await this.cancelled();
        last = await this.takeStep();
        earlyStop = await this.afterStep(last.step);
      }
      this.checkFinalLoss(last);
      this.current = 'completed';
      const reason = earlyStop ? 'early-stopping' : 'max-steps';
      await this.emit('finished', {
        step: trainer.state.step,
        reason,
        metrics: this.finalMetrics,
        durationSec: this.trainSeconds(),
      });
      await this.saveRecord({
        status: 'completed',
        reason,
        finalMetrics: this.finalMetrics,
        finishedAt: new Date().toISOString(),
      });
      return this.summary();
    } catch (error) {
      // a wasm heap that ran out reads `memory access out of bounds`: say what it means and what to do
      const { message } = describeError(error);
      this.current = 'failed';
      // the space held back lets a run on a full disk still record why it failed
      await releaseSpace(this.runDir).catch(() => undefined);
      const event = makeEvent('error', { step: trainer.state.step, message });
      this.history.push(event);
      await appendJsonLine(join(this.runDir, METRICS_FILE), event).catch(() => undefined);
      this.notify(event);
      await this.saveRecord({ status: 'failed', error: message }).catch(() => undefined);
      return this.summary();
    } finally {
      trainer.dispose();
      loaded.instance.dispose();
      loaded.model.dispose();
      await releaseSpace(this.runDir).catch(() => undefined);
      await this.setup.unlock();
    }
  }

  private async cancelled(): Promise<RunSummary> {
    const step = this.trainer.state.step;
    const path = this.lastCheckpointStep === step ? this.record.lastCheckpoint : await this.checkpoint();
    this.current = 'cancelled';
    await this.emit('cancelled', { step, checkpoint: path });
    await this.saveRecord({ status: 'cancelled', reason: 'cancelled' });
    return this.summary();
  }

  private summary(): RunSummary {
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
