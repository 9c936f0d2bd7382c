import { describe, expect, it } from 'vitest';
import type { TrainEvent } from '../../training/index.ts';
import { metricsOf } from './runs.ts';

describe('metricsOf', () => {
  it('thins a long run by the shared rule: the loss spike a stride would drop stays in the reply', () => {
    const events: TrainEvent[] = Array.from({ length: 2000 }, (_, i) => ({
      type: 'step',
      time: '2026-01-01T00:00:00Z',
      step: i + 1,
      epoch: i / 2000,
      loss: i === 1237 ? 40 : 2 - i / 2000,
      lr: 1e-3,
      gradNorm: 1,
      tokensPerSec: 100,
      etaSec: 0,
    }));
    const metrics = metricsOf('/r', events, 200);
    expect(metrics.steps.length).toBeLessThanOrEqual(200);
    expect(metrics.totalRecorded).toBe(2000);
    expect(metrics.steps.find((r) => r.loss === 40)?.step).toBe(1238);
    expect(metrics.steps.at(-1)?.step).toBe(2000);
  });
});
