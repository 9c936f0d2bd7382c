import { createStore, type StoreApi } from 'zustand/vanilla';
import type {
  Analysis,
  BackendReport,
  Budget,
  DataPreview,
  EigenResult,
  ExportResult,
  Input,
  MethodDescription,
  MethodId,
  Metrics,
  ModelSummary,
  Output,
  ProjectSummary,
  RecentProject,
  RunComparison,
  RunDetail,
  RunInfo,
  StudioApi,
  StudioEvent,
  TrainEvent,
} from '../../engine/common/contract.ts';
import { downsample } from './lib/downsample.ts';

export const views = ['project', 'adapter', 'train', 'analysis', 'runs', 'export', 'try'] as const;
export type ViewId = (typeof views)[number];
export type MethodName = MethodDescription['name'];

/** Live chart rows kept in memory per run; older rows are thinned so a long run stays cheap to draw. */
export const MAX_LIVE_POINTS = 1500;

export interface HostState {
  state: 'up' | 'down' | 'restarting';
  message: string;
  interruptedRuns: string[];
}

export interface EigenJob {
  jobId: string;
  runDir: string;
  module: string;
  fraction: number;
  message: string;
  result?: EigenResult;
  error?: string;
}

export type BudgetRow = Budget | { method: MethodName; error: string };

export interface StudioState {
  view: ViewId;
  theme: 'light' | 'dark';
  appInfo: Output<'app.info'> | null;
  backend: BackendReport | null;
  recent: RecentProject[];
  methods: MethodDescription[];
  project: ProjectSummary | null;
  model: ModelSummary | null;
  preview: DataPreview | null;
  /** The adapter being configured: method and its config (validated by the engine on every change). */
  draft: { method: MethodName; config: Record<string, unknown> } | null;
  budget: Budget | null;
  comparison: BudgetRow[] | null;
  runs: RunInfo[];
  /** The run shown in Train, Analysis, Export and Try it. */
  selectedRun: string | null;
  details: Record<string, RunDetail>;
  analysis: Record<string, Analysis>;
  runComparison: RunComparison | null;
  eigenJobs: Record<string, EigenJob>;
  exports: ExportResult[];
  host: HostState;
  /** In-place errors by area (`project`, `budget`, `train`, …), with the engine's message. */
  errors: Record<string, string | undefined>;
  busy: Record<string, boolean | undefined>;
}

export interface StudioActions {
  setView(view: ViewId): void;
  setTheme(theme: 'light' | 'dark'): void;
  init(): Promise<void>;
  openProject(dir: string): Promise<void>;
  createProject(input: Input<'projects.create'>): Promise<void>;
  openDemo(dir?: string): Promise<void>;
  loadPreview(): Promise<void>;
  setMethod(method: MethodName): void;
  setConfig(patch: Record<string, unknown>): void;
  refreshBudget(): Promise<void>;
  compareMethods(): Promise<void>;
  saveAdapter(): Promise<void>;
  startRun(overrides?: Record<string, unknown>): Promise<void>;
  pauseRun(runDir: string): Promise<void>;
  resumeRun(runDir: string): Promise<void>;
  cancelRun(runDir: string): Promise<void>;
  deleteRun(runDir: string): Promise<void>;
  refreshRuns(): Promise<void>;
  /** Imports a PEFT adapter folder as a run of the open project; the warnings, or null when refused. */
  importAdapter(source: string): Promise<string[] | null>;
  selectRun(runDir: string | null): Promise<void>;
  loadAnalysis(runDir: string): Promise<void>;
  compareRuns(runA: string, runB: string): Promise<void>;
  startEigen(runDir: string, module: string): Promise<void>;
  cancelEigen(jobId: string): Promise<void>;
  runExport(
    runDir: string,
    format: Input<'export.run'>['format'],
    out: string,
    extra?: Pick<Input<'export.run'>, 'quant' | 'resize'>,
  ): Promise<ExportResult | null>;
  restartEngine(): Promise<void>;
  handleEvent(event: StudioEvent): void;
  clearError(area: string): void;
}

export type Studio = StudioState & StudioActions;

