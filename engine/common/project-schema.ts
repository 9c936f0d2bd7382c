import { z } from 'zod';
import { METHOD_NAMES } from './method-names.ts';

export const PROJECT_SCHEMA_VERSION = 1;
export const PROJECT_FILE = 'project.json';

/** Every training option; CLI flags (`--learning-rate`), project.json `training` and API overrides share it. */
export const TrainingSettings = z
  .object({
    epochs: z
      .number()
      .int()
      .positive()
      .default(3)
      .describe('passes over the training data (when maxSteps is unset)'),
    maxSteps: z.number().int().positive().optional().describe('optimizer steps to train (overrides epochs)'),
    batchSize: z.number().int().positive().default(8).describe('examples per micro-batch'),
    gradAccumSteps: z
      .number()
      .int()
      .positive()
      .default(1)
      .describe('micro-batches accumulated per optimizer step'),
    maxSeqLen: z
      .number()
      .int()
      .min(2)
      .default(256)
      .describe('tokens per example; longer examples are truncated'),
    learningRate: z
      .number()
      .positive()
      .default(2e-4)
      .describe('peak learning rate of the adapter parameters'),
    scalingLearningRate: z
      .number()
      .positive()
      .optional()
      .describe('learning rate of scaling factors (parameter group "scaling"); defaults to learningRate'),
    weightDecay: z
      .number()
      .min(0)
      .default(0)
      .describe('decoupled (AdamW) weight decay of adapter parameters'),
    scalingWeightDecay: z.number().min(0).default(0).describe('weight decay of scaling factors'),
    beta1: z.number().min(0).lt(1).default(0.9).describe('AdamW β1'),
    beta2: z.number().min(0).lt(1).default(0.999).describe('AdamW β2'),
    eps: z.number().positive().default(1e-8).describe('AdamW ε'),
    schedule: z
      .enum(['constant', 'linear', 'cosine'])
      .default('linear')
      .describe('learning-rate schedule after warmup'),
    warmupSteps: z
      .number()
      .int()
      .min(0)
      .default(0)
      .describe('linear warmup steps (wins over warmupRatio when > 0)'),
    warmupRatio: z.number().min(0).max(1).default(0).describe('warmup as a fraction of the total steps'),
    maxGradNorm: z.number().min(0).default(1).describe('global gradient-norm clipping (0 disables)'),
    gradientCheckpointing: z
      .enum(['auto', 'on', 'off'])
      .default('auto')
      .describe(
        'keep only each transformer block’s input for the backward pass and recompute the block there (about a third more compute, far less memory); auto turns it on when the run would not fit otherwise',
      ),
    seed: z
      .number()
      .int()
      .min(0)
      .default(0)
      .describe('seed of initialisation, data order, split and dropout'),
    shuffle: z.boolean().default(true).describe('shuffle the training data every epoch'),
    lossOn: z
      .enum(['completion', 'all'])
      .default('completion')
      .describe('causal LM: train on completion/assistant tokens only, or on every token'),
    evalEvery: z.number().int().min(0).default(0).describe('evaluate every N steps (0: only at the end)'),
    evalBatchSize: z
      .number()
      .int()
      .positive()
      .optional()
      .describe('evaluation batch size (defaults to batchSize)'),
    exactMatchExamples: z
      .number()
      .int()
      .min(0)
      .default(8)
      .describe(
        'causal LM: validation examples with answers scored by greedy exact match and, when the answers form a closed set, by multiple-choice ranking (0 disables)',
      ),
    maxNewTokens: z.number().int().positive().default(32).describe('token limit of exact-match generations'),
    earlyStoppingPatience: z
      .number()
      .int()
      .min(0)
      .default(0)
      .describe('stop after N evaluations without improvement (0 disables)'),
    earlyStoppingMetric: z
      .string()
      .default('loss')
      .describe('metric watched by early stopping (loss/perplexity: lower is better)'),
    earlyStoppingMinDelta: z
      .number()
      .min(0)
      .default(0)
      .describe('smallest change that counts as an improvement'),
    maxNonFiniteSteps: z
      .number()
      .int()
      .positive()
      .default(5)
      .describe('stop after this many consecutive steps skipped for a non-finite loss or gradient'),
    checkpointEvery: z
      .number()
      .int()
      .min(0)
      .default(50)
      .describe('save a checkpoint every N steps (0: only at the end)'),
    keepCheckpoints: z
      .number()
      .int()
      .positive()
      .default(3)
      .describe('checkpoints kept (oldest deleted first)'),
    analysisEvery: z
      .number()
      .int()
      .min(0)
      .default(0)
      .describe('record adapter analysis every N steps (0: at checkpoints only)'),
  })
  .strict();
