import { z } from 'zod';
import { parseJsonLines } from './jsonl.ts';

const time = z.string().describe('ISO timestamp');
const step = z.number().int().nonnegative();
const metrics = z.record(z.string(), z.number());

export const RunStartedEvent = z.object({
  type: z.literal('run-started'),
  time,
  runId: z.string(),
  step,
  totalSteps: z.number().int().positive(),
  /** Set when the run continues from a checkpoint. */
  resumedFrom: step.optional(),
  method: z.string(),
  task: z.enum(['causal-lm', 'seq-cls']),
  trainableParams: z.number().int().nonnegative(),
  trainExamples: z.number().int().nonnegative(),
  validationExamples: z.number().int().nonnegative(),
  backend: z.string(),
});

export const StepEvent = z.object({
  type: z.literal('step'),
  time,
  step: step.describe('optimizer steps completed'),
  epoch: z.number().nonnegative().describe('fractional epoch'),
  loss: z.number(),
  lr: z.number(),
  gradNorm: z.number(),
  tokensPerSec: z.number().nonnegative(),
  etaSec: z.number().nonnegative(),
});

export const EvalEvent = z.object({ type: z.literal('eval'), time, step, metrics });
export const CheckpointSavedEvent = z.object({
  type: z.literal('checkpoint-saved'),
  time,
  step,
  path: z.string(),
});
export const AnalysisSavedEvent = z.object({
  type: z.literal('analysis-saved'),
  time,
  step,
  path: z.string(),
});
export const WarningEvent = z.object({
  type: z.literal('warning'),
  time,
  step: step.optional(),
  code: z.string(),
  message: z.string(),
});
export const ErrorEvent = z.object({
  type: z.literal('error'),
  time,
  step: step.optional(),
  message: z.string(),
});
export const PausedEvent = z.object({ type: z.literal('paused'), time, step });
export const ResumedEvent = z.object({
  type: z.literal('resumed'),
  time,
  step,
  /** `pause`: continued in the same process; `checkpoint`: restarted from a saved checkpoint. */
  from: z.enum(['pause', 'checkpoint']),
});
export const CancelledEvent = z.object({
  type: z.literal('cancelled'),
  time,
  step,
  checkpoint: z.string().nullable(),
});
export const FinishedEvent = z.object({
  type: z.literal('finished'),
  time,
  step,
  reason: z.enum(['max-steps', 'early-stopping']),
  metrics: metrics.optional(),
  durationSec: z.number().nonnegative(),
});

export const TrainEvent = z.discriminatedUnion('type', [
  RunStartedEvent,
  StepEvent,
  EvalEvent,
  CheckpointSavedEvent,
  AnalysisSavedEvent,
  WarningEvent,
  ErrorEvent,
  PausedEvent,
  ResumedEvent,
  CancelledEvent,
  FinishedEvent,
]);
export type TrainEvent = z.infer<typeof TrainEvent>;
export type TrainEventType = TrainEvent['type'];
export type EventOf<T extends TrainEventType> = Extract<TrainEvent, { type: T }>;

/** Builds an event with the current time (what the trainer emits). */
export function makeEvent<T extends TrainEventType>(
  type: T,
  fields: Omit<EventOf<T>, 'type' | 'time'>,
): EventOf<T> {
  return { type, time: new Date().toISOString(), ...fields } as EventOf<T>;
}

/** Parses a `metrics.jsonl` text; a bad line is an error naming the file and line. */
export function parseEventLog(text: string, file: string): TrainEvent[] {
  const lines = parseJsonLines(
    text,
    (line, reason) => new Error(`${file}:${line}: malformed event (${reason})`),
  );
  return lines.map(({ value, line }) => {
    const parsed = TrainEvent.safeParse(value);
    if (!parsed.success)
      throw new Error(`${file}:${line}: invalid event (${parsed.error.issues[0]?.message})`);
    return parsed.data;
  });
}