/** Config keys the target panel edits (PEFT's target fields, camelCase as in the engine's method schemas). */
export const TARGET_FIELDS = [
  'targetModules',
  'excludeModules',
  'layersToTransform',
  'layersPattern',
] as const;

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
      steps = downsample(steps, Math.floor(MAX_LIVE_POINTS * 0.75), (r) => r.loss);
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

function upsertRun(runs: RunInfo[], run: RunInfo): RunInfo[] {
  const found = runs.some((r) => r.dir === run.dir);
  const next = found ? runs.map((r) => (r.dir === run.dir ? run : r)) : [run, ...runs];
  return next.sort((a, b) => b.createdAt.localeCompare(a.createdAt));
}

function message(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

export function isActive(run: RunInfo | undefined | null): boolean {
  return Boolean(
    run?.live && (run.status === 'running' || run.status === 'paused' || run.status === 'pending'),
  );
}

export function createStudioStore(
  api: StudioApi,
  storage: Pick<Storage, 'getItem' | 'setItem'> | null = null,
) {
  const store: StoreApi<Studio> = createStore<Studio>()((set, get) => {
    /** Runs one API call with busy/error bookkeeping for an area; returns null on failure. */
    async function guarded<M extends MethodId>(
      area: string,
      id: M,
      input: Input<M>,
    ): Promise<Output<M> | null> {
      set((s) => ({ busy: { ...s.busy, [area]: true }, errors: { ...s.errors, [area]: undefined } }));
      try {
        return await api.call(id, input);
      } catch (error) {
        set((s) => ({ errors: { ...s.errors, [area]: message(error) } }));
        return null;
      } finally {
        set((s) => ({ busy: { ...s.busy, [area]: false } }));
      }
    }

    async function adoptProject(project: ProjectSummary): Promise<void> {
      const method = project.method;
      const described = get().methods.find((m) => m.name === method);
      const config = { ...(described?.defaults ?? {}), ...project.methodConfig };
      const live = project.runs.find((r) => isActive(r));
      set({
        project,
        runs: project.runs,
        draft: { method, config },
        preview: null,
        budget: null,
        comparison: null,
        runComparison: null,
        selectedRun: live?.dir ?? project.runs[0]?.dir ?? null,
        view: live ? 'train' : get().view,
      });
      const tasks: Promise<unknown>[] = [
        get().loadPreview(),
        get().refreshBudget(),
        guarded('model', 'model.inspect', { modelDir: project.modelDir }).then((model) => set({ model })),
      ];
      const selected = get().selectedRun;
      if (selected) tasks.push(get().selectRun(selected));
      await Promise.all(tasks);
      const recent = await api.call('projects.recent', {}).catch(() => null);
      if (recent) set({ recent });
    }

    async function fetchDetail(runDir: string): Promise<void> {
      const detail = await guarded('run', 'runs.status', { runDir, maxPoints: 1000 });
      if (detail) {
        set((s) => ({ details: { ...s.details, [runDir]: detail }, runs: upsertRun(s.runs, detail.run) }));
      }
    }

    let budgetTicket = 0;

    return {
      view: 'project',
      theme: (storage?.getItem('studio.theme') as 'light' | 'dark' | null) ?? 'light',
      appInfo: null,
      backend: null,
      recent: [],
      methods: [],
      project: null,
      model: null,
      preview: null,
      draft: null,
      budget: null,
      comparison: null,
      runs: [],
      selectedRun: null,
      details: {},
      analysis: {},
      runComparison: null,
      eigenJobs: {},
      exports: [],
      host: { state: 'up', message: '', interruptedRuns: [] },
      errors: {},
      busy: {},

      setView: (view) => set({ view }),
      setTheme: (theme) => {
        storage?.setItem('studio.theme', theme);
        set({ theme });
      },
      clearError: (area) => set((s) => ({ errors: { ...s.errors, [area]: undefined } })),

      async init() {
        // each answer shows as soon as it arrives: the backend probe can take seconds
        await Promise.all([
          guarded('app', 'app.info', {}).then((appInfo) => set({ appInfo })),
          guarded('app', 'methods.list', {}).then((methods) => set({ methods: methods ?? [] })),
          guarded('app', 'projects.recent', {}).then((recent) => set({ recent: recent ?? [] })),
          guarded('backend', 'backend.report', {}).then((backend) => set({ backend })),
        ]);
      },

      async openProject(dir) {
        const project = await guarded('project', 'projects.open', { dir });
        if (project) await adoptProject(project);
      },

      async createProject(input) {
        const project = await guarded('project', 'projects.create', input);
        if (project) await adoptProject(project);
      },

      async openDemo(dir) {
        const project = await guarded('project', 'projects.createDemo', dir ? { dir } : {});
        if (project) await adoptProject(project);
      },

      async loadPreview() {
        const project = get().project;
        if (!project) return;
        const preview = await guarded('preview', 'data.preview', { projectDir: project.dir, count: 6 });
        set({ preview });
      },

      setMethod(method) {
        const described = get().methods.find((m) => m.name === method);
        const old = get().draft?.config ?? {};
        const config: Record<string, unknown> = { ...(described?.defaults ?? {}) };
        // targets and layer range carry over: they are the same question for every method
        for (const key of TARGET_FIELDS) if (key in old) config[key] = old[key];
        set({ draft: { method, config } });
        void get().refreshBudget();
      },

      setConfig(patch) {
        const draft = get().draft;
        if (!draft) return;
        const config = { ...draft.config };
        for (const [key, value] of Object.entries(patch)) {
          if (value === undefined) delete config[key];
          else config[key] = value;
        }
        set({ draft: { ...draft, config } });
        void get().refreshBudget();
      },

      async refreshBudget() {
        const { project, draft } = get();
        if (!draft || !project) return;
        const modelDir = project.modelDir;
        const ticket = ++budgetTicket;
        const training = project.training as { batchSize?: number; seqLen?: number; maxSeqLen?: number };
        const budget = await guarded('budget', 'budget.compute', {
          modelDir,
          method: draft.method,
          config: draft.config,
          batchSize: training.batchSize ?? 4,
          seqLen: training.seqLen ?? training.maxSeqLen ?? 128,
          task: project.task,
        });
        // answers to older drafts arrive late when typing fast; only the newest counts
        if (ticket === budgetTicket) set({ budget });
      },

      async compareMethods() {
        const { project, draft, methods } = get();
        if (!draft || !project) return;
        const modelDir = project.modelDir;
        const candidates = methods.map((m) => {
          if (m.name === draft.method) return { method: m.name, config: draft.config };
          const config: Record<string, unknown> = { ...m.defaults };
          for (const key of TARGET_FIELDS) if (key in draft.config) config[key] = draft.config[key];
          return { method: m.name, config };
        });
        const comparison = await guarded('compare', 'budget.compare', {
          modelDir,
          candidates,
          task: project.task,
        });
        set({ comparison });
      },

      async saveAdapter() {
        const { project, draft } = get();
        if (!project || !draft) return;
        const updated = await guarded('adapter', 'projects.update', {
          dir: project.dir,
          method: draft.method,
          methodConfig: draft.config,
        });
        if (updated) set({ project: updated });
      },

      async startRun(overrides = {}) {
        const { project } = get();
        if (!project) return;
        await get().saveAdapter();
        if (get().errors.adapter) {
          set((s) => ({ errors: { ...s.errors, train: s.errors.adapter } }));
          return;
        }
        const run = await guarded('train', 'runs.start', { projectDir: project.dir, overrides });
        if (!run) return;
        set((s) => ({
          runs: upsertRun(s.runs, run),
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
        }));
      },

      async pauseRun(runDir) {
        const run = await guarded('train', 'runs.pause', { runDir });
        if (run) get().handleEvent({ type: 'run.state', run });
      },
      async resumeRun(runDir) {
        const run = await guarded('train', 'runs.resume', { runDir });
        if (run) {
          get().handleEvent({ type: 'run.state', run });
          set((s) => ({
            selectedRun: runDir,
            host: { ...s.host, interruptedRuns: s.host.interruptedRuns.filter((r) => r !== runDir) },
          }));
        }
      },
      async cancelRun(runDir) {
        const run = await guarded('train', 'runs.cancel', { runDir });
        if (run) get().handleEvent({ type: 'run.state', run });
      },
      async deleteRun(runDir) {
        const done = await guarded('runs', 'runs.delete', { runDir });
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
        const runs = await guarded('runs', 'runs.list', { projectDir: project.dir });
        if (runs) set({ runs });
      },
      async importAdapter(source) {
        const project = get().project;
        if (!project) return null;
        const result = await guarded('import', 'runs.import', { projectDir: project.dir, source });
        if (!result) return null;
        set((s) => ({ runs: [result.run, ...s.runs.filter((r) => r.dir !== result.run.dir)] }));
        return result.warnings;
      },
      async selectRun(runDir) {
        set({ selectedRun: runDir });
        if (runDir) await fetchDetail(runDir);
      },
      async loadAnalysis(runDir) {
        const analysis = await guarded('analysis', 'analysis.get', { runDir, maxSteps: 60 });
        if (analysis) set((s) => ({ analysis: { ...s.analysis, [runDir]: analysis } }));
      },
      async compareRuns(runA, runB) {
        const runComparison = await guarded('compare-runs', 'analysis.compare', {
          runA,
          runB,
          maxPoints: 400,
        });
        set({ runComparison });
      },
      async startEigen(runDir, module) {
        const job = await guarded('eigen', 'analysis.eigen.start', { runDir, module });
        if (job) {
          set((s) => ({
            eigenJobs: {
              ...s.eigenJobs,
              [job.jobId]: { jobId: job.jobId, runDir, module, fraction: 0, message: 'queued' },
            },
          }));
        }
      },
      async cancelEigen(jobId) {
        const done = await guarded('eigen', 'analysis.eigen.cancel', { jobId });
        if (done) {
          set((s) => {
            const eigenJobs = { ...s.eigenJobs };
            delete eigenJobs[jobId];
            return { eigenJobs };
          });
        }
      },
      async runExport(runDir, format, out, extra = {}) {
        const result = await guarded(`export-${format}`, 'export.run', { runDir, format, out, ...extra });
        if (result) set((s) => ({ exports: [result, ...s.exports.filter((e) => e.out !== result.out)] }));
        return result;
      },
      async restartEngine() {
        set({ host: { ...get().host, state: 'restarting', message: 'starting the engine' } });
        try {
          await api.restartEngine();
          set((s) => ({ host: { ...s.host, state: 'up', message: '' } }));
          await get().refreshRuns();
        } catch (error) {
          set((s) => ({ host: { ...s.host, state: 'down', message: message(error) } }));
        }
      },

      handleEvent(event) {
        switch (event.type) {
          case 'run.event': {
            set((s) => {
              const current = s.details[event.runDir];
              if (!current) return {};
              return { details: { ...s.details, [event.runDir]: applyTrainEvent(current, event.event) } };
            });
            return;
          }
          case 'run.state': {
            set((s) => {
              const inProject = !s.project || event.run.projectDir === s.project.dir;
              const current = s.details[event.run.dir];
              const details = current
                ? {
                    ...s.details,
                    [event.run.dir]: {
                      ...current,
                      run: event.run,
                      progress: {
                        ...current.progress,
                        step: event.run.step,
                        totalSteps: event.run.totalSteps,
                      },
                    },
                  }
                : s.details;
              return { runs: inProject ? upsertRun(s.runs, event.run) : s.runs, details };
            });
            return;
          }
          case 'eigen.progress':
          case 'eigen.done':
          case 'eigen.failed': {
            set((s) => {
              const job = s.eigenJobs[event.jobId];
              if (!job) return {};
              const next: EigenJob =
                event.type === 'eigen.progress'
                  ? { ...job, fraction: event.fraction, message: event.message }
                  : event.type === 'eigen.done'
                    ? { ...job, fraction: 1, message: 'done', result: event.result }
                    : { ...job, message: 'failed', error: event.error };
              return { eigenJobs: { ...s.eigenJobs, [event.jobId]: next } };
            });
            return;
          }
          case 'host.state': {
            set((s) => ({
              host: {
                state: event.state,
                message: event.message,
                interruptedRuns: event.state === 'down' ? event.interruptedRuns : s.host.interruptedRuns,
              },
            }));
            if (event.state === 'up') void get().refreshRuns();
            return;
          }
        }
      },
    };
  });
  return store;
}
