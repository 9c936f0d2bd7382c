export * from '../common/train-events.ts';
export {
  ADAPTER_FILE,
  type CheckpointContents,
  type CheckpointState,
  checkpointDir,
  listCheckpoints,
  loadCheckpoint,
  OPTIMIZER_FILE,
  readCheckpointState,
  readTensors,
  STATE_FILE,
  saveCheckpoint,
} from './checkpoint.ts';
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
  globalNorm,
  type ParamGroup,
} from './optimizer.ts';
export {
  loadRunAdapter,
  locateCheckpoint,
  type ResumeOptions,
  type RunAdapter,
  type RunHandle,
  type RunOptions,
  type RunSummary,
  readRunEvents,
  resumeRun,
  startRun,
} from './run.ts';
export { lrFactor, type ScheduleKind, type ScheduleSettings } from './schedule.ts';
export { type StepResult, Trainer, type TrainerSetup, type TrainerState, totalStepsFor } from './trainer.ts';
