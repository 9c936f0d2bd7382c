import { buildHeatmaps, readAnalysis } from '../../analysis/store.ts';
import type { HeatmapMetric, Histogram, ModuleMetrics, TimeSeriesRow } from '../../analysis/types.ts';
import type { Analysis } from '../../common/contract.ts';
import { thinSeries } from '../../common/thinning.ts';
import type { Handlers } from './context.ts';

/** The heatmaps shown, in order: label and what the colour scale measures. */
const metricLabels: Partial<Record<HeatmapMetric, { label: string; unit: string }>> = {
  deltaFrobenius: { label: '‖ΔW‖_F', unit: 'Frobenius norm of ΔW (scale of the weights)' },
  relativeDelta: { label: '‖ΔW‖ / ‖W₀‖', unit: 'ratio to the frozen weight’s norm' },
  scale: { label: 'scaling factor', unit: 'multiplier of ΔW' },
  trainableNorm: { label: '‖trainable‖', unit: 'L2 norm of the trainable tensors' },
  scalingVectors: {
    label: '‖scaling vectors‖',
    unit: 'L2 norm of the per-feature scaling vectors (DoRA magnitude, VeRA λ, TinyLoRA v)',
  },
  effectiveRank: { label: 'effective rank of ΔW', unit: 'dimensions (entropy of the singular values)' },
};
/** Module roles shown per metric (q_proj, v_proj, …): each metric gets its own maps, whatever comes first. */
const MAX_ROLES_PER_METRIC = 6;
const MAX_HISTOGRAMS = 4;

function trainableCount(m: ModuleMetrics): number {
  return m.tensors
    .filter((t) => t.trainable && !t.shared)
    .reduce((sum, t) => sum + t.shape.reduce((a, b) => a * b, 1), 0);
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
  // snapshots carry many series at once: evenly spaced rows, by the shared rule
  const rows = thinSeries(ordered, maxSteps);
  const metrics = Object.keys(metricLabels) as HeatmapMetric[];
  const heatmaps = buildHeatmaps(rows, metrics)
    .sort((a, b) => metrics.indexOf(a.metric) - metrics.indexOf(b.metric))
    .filter((h, i, all) => all.slice(0, i).filter((o) => o.metric === h.metric).length < MAX_ROLES_PER_METRIC)
    .map((h) => {
      const { label, unit } = metricLabels[h.metric]!;
      return {
        name: `${label} · ${h.role}`,
        metric: h.metric,
        label,
        unit,
        role: h.role,
        // blocks give their index; a module outside blocks (an output head) is named
        rowAxis: h.rows.every((r) => /^\d+$/.test(r)) ? ('layer' as const) : ('module' as const),
        rowLabels: h.rows,
        matrix: h.values,
      };
    });
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
