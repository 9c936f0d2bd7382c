/**
 * The one typed API between the studio UI and the engine. Electron IPC (preload ↔ main ↔ host) and browser mode
 * (HTTP + WebSocket) carry exactly these messages; every payload is parsed with these schemas on both sides.
 * This file imports zod and the import-free method names only, so the renderer bundles it.
 */
import { z } from 'zod';
import { METHOD_NAMES } from './method-names.ts';
import { RunOrigin } from './project-schema.ts';

export const methodNames = METHOD_NAMES;
export const MethodNameSchema = z.enum(methodNames);
export const exportFormats = ['peft', 'lora', 'merged', 'native', 'gguf', 'gguf-lora'] as const;
export const ggufQuants = ['f32', 'f16', 'bf16', 'q8_0', 'q4_k_m'] as const;
export const ExportFormatSchema = z.enum(exportFormats);

const Path = z.string().trim().min(1, 'a path is required');
/** Method and project settings are checked again by the engine's own schemas in the service. */
const Settings = z.record(z.string(), z.unknown());

export const ModuleInfoSchema = z.object({
  name: z.string(),
  type: z.string(),
  shape: z.array(z.number()),
  params: z.number(),
  adaptable: z.enum(['Linear', 'Conv1D', 'Embedding']).optional(),
  inFeatures: z.number().optional(),
  outFeatures: z.number().optional(),
  isOutputHead: z.boolean().optional(),
  layerIndex: z.number().optional(),
});
export type ModuleInfo = z.infer<typeof ModuleInfoSchema>;

export const ModelSummarySchema = z.object({
  dir: z.string(),
  modelType: z.string(),
  architecture: z.string(),
  task: z.enum(['causal-lm', 'seq-cls']),
  numLabels: z.number().optional(),
  vocabSize: z.number(),
  hiddenSize: z.number(),
  numLayers: z.number(),
  numParameters: z.number(),
  /** Bytes of the weight files on disk. */
  sizeBytes: z.number(),
  modules: z.array(ModuleInfoSchema),
});
export type ModelSummary = z.infer<typeof ModelSummarySchema>;

export const RunStatusSchema = z.enum([
  'pending',
  'running',
  'paused',
  'completed',
  'cancelled',
  'failed',
  'interrupted',
]);
export type RunStatus = z.infer<typeof RunStatusSchema>;

export const RunInfoSchema = z.object({
  id: z.string(),
  dir: z.string(),
  projectDir: z.string(),
  status: RunStatusSchema,
  /** True when this engine host drives the run right now (pause/cancel are possible). */
  live: z.boolean(),
  method: z.string(),
  createdAt: z.string(),
  step: z.number(),
  totalSteps: z.number(),
  epoch: z.number(),
  lastLoss: z.number().nullable(),
  lastEvalLoss: z.number().nullable(),
  lastCheckpoint: z.string().nullable(),
  backend: z.string().nullable(),
  error: z.string().nullable(),
  /** The frozen run config (project settings as the run saw them). */
  config: Settings,
  /** Set for runs not trained here (an imported PEFT adapter or run), as run.json records it. */
  origin: RunOrigin.optional(),
});
export type RunInfo = z.infer<typeof RunInfoSchema>;

export const ProjectSummarySchema = z.object({
  dir: z.string(),
  name: z.string(),
  modelDir: z.string(),
  dataPath: z.string(),
  task: z.enum(['causal-lm', 'seq-cls']),
  method: MethodNameSchema,
  methodConfig: Settings,
  /** Training settings (steps, batch size, learning rate, …) as the engine's project schema holds them. */
  training: Settings,
  /** The whole project file, for display. */
  settings: Settings,
  runs: z.array(RunInfoSchema),
});
export type ProjectSummary = z.infer<typeof ProjectSummarySchema>;

export const RecentProjectSchema = z.object({ dir: z.string(), name: z.string(), openedAt: z.string() });
export type RecentProject = z.infer<typeof RecentProjectSchema>;

