export * from '../common/train-events.ts';
export { type EvalRunOptions, type EvalRunResult, evaluateRun } from './eval-run.ts';
export {
  choiceAccuracy,
  type EvaluateOptions,
  evaluateExamples,
  type Generator,
  greedyGenerator,
} from './evaluate.ts';
export { causalLmLossSum, classificationLossSum } from './loss.ts';
export { accuracy, binaryF1, exactMatch, normalizeAnswer } from './metrics.ts';
export {
  AdamW,
  type AdamWOptions,
  clipFactor,
  type GroupSettings,
  gradSquaredSum,
  type ParamGroup,
} from './optimizer.ts';
export {
  type RecorderFactory,
  type ResumeOptions,
  type RunHandle,
  type RunOptions,
  type RunRecorder,
  type RunSummary,
  resumeRun,
  startRun,
} from './run.ts';
export { lrFactor, type ScheduleKind, type ScheduleSettings } from './schedule.ts';
export { type StepResult, Trainer, type TrainerSetup, type TrainerState, totalStepsFor } from './trainer.ts';
