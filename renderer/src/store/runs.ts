import type { Metrics, RunDetail, RunInfo, TrainEvent } from '../../../engine/common/contract.ts';
import { thinSeries } from '../../../engine/common/thinning.ts';
import { formErrors } from './forms.ts';
import type { RunsSlice, Slice } from './types.ts';

/** Live chart rows kept in memory per run; older rows are thinned so a long run stays cheap to draw. */
export const MAX_LIVE_POINTS = 1500;

export function isActive(run: RunInfo | undefined | null): boolean {
  return Boolean(
    run?.live && (run.status === 'running' || run.status === 'paused' || run.status === 'pending'),
  );
}

function emptyMetrics(runDir: string): Metrics {
  return { runDir, steps: [], evals: [], totalRecorded: 0 };
}

function num(x: unknown): number | null {
  return typeof x === 'number' && Number.isFinite(x) ? x : null;
}

/** Folds one live training event into a run's detail: progress, chart rows, eval rows. */
export function applyTrainEvent(detail: RunDetail, event: TrainEvent): RunDetail {
  const progress = { ...detail.progress };
  if (typeof event.step === 'number') progress.step = Math.max(progress.step, event.step);
  if (typeof event.totalSteps === 'number') progress.totalSteps = event.totalSteps;
  if (typeof event.epoch === 'number') progress.epoch = event.epoch;
  if (typeof event.tokensPerSec === 'number') progress.tokensPerSec = event.tokensPerSec;
  if (typeof event.etaSec === 'number') progress.etaSec = event.etaSec;
  let metrics = detail.metrics;
  if (typeof event.step === 'number' && typeof event.loss === 'number') {
    const row = {
      step: event.step,
      loss: num(event.loss),
      lr: num(event.lr),
      gradNorm: num(event.gradNorm),
      tokensPerSec: num(event.tokensPerSec),
    };
    let steps = [...metrics.steps.filter((r) => r.step !== row.step), row];
    if (steps.length > MAX_LIVE_POINTS)
      steps = thinSeries(steps, Math.floor(MAX_LIVE_POINTS * 0.75), (r) => r.loss);
    metrics = { ...metrics, steps, totalRecorded: metrics.totalRecorded + 1 };
  }
  if (event.type === 'eval' && typeof event.step === 'number') {
    const { loss, ...rest } = event.metrics ?? {};
    const evalLoss = num(loss ?? event.evalLoss);
    const row = { step: event.step, evalLoss, metrics: rest };
    metrics = { ...metrics, evals: [...metrics.evals.filter((r) => r.step !== row.step), row] };
  }
  const run = { ...detail.run, step: progress.step, totalSteps: progress.totalSteps, epoch: progress.epoch };
  if (typeof event.loss === 'number') run.lastLoss = event.loss;
  if (event.type === 'eval')
    run.lastEvalLoss = num(event.metrics?.loss ?? event.evalLoss) ?? run.lastEvalLoss;
  return { run, progress, metrics };
}

export function upsertRun(runs: RunInfo[], run: RunInfo): RunInfo[] {
  const found = runs.some((r) => r.dir === run.dir);
  const next = found ? runs.map((r) => (r.dir === run.dir ? run : r)) : [run, ...runs];
  return next.sort((a, b) => b.createdAt.localeCompare(a.createdAt));
}