export type TrainingSettings = z.infer<typeof TrainingSettings>;
export type TrainingSettingsInput = z.input<typeof TrainingSettings>;

export const DataSettings = z
  .object({
    train: z.string().min(1).describe('training file (.jsonl, .csv, .tsv), relative to the project'),
    validation: z.string().min(1).optional().describe('validation file, relative to the project'),
    valFraction: z
      .number()
      .min(0)
      .lt(1)
      .default(0)
      .describe('fraction of the training file held out for validation when no validation file is given'),
    format: z.enum(['jsonl', 'csv', 'tsv']).optional().describe('file format (default: from the extension)'),
    labels: z.array(z.string()).min(2).optional().describe('classification label names in id order'),
  })
  .strict()
  .refine((d) => !(d.validation && d.valFraction > 0), {
    message: 'give either a validation file or a validation fraction, not both',
  });
export type DataSettings = z.infer<typeof DataSettings>;

export const TaskKindSchema = z.enum(['causal-lm', 'seq-cls']);
export type TaskKind = z.infer<typeof TaskKindSchema>;

/**
 * Where a run not trained here came from (run.json `origin`): an imported PEFT adapter, or a run trained
 * elsewhere (a hand-off job brought back by `studio import-run`, with the host, strategy and process count
 * its handoff-run.json names).
 */
export const RunOrigin = z.object({
  kind: z.enum(['imported-adapter', 'imported-run']),
  source: z.string(),
  /** One line for display: `host (2 × cpu, ddp)`. */
  where: z.string().optional(),
  host: z.string().optional(),
  strategy: z.string().optional(),
  processes: z.number().int().positive().optional(),
  importedAt: z.string(),
});
export type RunOrigin = z.infer<typeof RunOrigin>;

export const MethodSettings = z
  .object({
    name: z.enum(METHOD_NAMES),
    config: z.record(z.string(), z.unknown()).default({}),
  })
  .strict();

export const ProjectSettings = z
  .object({
    schemaVersion: z.literal(PROJECT_SCHEMA_VERSION),
    name: z.string().min(1),
    model: z
      .string()
      .min(1)
      .describe('model folder (config.json, safetensors, tokenizer.json), relative to the project'),
    task: TaskKindSchema,
    data: DataSettings,
    method: MethodSettings,
    training: TrainingSettings.default(TrainingSettings.parse({})),
    backend: z
      .string()
      .regex(
        /^(auto|cuda|webgpu|native|wasm|cpu|(native|wasm):[a-z-]+)$/,
        'backend must be auto, cuda, webgpu, native, wasm, cpu, native:<matmul route> or wasm:<matmul route>',
      )
      .default('auto')
      .describe('compute backend (auto, cuda, webgpu, native, wasm, cpu)'),
  })
  .strict();
export type ProjectSettings = z.infer<typeof ProjectSettings>;
export type ProjectSettingsInput = z.input<typeof ProjectSettings>;

/** The first issue of a zod error as `path: message`, for one-line CLI errors. */
export function describeIssues(error: z.ZodError): string {
  return error.issues.map((i) => `${i.path.length ? i.path.join('.') : '(root)'}: ${i.message}`).join('; ');
}