export const MethodDescriptionSchema = z.object({
  name: MethodNameSchema,
  label: z.string(),
  description: z.string(),
  supportedKinds: z.array(z.string()),
  /** JSON Schema generated from the method's zod schema; the UI builds its form from it. */
  jsonSchema: z.record(z.string(), z.unknown()),
  defaults: Settings,
});
export type MethodDescription = z.infer<typeof MethodDescriptionSchema>;

export const BudgetSchema = z.object({
  method: MethodNameSchema,
  trainable: z.number(),
  frozen: z.number(),
  totalModelParams: z.number(),
  percentOfModel: z.number(),
  targets: z.array(z.string()),
  perModule: z.array(z.object({ module: z.string(), trainable: z.number(), frozen: z.number() })),
  /** Tensors shared by several modules (VeRA's A/B, TinyLoRA's tied vectors), with the modules sharing each. */
  tyingGroups: z.array(z.object({ name: z.string(), size: z.number(), modules: z.array(z.string()) })),
  fileBytes: z.record(z.string(), z.number()),
  /** Peak memory of a training step without gradient checkpointing. */
  memoryBytes: z.number(),
  memoryBreakdown: z.record(z.string(), z.number()),
  /** The same with gradient checkpointing (each block recomputed in the backward pass). */
  memoryWithCheckpointing: z.number().optional(),
  /** What this machine can allocate now, to compare against. */
  memoryAvailable: z.number().optional(),
});
export type Budget = z.infer<typeof BudgetSchema>;

export const BudgetInputSchema = z.object({
  modelDir: Path,
  method: MethodNameSchema,
  config: Settings,
  batchSize: z.number().int().positive().default(4),
  seqLen: z.number().int().positive().default(128),
  task: z.enum(['causal-lm', 'seq-cls']).optional(),
  numLabels: z.number().int().positive().optional(),
});

export const DataPreviewSchema = z.object({
  format: z.string(),
  task: z.enum(['causal-lm', 'seq-cls']),
  trainCount: z.number(),
  validationCount: z.number(),
  validationSource: z.string(),
  examples: z.array(
    z.object({
      index: z.number(),
      split: z.enum(['train', 'validation']),
      tokens: z.number(),
      truncated: z.boolean(),
      /** The example as the model sees it; `trained` is false for loss-masked (prompt) parts. */
      segments: z.array(z.object({ text: z.string(), trained: z.boolean() })),
      label: z.string().optional(),
    }),
  ),
});
export type DataPreview = z.infer<typeof DataPreviewSchema>;

export const BackendReportSchema = z.object({
  chosen: z.string(),
  reason: z.string(),
  candidates: z.array(z.object({ name: z.string(), available: z.boolean(), detail: z.string() })),
});
export type BackendReport = z.infer<typeof BackendReportSchema>;

/** One training event as recorded in metrics.jsonl. Numeric fields are optional: events differ by kind. */
export const TrainEventSchema = z
  .object({
    type: z.string(),
    step: z.number().optional(),
    epoch: z.number().optional(),
    time: z.string().optional(),
    loss: z.number().optional(),
    lr: z.number().optional(),
    gradNorm: z.number().optional(),
    tokensPerSec: z.number().optional(),
    etaSec: z.number().optional(),
    totalSteps: z.number().optional(),
    evalLoss: z.number().optional(),
    metrics: z.record(z.string(), z.number()).optional(),
    message: z.string().optional(),
  })
  .passthrough();
export type TrainEvent = z.infer<typeof TrainEventSchema>;

