export type ScheduleKind = 'constant' | 'linear' | 'cosine';

export interface ScheduleSettings {
  kind: ScheduleKind;
  warmupSteps: number;
  totalSteps: number;
}

/**
 * Learning-rate factor for the optimizer step that follows `completed` steps, as transformers'
 * `get_constant_schedule_with_warmup`, `get_linear_schedule_with_warmup` and `get_cosine_schedule_with_warmup`
 * (one half-cosine) compute it.
 */
export function lrFactor(s: ScheduleSettings, completed: number): number {
  const warmup = Math.max(0, s.warmupSteps);
  if (completed < warmup) return completed / Math.max(1, warmup);
  if (s.kind === 'constant') return 1;
  if (s.kind === 'linear')
    return Math.max(0, (s.totalSteps - completed) / Math.max(1, s.totalSteps - warmup));
  const progress = (completed - warmup) / Math.max(1, s.totalSteps - warmup);
  return Math.max(0, 0.5 * (1 + Math.cos(Math.PI * progress)));
}
