import { buildHeatmaps, readAnalysis } from '../../analysis/store.ts';
import type { HeatmapMetric, Histogram, ModuleMetrics, TimeSeriesRow } from '../../analysis/types.ts';
import type { Analysis } from '../../common/contract.ts';
import { shapeSize } from '../../shape.ts';
import type { Handlers } from './context.ts';

const metricLabels: Partial<Record<HeatmapMetric, string>> = {
  deltaFrobenius: '‖ΔW‖_F',
  relativeDelta: '‖ΔW‖ / ‖W₀‖',
  scale: 'scaling factor',
  trainableNorm: '‖trainable‖',
  effectiveRank: 'effective rank of ΔW',
};
const MAX_HEATMAPS = 8;
const MAX_HISTOGRAMS = 4;

/** At most `max` evenly spaced rows, always the first and the last. */
export function thinRows<T>(rows: T[], max: number): T[] {
  if (rows.length <= max) return rows;
  const picked = new Set<number>();
  for (let i = 0; i < max; i++) picked.add(Math.round((i * (rows.length - 1)) / (max - 1)));
  return [...picked].sort((a, b) => a - b).map((i) => rows[i]);
}

function trainableCount(m: ModuleMetrics): number {
  return m.tensors.filter((t) => t.trainable && !t.shared).reduce((sum, t) => sum + shapeSize(t.shape), 0);
}

function histogramRow(name: string, h: Histogram): Analysis['histograms'][number] {
  const width = (h.max - h.min) / Math.max(1, h.counts.length);
  return { name, edges: h.counts.map((_, i) => h.min + i * width).concat(h.max), counts: h.counts };
}

/** The analysis files of a run, shaped for the charts: thinned in time, heatmaps per metric and module role. */
export async function analysisView(runDir: string, maxSteps: number): Promise<Analysis> {
  const data = await readAnalysis(runDir);
  const byStep = new Map<number, TimeSeriesRow>();
  for (const row of data.timeseries) byStep.set(row.step, row);
  const ordered = [...byStep.values()].sort((a, b) => a.step - b.step);
  const rows = thinRows(ordered, maxSteps);
  const metrics = Object.keys(metricLabels) as HeatmapMetric[];
  const heatmaps = buildHeatmaps(rows, metrics)
    .sort((a, b) => metrics.indexOf(a.metric) - metrics.indexOf(b.metric))
    .slice(0, MAX_HEATMAPS)
    .map((h) => ({ name: `${metricLabels[h.metric]} · ${h.role}`, rowLabels: h.rows, matrix: h.values }));
  const last = ordered.at(-1);
  const modules = last?.modules ?? [];
  const histograms: Analysis['histograms'] = [];
  const snapshot = data.latestSnapshot;
  if (snapshot && snapshot.modules.length > 0) {
    const top = [...snapshot.modules].sort((a, b) => b.deltaFrobenius - a.deltaFrobenius)[0];
    histograms.push(histogramRow(`ΔW entries · ${top.module}`, top.histograms.delta));
    for (const [name, h] of Object.entries(top.histograms.tensors))
      histograms.push(histogramRow(`${name} · ${top.module}`, h));
    for (const s of snapshot.shared) histograms.push(histogramRow(`${s.name} (shared)`, s.histogram));
  }
  return {
    runDir,
    steps: rows.map((r) => r.step),
    modules: modules.map((m) => m.module),
    layers: [...new Set(modules.map((m) => m.layerIndex).filter((i): i is number => i !== null))].sort(
      (a, b) => a - b,
    ),
    heatmaps,
    bars: modules.map((m) => ({
      module: m.module,
      deltaNorm: m.deltaFrobenius,
      scaling: m.scaling.scale,
      trainable: trainableCount(m),
    })),
    spectra: Object.fromEntries(modules.map((m) => [m.module, m.spectrum.singularValues])),
    histograms: histograms.slice(0, MAX_HISTOGRAMS),
    downsampled: rows.length < ordered.length,
  };
}

export const analysisHandlers: Pick<Handlers, 'analysis.get'> = {
  async 'analysis.get'({ runDir, maxSteps }) {
    return analysisView(runDir, maxSteps);
  },
};
