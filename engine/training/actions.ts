import type { TrainingSettings } from '../common/project-schema.ts';

/** What a run does after an optimizer step besides logging it (every completed step is logged). */
export interface DueActions {
  /** Score the validation data. */
  eval: boolean;
  /** Record adapter analysis; a checkpoint records its own, so this is only set between checkpoints. */
  analysis: boolean;
  /** Save a checkpoint. */
  checkpoint: boolean;
}

export type ActionSettings = Pick<TrainingSettings, 'evalEvery' | 'analysisEvery' | 'checkpointEvery'>;

/**
 * The schedule of a run: after optimizer step `step` of `totalSteps`, evaluation, analysis and checkpoints are
 * due every `evalEvery`, `analysisEvery` and `checkpointEvery` steps (0: never in between), and the last step
 * always evaluates and checkpoints.
 */
export function dueActions(step: number, settings: ActionSettings, totalSteps: number): DueActions {
  const every = (n: number) => n > 0 && step % n === 0;
  const last = step >= totalSteps;
  const checkpoint = last || every(settings.checkpointEvery);
  return {
    eval: last || every(settings.evalEvery),
    analysis: !checkpoint && every(settings.analysisEvery),
    checkpoint,
  };
}