export const MetricsSchema = z.object({
  runDir: z.string(),
  /** Downsampled step series for charts (never more than `maxPoints` rows). */
  steps: z.array(
    z.object({
      step: z.number(),
      loss: z.number().nullable(),
      lr: z.number().nullable(),
      gradNorm: z.number().nullable(),
      tokensPerSec: z.number().nullable(),
    }),
  ),
  evals: z.array(
    z.object({
      step: z.number(),
      evalLoss: z.number().nullable(),
      metrics: z.record(z.string(), z.number()),
    }),
  ),
  totalRecorded: z.number(),
});
export type Metrics = z.infer<typeof MetricsSchema>;

export const ProgressSchema = z.object({
  step: z.number(),
  totalSteps: z.number(),
  epoch: z.number(),
  tokensPerSec: z.number().nullable(),
  etaSec: z.number().nullable(),
});
export type Progress = z.infer<typeof ProgressSchema>;

export const RunDetailSchema = z.object({
  run: RunInfoSchema,
  progress: ProgressSchema,
  metrics: MetricsSchema,
});
export type RunDetail = z.infer<typeof RunDetailSchema>;

/** Rows of cells; null where nothing was recorded. */
const Matrix = z.array(z.array(z.number().nullable()));
export const AnalysisSchema = z.object({
  runDir: z.string(),
  steps: z.array(z.number()),
  modules: z.array(z.string()),
  layers: z.array(z.number()),
  /** Heatmaps: rows = layers (or modules), columns = snapshot steps. */
  heatmaps: z.array(
    z.object({
      name: z.string(),
      /** The recorded metric (`deltaFrobenius`, `scale`, …), its label and what its colour scale measures. */
      metric: z.string(),
      label: z.string(),
      unit: z.string(),
      /** Module role the rows show (`q_proj`, …); rows are its layers, or module names outside blocks. */
      role: z.string(),
      rowAxis: z.enum(['layer', 'module']),
      rowLabels: z.array(z.string()),
      matrix: Matrix,
    }),
  ),
  /** Per-module bars at the last snapshot. */
  bars: z.array(
    z.object({
      module: z.string(),
      deltaNorm: z.number(),
      scaling: z.number().nullable(),
      trainable: z.number(),
    }),
  ),
  /** Singular values of ΔW per module at the last snapshot. */
  spectra: z.record(z.string(), z.array(z.number())),
  histograms: z.array(
    z.object({ name: z.string(), edges: z.array(z.number()), counts: z.array(z.number()) }),
  ),
  downsampled: z.boolean(),
});
export type Analysis = z.infer<typeof AnalysisSchema>;

export const RunComparisonSchema = z.object({
  runA: RunInfoSchema,
  runB: RunInfoSchema,
  /** A setting one run has and the other lacks (a newer field, a method's own) is absent on that side. */
  configDiff: z.array(z.object({ key: z.string(), a: z.unknown().optional(), b: z.unknown().optional() })),
  metricsA: MetricsSchema,
  metricsB: MetricsSchema,
  /** Per-module similarity of ΔW between the runs (cosine, subspace overlap), where both runs have analysis. */
  similarity: z.array(
    z.object({
      name: z.string(),
      rowLabels: z.array(z.string()),
      colLabels: z.array(z.string()),
      matrix: Matrix,
    }),
  ),
  deltaNorms: z.array(z.object({ module: z.string(), a: z.number().nullable(), b: z.number().nullable() })),
});
export type RunComparison = z.infer<typeof RunComparisonSchema>;

export const EigenResultSchema = z.object({
  module: z.string(),
  base: z.array(z.object({ re: z.number(), im: z.number() })),
  adapted: z.array(z.object({ re: z.number(), im: z.number() })),
});
export type EigenResult = z.infer<typeof EigenResultSchema>;

/** Distribution strategies of a training hand-off (accelerate's DDP, FSDP, DeepSpeed ZeRO-2/3). */
export const HandoffStrategySchema = z.enum(['ddp', 'fsdp', 'zero2', 'zero3']);

