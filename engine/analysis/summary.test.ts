import { beforeAll, describe, expect, it } from 'vitest';
import { useTestBackend } from '../backends/testing.ts';
import { collectMetrics } from './metrics.ts';
import { analyzeAdapter } from './snapshot.ts';
import { formatSummary, summarize } from './summary.ts';
import { fakeModel, fakeTlora } from './testing.ts';
import { ANALYSIS_VERSION, type TimeSeriesRow } from './types.ts';

beforeAll(async () => {
  await useTestBackend();
});

describe('summarize', () => {
  it('ranks modules by ‖ΔW‖_F and learned scales by how far they moved', async () => {
    const modules = [0, 1, 2].map((i) => ({
      name: `encoder.layer.${i}.attention.self.query`,
      rows: 10,
      cols: 10,
    }));
    const model = fakeModel(modules);
    const instance = fakeTlora(model, 2, [1, 1, 1]);
    const rows: TimeSeriesRow[] = [];
    for (const [step, alphas] of [
      [10, [1, 1, 1]],
      [0, [1, 1, 1]],
      [20, [1.2, 0.5, 1.05]],
    ] as const) {
      alphas.forEach((a, i) => {
        instance.set(`${modules[i].name}.lora_scaling`, Float32Array.of(a));
      });
      const { modules: metrics, shared } = await collectMetrics(instance, model);
      rows.push({
        version: ANALYSIS_VERSION,
        kind: 'timeseries',
        step,
        trigger: 'interval',
        time: '',
        elapsedMs: 0,
        modules: metrics,
        shared,
      });
    }
    const snapshot = await analyzeAdapter(instance, model, { step: 20 });
    const summary = summarize(snapshot, rows, 2);
    const byNorm = [...snapshot.modules].sort((a, b) => b.deltaFrobenius - a.deltaFrobenius);
    expect(summary.topModules.map((m) => m.module)).toEqual(byNorm.slice(0, 2).map((m) => m.module));
    expect(summary.scaleMoves.map((s) => [s.module, s.firstStep, s.lastStep])).toEqual([
      [modules[1].name, 0, 20],
      [modules[0].name, 0, 20],
    ]);
    expect(summary.scaleMoves[0].change).toBeCloseTo(-0.5, 6);
    const text = formatSummary(summary);
    expect(text).toMatch(
      /Where the learned scaling factor moved most:\n {2}encoder\.layer\.1\.attention\.self\.query {2}α 1\.000 \(step 0\) → 0\.5000 \(step 20\)/,
    );
    expect(summarize(snapshot, []).scaleMoves).toEqual([]);
    instance.dispose();
    model.dispose();
  });
});
