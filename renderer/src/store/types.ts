/**
 * The studio store's state and actions, one interface per slice. The slices (one file each in this folder)
 * implement them; `../store.ts` puts them together. Every API call of every view goes through a store action,
 * so busy flags and in-place errors live in one place (`busy`, `errors`, by area).
 */
import type { StoreApi } from 'zustand/vanilla';
import type {
  Analysis,
  BackendReport,
  BrowseListing,
  Budget,
  DataPreview,
  DatasetInfo,
  EigenResult,
  ExportResult,
  Input,
  MethodDescription,
  MethodId,
  ModelSummary,
  Output,
  ProjectSummary,
  RecentProject,
  RunComparison,
  RunDetail,
  RunInfo,
  SettingField,
  StudioApi,
  StudioEvent,
  TrainEvent,
} from '../../../engine/common/contract.ts';

export const views = ['project', 'adapter', 'train', 'analysis', 'runs', 'export', 'try'] as const;
export type ViewId = (typeof views)[number];
export type MethodName = MethodDescription['name'];
export type ExportFormat = ExportResult['format'];

/** What every slice is built with. */
export interface SliceContext {
  api: StudioApi;
  storage: Pick<Storage, 'getItem' | 'setItem'> | null;
}
export type SetState = StoreApi<Studio>['setState'];
export type GetState = StoreApi<Studio>['getState'];
export type Slice<T> = (set: SetState, get: GetState, ctx: SliceContext) => T;

/** Busy flags and in-place errors by area (`project`, `budget`, `train`, `export-peft`, …). */
export interface RequestSlice {
  busy: Record<string, boolean | undefined>;
  /** The engine's message, shown where the area's action lives. */
  errors: Record<string, string | undefined>;
  /** One API call with busy/error bookkeeping for `area`; null when it failed (the error is in `errors`). */
  request<M extends MethodId>(area: string, id: M, input: Input<M>): Promise<Output<M> | null>;
  clearError(area: string): void;
}

export interface HostState {
  state: 'up' | 'down' | 'restarting';
  message: string;
  interruptedRuns: string[];
}

export interface AppSlice {
  view: ViewId;
  theme: 'light' | 'dark';
  appInfo: Output<'app.info'> | null;
  backend: BackendReport | null;
  recent: RecentProject[];
  methods: MethodDescription[];
  host: HostState;
  setView(view: ViewId): void;
  setTheme(theme: 'light' | 'dark'): void;
  init(): Promise<void>;
  restartEngine(): Promise<void>;
  /** Engine events, dispatched to the slices they concern. */
  handleEvent(event: StudioEvent): void;
  /** A batch of engine events: the training steps of each run are folded in with one update. */
  handleEvents(events: StudioEvent[]): void;
}

/** Where an opened project lands: a view and a run (by id); else its live run's Train view, or the project. */
export interface OpenTarget {
  view?: ViewId;
  run?: string;
}

export interface ProjectSlice {
  project: ProjectSummary | null;
  model: ModelSummary | null;
  preview: DataPreview | null;
  openProject(dir: string, target?: OpenTarget): Promise<void>;
  createProject(input: Input<'projects.create'>): Promise<void>;
  openDemo(dir?: string): Promise<void>;
  loadPreview(): Promise<void>;
}

export type BudgetRow = Budget | { method: MethodName; error: string };

export interface AdapterSlice {
  /** The adapter being configured: method and its config (validated by the engine on every change). */
  draft: { method: MethodName; config: Record<string, unknown> } | null;
  budget: Budget | null;
  comparison: BudgetRow[] | null;
  setMethod(method: MethodName): void;
  setConfig(patch: Record<string, unknown>): void;
  refreshBudget(): Promise<void>;
  compareMethods(): Promise<void>;
  saveAdapter(): Promise<void>;
}

/** What an imported folder is: a PEFT adapter (`runs.import`) or a hand-off job's output (`runs.importExternal`). */
export type ImportKind = 'adapter' | 'job';