export const runsSlice: Slice<RunsSlice> = (set, get) => {
  /**
   * State events seen per run. An action's reply describes the run when the engine received the action (a
   * pause answers "running"); when a state event arrived meanwhile, it is newer and the reply is dropped.
   */
  const seen = new Map<string, number>();
  const applyReply = (runDir: string, before: number, run: RunInfo | null) => {
    if (run && (seen.get(runDir) ?? 0) === before) get().applyRunState(run, false);
  };
  async function act(id: 'runs.pause' | 'runs.resume' | 'runs.cancel', runDir: string) {
    const before = seen.get(runDir) ?? 0;
    const run = await get().request('train', id, { runDir });
    applyReply(runDir, before, run);
    return run;
  }

  async function fetchDetail(runDir: string): Promise<void> {
    const detail = await get().request('run', 'runs.status', { runDir, maxPoints: 1000 });
    if (detail) {
      set((s) => ({ details: { ...s.details, [runDir]: detail }, runs: upsertRun(s.runs, detail.run) }));
    }
  }

  return {
    runs: [],
    liveRuns: {},
    selectedRun: null,
    details: {},

    async refreshLiveRuns() {
      const live = await get().request('live', 'runs.live', {});
      if (live) set({ liveRuns: Object.fromEntries(live.map((r) => [r.dir, r])) });
    },

    async startRun(overrides = {}) {
      const { project, trainingDraft } = get();
      if (!project) return;
      const blocking = formErrors(get(), 'adapter', 'training');
      if (blocking.length > 0) {
        set((s) => ({ errors: { ...s.errors, train: `fix the settings first: ${blocking.join('; ')}` } }));
        return;
      }
      const training = { ...trainingDraft, ...(overrides.training as Record<string, unknown> | undefined) };
      await get().saveAdapter();
      if (get().errors.adapter) {
        set((s) => ({ errors: { ...s.errors, train: s.errors.adapter } }));
        return;
      }
      const started = await get().request('train', 'runs.start', {
        projectDir: project.dir,
        overrides: Object.keys(training).length > 0 ? { ...overrides, training } : overrides,
      });
      if (!started) return;
      set((s) => {
        // a state event of the new run may have come first: it is newer than the reply
        const run = (seen.has(started.dir) && s.runs.find((r) => r.dir === started.dir)) || started;
        return {
          runs: upsertRun(s.runs, run),
          liveRuns: isActive(run) ? { ...s.liveRuns, [run.dir]: run } : s.liveRuns,
          selectedRun: run.dir,
          details: {
            ...s.details,
            [run.dir]: {
              run,
              progress: {
                step: run.step,
                totalSteps: run.totalSteps,
                epoch: run.epoch,
                tokensPerSec: null,
                etaSec: null,
              },
              metrics: emptyMetrics(run.dir),
            },
          },
          view: 'train',
        };
      });
    },

    async pauseRun(runDir) {
      await act('runs.pause', runDir);
    },
    async resumeRun(runDir) {
      if (await act('runs.resume', runDir)) {
        set((s) => ({
          selectedRun: runDir,
          host: { ...s.host, interruptedRuns: s.host.interruptedRuns.filter((r) => r !== runDir) },
        }));
      }
    },
    async cancelRun(runDir) {
      await act('runs.cancel', runDir);
    },
    async deleteRun(runDir) {
      const done = await get().request('runs', 'runs.delete', { runDir });
      if (!done) return;
      set((s) => {
        const details = { ...s.details };
        delete details[runDir];
        return {
          runs: s.runs.filter((r) => r.dir !== runDir),
          details,
          selectedRun: s.selectedRun === runDir ? null : s.selectedRun,
          runComparison: null,
        };
      });
    },
    async refreshRuns() {
      const project = get().project;
      if (!project) return;
      const runs = await get().request('runs', 'runs.list', { projectDir: project.dir });
      if (runs) set({ runs });
    },
    async importRun(kind, source) {
      const project = get().project;
      if (!project) return null;
      const input = { projectDir: project.dir, source };
      const result =
        kind === 'adapter'
          ? await get().request('import', 'runs.import', input)
          : await get().request('import', 'runs.importExternal', input);
      if (!result) return null;
      set((s) => ({ runs: [result.run, ...s.runs.filter((r) => r.dir !== result.run.dir)] }));
      return result.warnings;
    },
    async selectRun(runDir) {
      set({ selectedRun: runDir });
      if (runDir) await fetchDetail(runDir);
    },

    applyRunEvents(runDir, events) {
      set((s) => {
        const live = s.liveRuns[runDir];
        let liveRuns = s.liveRuns;
        // the sidebar chip follows every step, whichever run the views show
        if (live) {
          let { step, totalSteps } = live;
          for (const e of events) {
            if (typeof e.step === 'number') step = Math.max(step, e.step);
            if (typeof e.totalSteps === 'number') totalSteps = e.totalSteps;
          }
          if (step !== live.step || totalSteps !== live.totalSteps)
            liveRuns = { ...s.liveRuns, [runDir]: { ...live, step, totalSteps } };
        }
        const current = s.details[runDir];
        if (!current) return { liveRuns };
        return { liveRuns, details: { ...s.details, [runDir]: events.reduce(applyTrainEvent, current) } };
      });
    },
    applyRunState(run, fromEvent = true) {
      if (fromEvent) seen.set(run.dir, (seen.get(run.dir) ?? 0) + 1);
      set((s) => {
        const inProject = !s.project || run.projectDir === s.project.dir;
        const current = s.details[run.dir];
        const details = current
          ? {
              ...s.details,
              [run.dir]: {
                ...current,
                run,
                progress: { ...current.progress, step: run.step, totalSteps: run.totalSteps },
              },
            }
          : s.details;
        const liveRuns = { ...s.liveRuns };
        if (isActive(run)) liveRuns[run.dir] = run;
        else delete liveRuns[run.dir];
        return { runs: inProject ? upsertRun(s.runs, run) : s.runs, details, liveRuns };
      });
    },
  };
};
