import { promises as fs } from 'node:fs';
import { join, resolve } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { z } from 'zod';
import { detachAdapter } from '../adapters/index.ts';
import type { AdapterInstance } from '../adapters/types.ts';
import { AnalysisRecorder } from '../analysis/recorder.ts';
import type { MethodName } from '../common/method-names.ts';
import type { RunOrigin } from '../common/project-schema.ts';
import { parseEventLog, type TrainEvent } from '../common/train-events.ts';
import { writeDirAtomic, writeFileAtomic } from '../io/atomic.ts';
import { METRICS_FILE, newRunId, RUNS_DIR, type RunRecord, writeRunRecord } from '../project/store.ts';
import { checkpointDir, saveCheckpoint } from '../runs/index.ts';
import { parseStrictJson } from '../safetensors/index.ts';
import { ExportError } from './errors.ts';
import {
  baseModelWarning,
  freshOptimizerState,
  importedCheckpointState,
  openImportTarget,
} from './import.ts';
import { ADAPTER_CONFIG, ADAPTER_WEIGHTS, loadPeftAdapter } from './peft.ts';

/** transformers' Trainer state: the log history of every logging step and evaluation. */
export const TRAINER_STATE = 'trainer_state.json';
/** Where the hand-off job ran (host, strategy, processes), written by train.py on the main process. */
export const HANDOFF_RUN = 'handoff-run.json';

const TrainerStateFile = z.object({
  global_step: z.number().int().nonnegative(),
  max_steps: z.number().int().optional(),
  log_history: z.array(z.looseObject({ step: z.number().int().nonnegative() })),
});
type TrainerStateFile = z.infer<typeof TrainerStateFile>;

const HandoffRunFile = z.object({
  host: z.string().min(1),
  strategy: z.string().min(1),
  processes: z.number().int().positive(),
  device: z.string().optional(),
});
type HandoffRunFile = z.infer<typeof HandoffRunFile>;

export interface ImportRunResult {
  runId: string;
  runDir: string;
  method: string;
  /** The job's last optimizer step, and the steps brought in as checkpoints (the last one is the final adapter). */
  step: number;
  checkpoints: number[];
  /** Step events brought in (the loss / LR / grad-norm curve). */
  steps: number;
  origin: RunOrigin;
  warnings: string[];
}

async function exists(path: string): Promise<boolean> {
  return fs
    .access(path)
    .then(() => true)
    .catch(() => false);
}

/** A JSON file of the job's folder, strictly parsed and checked against `schema`; problems name the file. */
async function readJsonFile<T>(path: string, schema: z.ZodType<T>, what: string): Promise<T> {
  let raw: unknown;
  try {
    raw = parseStrictJson(await fs.readFile(path, 'utf8'), path, what);
  } catch (error) {
    const message = (error as Error).message;
    throw new ExportError(message.startsWith(path) ? message : `${path}: ${message}`);
  }
  const parsed = schema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new ExportError(
      `${path}: not a ${what} (${issue.path.join('.') || 'top level'}: ${issue.message})`,
    );
  }
  return parsed.data;
}

/**
 * The job's output folder (the folder given, or its `output/`, the hand-off folder itself) and whether the
 * job ended: a finished job leaves its final adapter there; one stopped early (killed, out of time on the
 * cluster) leaves only its `checkpoint-<N>/` folders, which are what it trained.
 */
async function outputFolder(
  source: string,
): Promise<{ dir: string; finished: boolean; checkpoints: Map<number, string> }> {
  const candidates = [source, join(source, 'output')];
  for (const dir of candidates) {
    if (await exists(join(dir, ADAPTER_CONFIG))) {
      if (!(await exists(join(dir, ADAPTER_WEIGHTS))))
        throw new ExportError(`${join(dir, ADAPTER_WEIGHTS)}: not found (the job saved no final adapter)`);
      return { dir, finished: true, checkpoints: await jobCheckpoints(dir) };
    }
  }
  for (const dir of candidates) {
    const checkpoints = (await exists(dir)) ? await jobCheckpoints(dir) : new Map<number, string>();
    if (checkpoints.size > 0) return { dir, finished: false, checkpoints };
  }
  throw new ExportError(
    `${source}: no ${ADAPTER_CONFIG} and no checkpoint-<step>/ here or in output/ (a finished hand-off job leaves ${ADAPTER_CONFIG}, ${ADAPTER_WEIGHTS} and ${TRAINER_STATE} in its output folder; one stopped early, its checkpoints)`,
  );
}

/** `checkpoint-<step>/` folders that hold an adapter, by step. */
async function jobCheckpoints(dir: string): Promise<Map<number, string>> {
  const found = new Map<number, string>();
  for (const name of await fs.readdir(dir)) {
    const m = /^checkpoint-(\d+)$/.exec(name);
    if (m && (await exists(join(dir, name, ADAPTER_CONFIG)))) found.set(Number(m[1]), join(dir, name));
  }
  return found;
}

