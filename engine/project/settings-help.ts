/**
 * Training settings in plain words: a label, a unit and a group per field of `TrainingSettings`. The help
 * text is the field's own zod description in common/project-schema.ts, so the CLI help, project.json docs and the form
 * say the same thing; the field name stays the key (it is what project.json, the API and the CLI use).
 */
import type { TrainingSettings } from '../common/project-schema.ts';

export const settingGroups = [
  { id: 'data', label: 'Data' },
  { id: 'optimisation', label: 'Optimisation' },
  { id: 'schedule', label: 'Schedule' },
  { id: 'evaluation', label: 'Evaluation' },
  { id: 'checkpoints', label: 'Checkpoints and analysis' },
] as const;
export type SettingGroup = (typeof settingGroups)[number]['id'];

export interface SettingWords {
  label: string;
  unit?: string;
  group: SettingGroup;
  /** Rarely changed: the form folds it away. */
  advanced?: boolean;
}

/** Every training field has an entry: a field added to the schema without one fails the typecheck. */
export const trainingWords: { [K in keyof TrainingSettings]-?: SettingWords } = {
  batchSize: { label: 'Batch size', unit: 'examples', group: 'data' },
  maxSeqLen: { label: 'Max sequence length', unit: 'tokens', group: 'data' },
  lossOn: { label: 'Train on', group: 'data' },
  shuffle: { label: 'Shuffle every epoch', group: 'data', advanced: true },
  seed: { label: 'Random seed', group: 'data', advanced: true },
  learningRate: { label: 'Learning rate', group: 'optimisation' },
  gradAccumSteps: { label: 'Gradient accumulation', unit: 'micro-batches', group: 'optimisation' },
  scalingLearningRate: { label: 'Learning rate of scaling factors', group: 'optimisation', advanced: true },
  weightDecay: { label: 'Weight decay', group: 'optimisation', advanced: true },
  scalingWeightDecay: { label: 'Weight decay of scaling factors', group: 'optimisation', advanced: true },
  beta1: { label: 'Adam β₁', group: 'optimisation', advanced: true },
  beta2: { label: 'Adam β₂', group: 'optimisation', advanced: true },
  eps: { label: 'Adam ε', group: 'optimisation', advanced: true },
  maxGradNorm: { label: 'Gradient clipping', unit: 'max global norm', group: 'optimisation', advanced: true },
  gradientCheckpointing: { label: 'Activation checkpointing', group: 'optimisation', advanced: true },
  maxNonFiniteSteps: {
    label: 'Non-finite steps tolerated',
    unit: 'steps in a row',
    group: 'optimisation',
    advanced: true,
  },
  epochs: { label: 'Epochs', unit: 'passes', group: 'schedule' },
  maxSteps: { label: 'Max steps', unit: 'optimizer steps', group: 'schedule' },
  schedule: { label: 'Learning-rate schedule', group: 'schedule' },
  warmupSteps: { label: 'Warmup', unit: 'steps', group: 'schedule' },
  warmupRatio: { label: 'Warmup fraction', unit: 'of all steps', group: 'schedule', advanced: true },
  evalEvery: { label: 'Evaluate every', unit: 'steps', group: 'evaluation' },
  exactMatchExamples: { label: 'Answer-scored examples', unit: 'examples', group: 'evaluation' },
  evalBatchSize: { label: 'Evaluation batch size', unit: 'examples', group: 'evaluation', advanced: true },
  maxNewTokens: { label: 'Answer length', unit: 'tokens', group: 'evaluation', advanced: true },
  earlyStoppingPatience: {
    label: 'Early-stopping patience',
    unit: 'evaluations',
    group: 'evaluation',
    advanced: true,
  },
  earlyStoppingMetric: { label: 'Early-stopping metric', group: 'evaluation', advanced: true },
  earlyStoppingMinDelta: { label: 'Early-stopping minimum gain', group: 'evaluation', advanced: true },
  checkpointEvery: { label: 'Checkpoint every', unit: 'steps', group: 'checkpoints' },
  keepCheckpoints: { label: 'Checkpoints kept', unit: 'checkpoints', group: 'checkpoints', advanced: true },
  analysisEvery: { label: 'Record analysis every', unit: 'steps', group: 'checkpoints', advanced: true },
};