export const ResizeProposalSchema = z.object({
  spec: z.object({ criterion: z.enum(['sv_ratio', 'sv_fro', 'sv_cumulative', 'size']), value: z.number() }),
  modules: z.array(
    z.object({
      module: z.string(),
      rows: z.number(),
      cols: z.number(),
      rank: z.number(),
      newRank: z.number(),
      retainedFrobenius: z.number(),
      retainedEnergy: z.number(),
      retainedCumulative: z.number(),
      bytesBefore: z.number(),
      bytesAfter: z.number(),
      bytesSaved: z.number(),
    }),
  ),
  bytesBefore: z.number(),
  bytesAfter: z.number(),
  retainedEnergy: z.number(),
});
export type ResizeProposal = z.infer<typeof ResizeProposalSchema>;

export const RunResizeSchema = z.object({
  checkpoint: z.string(),
  proposal: ResizeProposalSchema,
  validation: z
    .object({ examples: z.number(), lossOriginal: z.number(), lossResized: z.number(), lossBase: z.number() })
    .nullable(),
});
export type RunResize = z.infer<typeof RunResizeSchema>;

export const ExportResultSchema = z.object({
  format: ExportFormatSchema,
  out: z.string(),
  files: z.array(z.object({ path: z.string(), bytes: z.number() })),
  bytes: z.number(),
  verification: z.object({ ok: z.boolean(), maxAbsDiff: z.number(), detail: z.string().optional() }),
  resize: ResizeProposalSchema.optional(),
});
export type ExportResult = z.infer<typeof ExportResultSchema>;

export const GenerateOptionsSchema = z.object({
  mode: z.enum(['greedy', 'sampled']).default('greedy'),
  maxNewTokens: z.number().int().min(1).max(512).default(32),
  temperature: z.number().positive().max(5).default(0.8),
  topK: z.number().int().min(0).max(1000).default(40),
  seed: z.number().int().default(0),
});

export const GenerationSchema = z.object({ text: z.string(), tokens: z.number(), ms: z.number() });
export const ClassificationSchema = z.object({
  label: z.string(),
  probabilities: z.array(z.object({ label: z.string(), p: z.number() })),
});

/** Engine-side settings of the studio itself (not of a project), kept in the config folder. */
export const StudioSettingsSchema = z.object({
  /** The project a fresh window opens when its URL names none; null after the user closed it. */
  lastProject: z.string().nullable(),
});
export type StudioSettings = z.infer<typeof StudioSettingsSchema>;

export const BrowseEntrySchema = z.object({
  name: z.string(),
  path: z.string(),
  /** A plain folder, a studio project (project.json), a model folder (config.json), a dataset file. */
  kind: z.enum(['dir', 'project', 'model', 'dataset']),
  /** A folder with a config.json: what it holds. */
  model: z.object({ architecture: z.string(), modelType: z.string(), sizeBytes: z.number() }).optional(),
  /** A .jsonl/.csv/.tsv file: its format and non-empty rows (null when too large to count while listing). */
  dataset: z.object({ format: z.string(), rows: z.number().nullable(), bytes: z.number() }).optional(),
  /** Why a model folder or dataset cannot be described (unreadable config.json, …). */
  problem: z.string().optional(),
});
export type BrowseEntry = z.infer<typeof BrowseEntrySchema>;

export const BrowseListingSchema = z.object({
  dir: z.string(),
  /** The folder above, when it is still inside an allowed root. */
  parent: z.string().nullable(),
  /** Where browsing may start: home, the projects folder, the open project's parent, the demo. */
  roots: z.array(z.object({ label: z.string(), path: z.string() })),
  entries: z.array(BrowseEntrySchema),
  /** Other files (neither folders nor datasets), and entries past the listing's limit. */
  omitted: z.number(),
});
export type BrowseListing = z.infer<typeof BrowseListingSchema>;

