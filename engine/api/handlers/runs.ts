import { promises as fs } from 'node:fs';
import { join, resolve } from 'node:path';
import { runRecorder } from '../../analysis/index.ts';
import { ApiError, type Metrics, type Progress, type RunInfo } from '../../common/contract.ts';
import { thinSeries } from '../../common/thinning.ts';
import { importPeftAdapter } from '../../export/import.ts';
import { importExternalRun } from '../../export/import-run.ts';
import { listRuns, projectOfRun, RUNS_DIR, readRunRecord } from '../../project/index.ts';
import { lockHolder, readRunEvents, recoverRun } from '../../runs/index.ts';
import { type RunHandle, resumeRun, startRun, type TrainEvent } from '../../training/index.ts';
import { type Handlers, type ServiceContext, stateOf } from './context.ts';

interface LiveRun {
  handle: RunHandle;
  off: () => void;
}

function liveRuns(ctx: ServiceContext): Map<string, LiveRun> {
  return stateOf(ctx, 'runs', () => {
    const map = new Map<string, LiveRun>();
    // a host shutting down stops its runs at a step boundary; they resume from their last checkpoint
    ctx.onDispose(async () => {
      for (const { handle } of map.values()) handle.cancel();
      await Promise.allSettled([...map.values()].map(({ handle }) => handle.done));
    });
    return map;
  });
}

/** Last values of a run's event log, for the runs table and progress. */
export function summarizeEvents(events: readonly TrainEvent[]) {
  let step = 0;
  let lastLoss: number | null = null;
  let lastEvalLoss: number | null = null;
  let epoch = 0;
  let tokensPerSec: number | null = null;
  let etaSec: number | null = null;
  for (const e of events) {
    if (e.type === 'step') {
      step = e.step;
      lastLoss = e.loss;
      epoch = e.epoch;
      tokensPerSec = e.tokensPerSec;
      etaSec = e.etaSec;
    } else if (e.type === 'eval' && typeof e.metrics.loss === 'number') {
      lastEvalLoss = e.metrics.loss;
    }
  }
  return { step, lastLoss, lastEvalLoss, epoch, tokensPerSec, etaSec };
}

async function eventsOf(runDir: string, live: LiveRun | undefined): Promise<readonly TrainEvent[]> {
  if (live) return live.handle.history;
  return readRunEvents(runDir).catch(() => []);
}

export async function runInfo(ctx: ServiceContext, runDir: string): Promise<RunInfo> {
  const dir = resolve(runDir);
  // opening a run repairs what a killed trainer left: `running` with no live process becomes `interrupted`
  const record = await recoverRun(dir);
  const live = liveRuns(ctx).get(dir);
  const events = await eventsOf(dir, live);
  const summary = summarizeEvents(events);
  const status = live ? live.handle.status() : record.status;
  return {
    id: record.runId,
    dir,
    projectDir: projectOfRun(dir),
    status,
    live: Boolean(live),
    method: record.config.method.name,
    createdAt: record.createdAt,
    // run.json is rewritten at checkpoints; the event log knows the latest step
    step: Math.max(record.step, summary.step),
    totalSteps: record.totalSteps,
    epoch: summary.epoch,
    lastLoss: summary.lastLoss,
    lastEvalLoss: summary.lastEvalLoss,
    lastCheckpoint: record.lastCheckpoint,
    backend: record.backend,
    error: record.error ?? null,
    config: record.config as unknown as Record<string, unknown>,
    ...(record.origin ? { origin: record.origin } : {}),
  };
}

export async function listRunInfos(ctx: ServiceContext, projectDir: string): Promise<RunInfo[]> {
  const ids = await listRuns(projectDir);
  const infos = await Promise.all(
    ids.map((id) => runInfo(ctx, join(resolve(projectDir), RUNS_DIR, id)).catch(() => null)),
  );
  return infos.filter((r): r is RunInfo => r !== null).sort((a, b) => b.createdAt.localeCompare(a.createdAt));
}

/** Chart rows of a run: step series (thinned to `maxPoints` by the shared rule, loss extremes kept) and evaluations. */
export function metricsOf(runDir: string, events: readonly TrainEvent[], maxPoints: number): Metrics {
  const steps: Metrics['steps'] = [];
  const evals: Metrics['evals'] = [];
  for (const e of events) {
    if (e.type === 'step') {
      steps.push({
        step: e.step,
        loss: e.loss,
        lr: e.lr,
        gradNorm: e.gradNorm,
        tokensPerSec: e.tokensPerSec,
      });
    } else if (e.type === 'eval') {
      const { loss, ...rest } = e.metrics;
      evals.push({ step: e.step, evalLoss: typeof loss === 'number' ? loss : null, metrics: rest });
    }
  }
  return { runDir, steps: thinSeries(steps, maxPoints, (r) => r.loss), evals, totalRecorded: steps.length };
}