const numberOr = (value: unknown, fallback: number) =>
  typeof value === 'number' && Number.isFinite(value) ? value : fallback;

/** Evaluation metrics of a log entry (`eval_loss` → `loss`), timings left out as train.py's callback does. */
function evalMetrics(entry: Record<string, unknown>): Record<string, number> {
  const metrics: Record<string, number> = {};
  for (const [key, value] of Object.entries(entry)) {
    if (key.startsWith('eval_') && typeof value === 'number' && Number.isFinite(value))
      metrics[key.slice('eval_'.length)] = value;
  }
  return metrics;
}

/** The studio's events from a Trainer log history, for a job whose metrics.jsonl did not come back. */
function eventsFromLogHistory(
  state: TrainerStateFile,
  started: Omit<Extract<TrainEvent, { type: 'run-started' }>, 'type' | 'time' | 'step'>,
  time: string,
): TrainEvent[] {
  const events: TrainEvent[] = [{ type: 'run-started', time, step: 0, ...started }];
  let durationSec = 0;
  let last: Record<string, number> | undefined;
  for (const entry of state.log_history) {
    if (typeof entry.loss === 'number') {
      events.push({
        type: 'step',
        time,
        step: entry.step,
        epoch: numberOr(entry.epoch, 0),
        loss: entry.loss,
        lr: numberOr(entry.learning_rate, 0),
        gradNorm: numberOr(entry.grad_norm, 0),
        tokensPerSec: 0,
        etaSec: 0,
      });
    } else if (typeof entry.eval_loss === 'number') {
      last = evalMetrics(entry);
      events.push({ type: 'eval', time, step: entry.step, metrics: last });
    } else if (typeof entry.train_runtime === 'number') {
      durationSec = entry.train_runtime;
    }
  }
  events.push({
    type: 'finished',
    time,
    step: state.global_step,
    reason: 'max-steps',
    durationSec,
    ...(last ? { metrics: last } : {}),
  });
  return events;
}

/**
 * The job's metrics.jsonl as this run's events: its run id becomes the run's, and checkpoint paths point at
 * the run's checkpoints (events of checkpoints the job pruned are left out).
 */
async function eventsFromMetrics(
  file: string,
  runId: string,
  runDir: string,
  steps: ReadonlySet<number>,
  /** For a job stopped early: its last checkpoint's step (later events, and a torn last line, are dropped). */
  upTo?: number,
): Promise<TrainEvent[]> {
  let text = await fs.readFile(file, 'utf8');
  // train.py ends every record with a newline: a cut-off last line is a job still writing, or one that died.
  if (text !== '' && !text.endsWith('\n')) {
    if (upTo === undefined) {
      const line = text.split('\n').length;
      throw new ExportError(
        `${file}:${line}: the last event is cut off (the job is still writing it or stopped mid-write); import the folder once the job has ended`,
      );
    }
    text = text.slice(0, text.lastIndexOf('\n') + 1);
  }
  let events: TrainEvent[];
  try {
    events = parseEventLog(text, file);
  } catch (error) {
    throw new ExportError((error as Error).message);
  }
  return events.flatMap((e): TrainEvent[] => {
    // a job stopped early: what it trained after its last checkpoint is lost with it
    if (upTo !== undefined && 'step' in e && typeof e.step === 'number' && e.step > upTo) return [];
    if (e.type === 'run-started') return [{ ...e, runId }];
    if (e.type === 'checkpoint-saved')
      return steps.has(e.step) ? [{ ...e, path: checkpointDir(runDir, e.step) }] : [];
    return [e];
  });
}

function originOf(source: string, where: HandoffRunFile | null, importedAt: string): RunOrigin {
  if (!where) return { kind: 'imported-run', source, importedAt };
  const device = where.device ?? 'device';
  return {
    kind: 'imported-run',
    source,
    where: `${where.host} (${where.processes} × ${device}, ${where.strategy})`,
    host: where.host,
    strategy: where.strategy,
    processes: where.processes,
    importedAt,
  };
}

/**
 * Brings the output folder of a hand-off job (`studio handoff` → accelerate / torchrun / Slurm / SkyPilot)
 * into a project as a run trained elsewhere (`origin.kind = 'imported-run'`, with the host, strategy and
 * processes of its handoff-run.json). Every `checkpoint-<N>/` and the final adapter are loaded onto the
 * project's model (keys, modules and shapes checked, errors naming the file) and become the run's
 * checkpoints with their analysis; the loss / LR / grad-norm curve comes from the job's metrics.jsonl, or its
 * trainer_state.json log history. The run appears whole or not at all.
 */