export const DatasetInfoSchema = z.object({
  path: z.string(),
  format: z.string(),
  task: z.enum(['causal-lm', 'seq-cls']),
  examples: z.number(),
  /** The hold-out the engine makes when no validation file is given (same seed, same counts as training). */
  split: z
    .object({ train: z.number(), validation: z.number(), fraction: z.number(), seed: z.number() })
    .nullable(),
});
export type DatasetInfo = z.infer<typeof DatasetInfoSchema>;

export const SettingGroupSchema = z.enum(['data', 'optimisation', 'schedule', 'evaluation', 'checkpoints']);
export const SettingFieldSchema = z.object({
  /** The name in project.json and the API (the CLI flag is its kebab-case form). */
  key: z.string(),
  label: z.string(),
  unit: z.string().optional(),
  help: z.string(),
  group: SettingGroupSchema,
  /** Rarely changed: folded away in the form. */
  advanced: z.boolean(),
  /** JSON Schema of the field (type, bounds, default), from the engine's zod schema. */
  schema: z.record(z.string(), z.unknown()),
});
export type SettingField = z.infer<typeof SettingFieldSchema>;

const RunRef = z.object({ runDir: Path });

function method<I extends z.ZodType, O extends z.ZodType>(input: I, output: O, summary: string) {
  return { input, output, summary };
}