const stateEvents = new Set([
  'run-started',
  'paused',
  'resumed',
  'cancelled',
  'finished',
  'error',
  'checkpoint-saved',
]);

/** Follows a run driven by this host: forwards its events and state, and forgets it when it ends. */
async function track(ctx: ServiceContext, handle: RunHandle): Promise<RunInfo> {
  const runs = liveRuns(ctx);
  const dir = resolve(handle.runDir);
  const publish = () =>
    runInfo(ctx, dir).then(
      (run) => ctx.emit({ type: 'run.state', run }),
      () => undefined,
    );
  const off = handle.on('event', (event) => {
    ctx.emit({ type: 'run.event', runDir: dir, event });
    if (stateEvents.has(event.type)) void publish();
  });
  runs.set(dir, { handle, off });
  void handle.done.finally(() => {
    off();
    runs.delete(dir);
    void publish();
  });
  return runInfo(ctx, dir);
}

function live(ctx: ServiceContext, runDir: string): LiveRun {
  const run = liveRuns(ctx).get(resolve(runDir));
  if (!run) throw new ApiError('conflict', `${runDir} is not running in this engine; resume it to continue`);
  return run;
}

export const runHandlers: Pick<
  Handlers,
  | 'runs.start'
  | 'runs.pause'
  | 'runs.resume'
  | 'runs.cancel'
  | 'runs.list'
  | 'runs.delete'
  | 'runs.status'
  | 'runs.live'
  | 'runs.import'
  | 'runs.importExternal'
> = {
  async 'runs.start'({ projectDir, overrides }, ctx) {
    const o = overrides as { training?: Record<string, unknown>; backend?: string };
    return track(
      ctx,
      await startRun(projectDir, { training: o.training, backend: o.backend, recorder: runRecorder }),
    );
  },
  async 'runs.pause'({ runDir }, ctx) {
    live(ctx, runDir).handle.pause();
    return runInfo(ctx, runDir);
  },
  async 'runs.resume'({ runDir }, ctx) {
    const running = liveRuns(ctx).get(resolve(runDir));
    if (running) {
      running.handle.resume();
      return runInfo(ctx, runDir);
    }
    // not driven by this host (paused before a restart, cancelled, interrupted): continue from the checkpoint
    return track(ctx, await resumeRun(runDir, { recorder: runRecorder }));
  },
  async 'runs.cancel'({ runDir }, ctx) {
    const run = live(ctx, runDir);
    run.handle.cancel();
    await run.handle.done;
    return runInfo(ctx, runDir);
  },
  async 'runs.list'({ projectDir }, ctx) {
    return listRunInfos(ctx, projectDir);
  },
  async 'runs.delete'({ runDir }, ctx) {
    const dir = resolve(runDir);
    if (liveRuns(ctx).has(dir) || (await lockHolder(dir)) !== null)
      throw new ApiError('conflict', `${dir} is in progress; cancel it before deleting`);
    await readRunRecord(dir);
    await fs.rm(dir, { recursive: true, force: true });
    return { deleted: dir };
  },
  async 'runs.import'({ projectDir, source }, ctx) {
    const result = await importPeftAdapter(source, projectDir);
    return { run: await runInfo(ctx, result.runDir), warnings: result.warnings };
  },
  async 'runs.importExternal'({ projectDir, source }, ctx) {
    const result = await importExternalRun(source, projectDir);
    return {
      run: await runInfo(ctx, result.runDir),
      checkpoints: result.checkpoints,
      warnings: result.warnings,
    };
  },
  async 'runs.status'({ runDir, maxPoints }, ctx) {
    const dir = resolve(runDir);
    const run = await runInfo(ctx, dir);
    const events = await eventsOf(dir, liveRuns(ctx).get(dir));
    const s = summarizeEvents(events);
    const progress: Progress = {
      step: run.step,
      totalSteps: run.totalSteps,
      epoch: s.epoch,
      tokensPerSec: s.tokensPerSec,
      etaSec: run.status === 'running' ? s.etaSec : null,
    };
    return { run, progress, metrics: metricsOf(dir, events, maxPoints) };
  },
  async 'runs.live'(_input, ctx) {
    return Promise.all([...liveRuns(ctx).keys()].map((dir) => runInfo(ctx, dir)));
  },
};