export interface RunsSlice {
  /** Runs of the open project, newest first. */
  runs: RunInfo[];
  /** Runs the engine drives now, of any project (the sidebar's chip), by folder. */
  liveRuns: Record<string, RunInfo>;
  refreshLiveRuns(): Promise<void>;
  /** The run shown in Train, Analysis, Export and Try it. */
  selectedRun: string | null;
  details: Record<string, RunDetail>;
  startRun(overrides?: Record<string, unknown>): Promise<void>;
  pauseRun(runDir: string): Promise<void>;
  resumeRun(runDir: string): Promise<void>;
  cancelRun(runDir: string): Promise<void>;
  deleteRun(runDir: string): Promise<void>;
  refreshRuns(): Promise<void>;
  /** Brings a folder in as a run of the open project; its warnings, or null when refused (see errors.import). */
  importRun(kind: ImportKind, source: string): Promise<string[] | null>;
  selectRun(runDir: string | null): Promise<void>;
  /** Live training events of a run, in order (its chart rows when its detail is loaded, its chip always). */
  applyRunEvents(runDir: string, events: TrainEvent[]): void;
  /** A run's new state (status, step): from an engine event, or (`fromEvent` false) an action's reply. */
  applyRunState(run: RunInfo, fromEvent?: boolean): void;
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

export interface AnalysisSlice {
  /** The section of the Analysis view shown (norms, scaling, …), part of the URL. */
  analysisSection: string;
  setAnalysisSection(section: string): void;
  analysis: Record<string, Analysis>;
  runComparison: RunComparison | null;
  eigenJobs: Record<string, EigenJob>;
  loadAnalysis(runDir: string): Promise<void>;
  compareRuns(runA: string, runB: string): Promise<void>;
  startEigen(runDir: string, module: string): Promise<void>;
  cancelEigen(jobId: string): Promise<void>;
  applyEigenEvent(
    event: Extract<StudioEvent, { type: 'eigen.progress' | 'eigen.done' | 'eigen.failed' }>,
  ): void;
}

export interface ExportSlice {
  /** Bytes per export format of a run (a format its method lacks is absent). */
  estimates: Record<string, Record<string, number>>;
  exports: ExportResult[];
  estimateExport(runDir: string): Promise<void>;
  runExport(
    runDir: string,
    format: ExportFormat,
    out: string,
    extra?: Pick<Input<'export.run'>, 'quant' | 'resize'>,
  ): Promise<ExportResult | null>;
}

export interface TrySlice {
  generated: Output<'tryit.generate'> | null;
  classified: Output<'tryit.classify'> | null;
  generate(input: Input<'tryit.generate'>): Promise<void>;
  classify(input: Input<'tryit.classify'>): Promise<void>;
}

/** Typed text of form fields. Nothing typed is replaced: invalid text stays, marked, and blocks its form. */
export interface FormsSlice {
  /** Text typed into a field, by `form:key`, kept while it is invalid or reads differently from its value. */
  fieldTexts: Record<string, string>;
  /** Why a field's text is not a valid value, by `form:key`. */
  fieldErrors: Record<string, string>;
  setFieldText(form: string, key: string, text: string | undefined, error: string | null): void;
  resetForm(form: string): void;
}

/** The training settings of the next run, described by the engine (labels, units, groups, help). */
export interface TrainingSlice {
  trainingFields: SettingField[];
  trainingGroups: { id: SettingField['group']; label: string }[];
  /** Settings changed for the next run, over the project's (sent as run overrides, or saved). */
  trainingDraft: Record<string, unknown>;
  loadTrainingFields(): Promise<void>;
  setTraining(patch: Record<string, unknown>): void;
  /** Writes the changed settings into project.json. */
  saveTraining(): Promise<void>;
}

/** The engine's folder browser (browser mode) and what the new-project form learns about dataset files. */
export interface FilesSlice {
  /** The folder shown by the open browser, and which path field opened it. */
  listing: BrowseListing | null;
  browsingFor: string | null;
  browse(field: string | null, dir?: string): Promise<void>;
  /** Examples and split of a dataset file, by `path|task|fraction`. */
  datasets: Record<string, DatasetInfo>;
  describeDataset(area: string, input: Input<'files.dataset'>): Promise<DatasetInfo | null>;
}

/** What the URL holds: `#/<view>?project=<folder>&run=<run id>&section=<analysis section>`. */
export interface Route {
  view: ViewId | null;
  project: string | null;
  run: string | null;
  section: string | null;
}

/** The URL mirrors the open project, view, run and section; a reload or a deep link comes back to them. */
export interface RouteSlice {
  /** False until the first route (or the engine's last project) is applied: the URL is left alone till then. */
  started: boolean;
  start(route: Route): Promise<void>;
  followRoute(route: Route): Promise<void>;
  /** Back to the start page; a reload stays there (the engine forgets the last project). */
  closeProject(): Promise<void>;
}

export type Studio = FilesSlice &
  FormsSlice &
  TrainingSlice &
  RouteSlice &
  RequestSlice &
  AppSlice &
  ProjectSlice &
  AdapterSlice &
  RunsSlice &
  AnalysisSlice &
  ExportSlice &
  TrySlice;