/** Method name → request and response schemas. */
export const contract = {
  'app.info': method(
    z.object({}),
    z.object({
      version: z.string(),
      demoModelDir: z.string().nullable(),
      demoDataPath: z.string().nullable(),
      defaultProjectsDir: z.string(),
      platform: z.string(),
      /** Memory of this machine, for the UI's "will it fit" warnings. */
      memoryBytes: z.number(),
    }),
    'versions, demo model location and default folders',
  ),
  'backend.report': method(z.object({}), BackendReportSchema, 'the compute backend in use and why'),
  'projects.recent': method(z.object({}), z.array(RecentProjectSchema), 'recently opened projects'),
  'projects.create': method(
    z.object({
      dir: Path,
      modelDir: Path,
      dataPath: Path,
      task: z.enum(['causal-lm', 'seq-cls']).optional(),
      method: MethodNameSchema.default('lora'),
      /** Further project settings, checked by the engine's project schema. */
      settings: Settings.default({}),
    }),
    ProjectSummarySchema,
    'create a project folder',
  ),
  'projects.createDemo': method(
    z.object({ dir: Path.optional() }),
    ProjectSummarySchema,
    'a project on the bundled demo model and data',
  ),
  'projects.open': method(z.object({ dir: Path }), ProjectSummarySchema, 'open a project folder'),
  'projects.update': method(
    z.object({
      dir: Path,
      method: MethodNameSchema.optional(),
      methodConfig: Settings.optional(),
      training: Settings.optional(),
    }),
    ProjectSummarySchema,
    'change the method, its config or training settings (checked by the engine)',
  ),
  'model.inspect': method(
    z.object({ modelDir: Path }),
    ModelSummarySchema,
    'architecture, size and module tree',
  ),
  'data.preview': method(
    z.object({ projectDir: Path, count: z.number().int().min(1).max(50).default(5) }),
    DataPreviewSchema,
    'the first examples as the model sees them',
  ),
  'methods.list': method(
    z.object({}),
    z.array(MethodDescriptionSchema),
    'adapter methods and their config schemas',
  ),
  'budget.compute': method(BudgetInputSchema, BudgetSchema, 'trainable parameters, file sizes and memory'),
  'budget.compare': method(
    z.object({
      modelDir: Path,
      candidates: z
        .array(z.object({ method: MethodNameSchema, config: Settings }))
        .min(1)
        .max(10),
      task: z.enum(['causal-lm', 'seq-cls']).optional(),
      batchSize: z.number().int().positive().default(4),
      seqLen: z.number().int().positive().default(128),
    }),
    z.array(z.union([BudgetSchema, z.object({ method: MethodNameSchema, error: z.string() })])),
    'budgets of several methods on the same targets',
  ),
  'runs.start': method(
    z.object({ projectDir: Path, overrides: Settings.default({}) }),
    RunInfoSchema,
    'start a new training run',
  ),
  'runs.pause': method(RunRef, RunInfoSchema, 'pause a live run after the current step'),
  'runs.resume': method(
    RunRef,
    RunInfoSchema,
    'resume a paused run, or continue an interrupted one from its last checkpoint',
  ),
  'runs.cancel': method(RunRef, RunInfoSchema, 'stop a run (its checkpoints stay)'),
  'runs.list': method(
    z.object({ projectDir: Path }),
    z.array(RunInfoSchema),
    'runs of a project, newest first',
  ),
  'runs.delete': method(RunRef, z.object({ deleted: z.string() }), 'delete a finished run folder'),
  'runs.import': method(
    z.object({ projectDir: Path, source: Path }),
    z.object({ run: RunInfoSchema, warnings: z.array(z.string()) }),
    'bring a PEFT adapter folder into the project as a run marked imported',
  ),
  'runs.importExternal': method(
    z.object({ projectDir: Path, source: Path }),
    z.object({ run: RunInfoSchema, checkpoints: z.array(z.number().int()), warnings: z.array(z.string()) }),
    "bring a hand-off job's output folder into the project as a run trained elsewhere (curves, checkpoints)",
  ),
  'runs.status': method(
    z.object({ runDir: Path, maxPoints: z.number().int().min(10).max(5000).default(600) }),
    RunDetailSchema,
    'run state, progress and downsampled metrics',
  ),
  'analysis.get': method(
    z.object({ runDir: Path, maxSteps: z.number().int().min(2).max(500).default(60) }),
    AnalysisSchema,
    'adaptation analysis: heatmaps, bars, spectra, histograms',
  ),
  'analysis.compare': method(
    z.object({ runA: Path, runB: Path, maxPoints: z.number().int().min(10).max(5000).default(400) }),
    RunComparisonSchema,
    'two runs side by side',
  ),
  'analysis.eigen.start': method(
    z.object({ runDir: Path, module: z.string().min(1) }),
    z.object({ jobId: z.string() }),
    'eigenvalues of W0+ΔW vs W0 for one module (progress arrives as events)',
  ),
  'analysis.eigen.cancel': method(
    z.object({ jobId: z.string() }),
    z.object({ cancelled: z.boolean() }),
    'stop an eigen job',
  ),
  'export.estimate': method(
    z.object({ runDir: Path }),
    z.record(z.string(), z.number()),
    'bytes per export format, before exporting',
  ),
  'export.run': method(
    z.object({
      runDir: Path,
      format: ExportFormatSchema,
      out: Path,
      /** gguf / gguf-lora: the model file's quantisation. */
      quant: z.enum(ggufQuants).optional(),
      /** lora: `sv_fro=0.99`, `sv_ratio=…`, `sv_cumulative=…` or `size=…` (see export.resize). */
      resize: z.string().min(1).optional(),
    }),
    ExportResultSchema,
    'write an export and verify it by reloading',
  ),
  'export.resize': method(
    z.object({ runDir: Path, resize: z.string().min(1), validate: z.boolean().default(true) }),
    RunResizeSchema,
    'per-module ranks of a spectrum-driven LoRA resize, with the resized adapter’s validation loss',
  ),
  'tryit.generate': method(
    z.object({
      runDir: Path,
      prompt: z.string().min(1, 'type a prompt'),
      options: GenerateOptionsSchema.prefault({}),
    }),
    z.object({ base: GenerationSchema, adapted: GenerationSchema, checkpoint: z.string() }),
    'generate with the base model and with the adapter',
  ),
  'tryit.classify': method(
    z.object({ runDir: Path, text: z.string().min(1, 'type a text') }),
    z.object({ base: ClassificationSchema, adapted: ClassificationSchema, checkpoint: z.string() }),
    'classify with the base model and with the adapter',
  ),
  'handoff.write': method(
    z.object({ projectDir: Path, out: Path, strategy: HandoffStrategySchema.default('ddp') }),
    z.object({
      outDir: z.string(),
      strategy: HandoffStrategySchema,
      files: z.array(z.string()),
      warnings: z.array(z.string()),
    }),
    'write a folder that trains the project with accelerate + PEFT on a cluster (train.py, launchers, data)',
  ),
  'settings.get': method(
    z.object({}),
    StudioSettingsSchema,
    'settings of the studio (the last open project)',
  ),
  'settings.update': method(
    z.object({ lastProject: z.string().nullable().optional() }),
    StudioSettingsSchema,
    'change settings of the studio',
  ),
  'runs.live': method(z.object({}), z.array(RunInfoSchema), 'runs this engine drives now, of any project'),
  'files.list': method(
    z.object({ dir: Path.optional(), projectDir: Path.optional() }),
    BrowseListingSchema,
    'folders, model folders and dataset files in a folder under an allowed root',
  ),
  'files.dataset': method(
    z.object({
      path: Path,
      task: z.enum(['causal-lm', 'seq-cls']).default('causal-lm'),
      valFraction: z.number().min(0).lt(1).default(0),
      seed: z.number().int().min(0).default(0),
    }),
    DatasetInfoSchema,
    'examples of a dataset file and the validation split the engine would hold out',
  ),
  'training.describe': method(
    z.object({}),
    z.object({
      groups: z.array(z.object({ id: SettingGroupSchema, label: z.string() })),
      fields: z.array(SettingFieldSchema),
    }),
    'training settings in plain words: labels, units, help, groups',
  ),
} as const;