export async function importExternalRun(folder: string, projectDir: string): Promise<ImportRunResult> {
  const { dir: source, finished: ended, checkpoints } = await outputFolder(resolve(folder));
  // The Trainer writes trainer_state.json at the end, and into every checkpoint as it goes.
  const stateDir = ended ? source : checkpoints.get(Math.max(...checkpoints.keys()))!;
  const statePath = join(stateDir, TRAINER_STATE);
  if (!(await exists(statePath)))
    throw new ExportError(
      `${statePath}: not found (the Trainer writes it with every checkpoint and at the end)`,
    );
  const trainerState = await readJsonFile(statePath, TrainerStateFile, 'Trainer state');
  const wherePath = join(source, HANDOFF_RUN);
  const where = (await exists(wherePath))
    ? await readJsonFile(wherePath, HandoffRunFile, 'hand-off run description')
    : null;
  // The final adapter is the last step's, whether or not a checkpoint was saved there too.
  if (ended) checkpoints.set(trainerState.global_step, source);
  const steps = [...checkpoints.keys()].sort((a, b) => a - b);

  const newest = checkpoints.get(steps[steps.length - 1])!;
  const { project, adapterConfig, model } = await openImportTarget(newest, projectDir);
  const settings = project.settings;
  const seed = settings.training.seed;
  const warnings: string[] = [];
  const foreign = baseModelWarning(adapterConfig, newest, model);
  if (foreign) warnings.push(foreign);
  const stoppedAt = ended
    ? undefined
    : `the job stopped before its end: imported up to its last checkpoint, step ${trainerState.global_step}${trainerState.max_steps ? ` of ${trainerState.max_steps}` : ''}`;
  if (stoppedAt) warnings.push(`${source}: ${stoppedAt}`);
  const runId = newRunId();
  const runDir = join(project.dir, RUNS_DIR, runId);
  const now = new Date().toISOString();
  const origin = originOf(source, where, now);
  try {
    let final: { method: MethodName; config: Record<string, unknown>; trainable: number } | undefined;
    let events: TrainEvent[] = [];
    await writeDirAtomic(runDir, async (tmp) => {
      const recorder = new AnalysisRecorder({ runDir: tmp, model });
      for (const step of steps) {
        const instance: AdapterInstance = await loadPeftAdapter(model, checkpoints.get(step)!, {
          adapterName: 'default',
          seed,
        });
        try {
          const adapter = instance.state();
          const optimizer = freshOptimizerState(instance);
          try {
            await saveCheckpoint(
              tmp,
              {
                adapter,
                optimizer: { step: 0, tensors: optimizer },
                state: importedCheckpointState(instance, step, seed, now),
              },
              steps.length,
            );
          } finally {
            tf.dispose([...Object.values(adapter), ...Object.values(optimizer)]);
          }
          await recorder.record(step, instance, step === trainerState.global_step ? 'final' : 'checkpoint');
          final = {
            method: instance.method,
            config: instance.config,
            trainable: instance.trainable().reduce((n, p) => n + p.variable.size, 0),
          };
        } finally {
          detachAdapter(model, instance.name);
        }
      }
      const metricsPath = join(source, METRICS_FILE);
      events = (await exists(metricsPath))
        ? await eventsFromMetrics(
            metricsPath,
            runId,
            runDir,
            new Set(steps),
            ended ? undefined : trainerState.global_step,
          )
        : eventsFromLogHistory(
            trainerState,
            {
              runId,
              totalSteps: Math.max(1, trainerState.max_steps ?? trainerState.global_step),
              method: final!.method,
              task: settings.task,
              trainableParams: final!.trainable,
              trainExamples: 0,
              validationExamples: 0,
              backend: where ? `${where.device ?? 'device'}/${where.strategy}` : 'external',
            },
            now,
          );
      await writeFileAtomic(join(tmp, METRICS_FILE), events.map((e) => `${JSON.stringify(e)}\n`).join(''));
      const finished = events.findLast((e) => e.type === 'finished');
      const lastEval = events.findLast((e) => e.type === 'eval');
      const finalMetrics = finished?.metrics ?? lastEval?.metrics;
      const record: RunRecord = {
        schemaVersion: 1,
        runId,
        config: { ...settings, method: { name: final!.method, config: final!.config } },
        status: 'completed',
        reason: stoppedAt ? `imported; ${stoppedAt}` : 'imported',
        totalSteps: Math.max(trainerState.max_steps ?? 0, trainerState.global_step),
        step: trainerState.global_step,
        backend: tf.getBackend(),
        ...(settings.data.labels ? { labels: settings.data.labels } : {}),
        createdAt: now,
        updatedAt: now,
        finishedAt: now,
        trainSeconds: finished?.durationSec ?? 0,
        lastCheckpoint: checkpointDir(runDir, trainerState.global_step),
        ...(finalMetrics ? { finalMetrics } : {}),
        origin,
      };
      await writeRunRecord(tmp, record);
    });
    return {
      runId,
      runDir,
      method: final!.method,
      step: trainerState.global_step,
      checkpoints: steps,
      steps: events.filter((e) => e.type === 'step').length,
      origin,
      warnings,
    };
  } finally {
    model.dispose();
  }
}