export type Contract = typeof contract;
export type MethodId = keyof Contract;
export type Input<M extends MethodId> = z.input<Contract[M]['input']>;
export type Output<M extends MethodId> = z.output<Contract[M]['output']>;
export const methodIds = Object.keys(contract) as MethodId[];

export function isMethodId(name: string): name is MethodId {
  return Object.hasOwn(contract, name);
}

/** Events pushed from the engine to every connected UI. */
export const StudioEventSchema = z.discriminatedUnion('type', [
  z.object({ type: z.literal('run.event'), runDir: z.string(), event: TrainEventSchema }),
  z.object({ type: z.literal('run.state'), run: RunInfoSchema }),
  z.object({
    type: z.literal('eigen.progress'),
    jobId: z.string(),
    runDir: z.string(),
    module: z.string(),
    fraction: z.number(),
    message: z.string(),
  }),
  z.object({
    type: z.literal('eigen.done'),
    jobId: z.string(),
    runDir: z.string(),
    result: EigenResultSchema,
  }),
  z.object({ type: z.literal('eigen.failed'), jobId: z.string(), runDir: z.string(), error: z.string() }),
  z.object({
    type: z.literal('host.state'),
    state: z.enum(['up', 'down', 'restarting']),
    message: z.string(),
    /** Runs that were live when the host died; the UI offers to resume them from their last checkpoint. */
    interruptedRuns: z.array(z.string()),
  }),
]);
export type StudioEvent = z.infer<typeof StudioEventSchema>;

export const ApiErrorCodeSchema = z.enum([
  'invalid_input',
  'not_found',
  'conflict',
  'engine_error',
  'host_down',
  'unauthorized',
  'out_of_memory',
  /** The file system refused (disk full, read failure). */
  'io',
]);
export type ApiErrorCode = z.infer<typeof ApiErrorCodeSchema>;

export const ApiErrorSchema = z.object({ code: ApiErrorCodeSchema, message: z.string() });

/** The wire envelope of one reply (IPC, HTTP body). */
export const ReplySchema = z.union([
  z.object({ ok: z.literal(true), result: z.unknown() }),
  z.object({ ok: z.literal(false), error: ApiErrorSchema }),
]);
export type Reply = z.infer<typeof ReplySchema>;

export class ApiError extends Error {
  constructor(
    readonly code: ApiErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

/** Formats zod issues as one line that names each offending field. */
export function describeIssues(error: z.ZodError, where: string): string {
  const parts = error.issues.map((issue) => {
    const path = issue.path.length > 0 ? issue.path.join('.') : '(payload)';
    return `${path}: ${issue.message}`;
  });
  return `${where}: ${parts.join('; ')}`;
}

export function parseInput<M extends MethodId>(id: M, payload: unknown): z.output<Contract[M]['input']> {
  const result = contract[id].input.safeParse(payload ?? {});
  if (!result.success)
    throw new ApiError('invalid_input', describeIssues(result.error, `invalid ${id} request`));
  return result.data as z.output<Contract[M]['input']>;
}

export function parseOutput<M extends MethodId>(id: M, payload: unknown): Output<M> {
  const result = contract[id].output.safeParse(payload);
  if (!result.success)
    throw new ApiError('engine_error', describeIssues(result.error, `malformed ${id} reply`));
  return result.data as Output<M>;
}

export function parseEvent(payload: unknown): StudioEvent {
  const result = StudioEventSchema.safeParse(payload);
  if (!result.success) throw new ApiError('engine_error', describeIssues(result.error, 'malformed event'));
  return result.data;
}

/** Turns a reply envelope into the result or a thrown ApiError. */
export function unwrapReply<M extends MethodId>(id: M, reply: unknown): Output<M> {
  const parsed = ReplySchema.safeParse(reply);
  if (!parsed.success)
    throw new ApiError('engine_error', describeIssues(parsed.error, `malformed ${id} reply`));
  if (!parsed.data.ok) throw new ApiError(parsed.data.error.code, parsed.data.error.message);
  return parseOutput(id, parsed.data.result);
}

/** The typed surface the renderer sees, whatever carries it (preload or HTTP/WebSocket). */
export interface StudioApi {
  call<M extends MethodId>(id: M, input: Input<M>): Promise<Output<M>>;
  onEvent(listener: (event: StudioEvent) => void): () => void;
  /** Restarts a dead engine host (no-op when it is up). */
  restartEngine(): Promise<void>;
  /** Native dialogs exist only in the desktop app. */
  desktop?: DesktopApi;
  transport: 'electron' | 'http';
}

export interface DesktopApi {
  openFolder(title: string): Promise<string | null>;
  /** A native open-file dialog showing files with these extensions (no dot). */
  openFile(title: string, extensions: string[]): Promise<string | null>;
  saveFolder(title: string, defaultPath?: string): Promise<string | null>;
  /** Tells the main process whether closing the window would stop a training run. */
  setTrainingActive(active: boolean): void;
  /** Commands from the application menu. */
  onMenu(listener: (command: MenuCommand) => void): () => void;
}

export const MenuCommandSchema = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('openProject'), dir: z.string().min(1) }),
  z.object({ kind: z.literal('openDemo') }),
  z.object({
    kind: z.literal('view'),
    view: z.enum(['project', 'adapter', 'train', 'analysis', 'runs', 'export', 'try']),
  }),
  z.object({ kind: z.literal('theme'), theme: z.enum(['light', 'dark']) }),
]);
export type MenuCommand = z.infer<typeof MenuCommandSchema>;

export const DesktopRequestSchema = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('openFolder'), title: z.string().max(200) }),
  z.object({ kind: z.literal('saveFolder'), title: z.string().max(200), defaultPath: z.string().optional() }),
  z.object({ kind: z.literal('trainingActive'), active: z.boolean() }),
  z.object({
    kind: z.literal('openFile'),
    title: z.string().max(200),
    extensions: z.array(z.string().regex(/^[a-z0-9]{1,8}$/)).max(10),
  }),
]);
