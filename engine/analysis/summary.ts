import type { Comparison, EigenResult, ModuleMetrics, Snapshot, TimeSeriesRow } from './types.ts';

export interface ScaleMove {
  module: string;
  first: number;
  last: number;
  firstStep: number;
  lastStep: number;
  change: number;
}

export interface AnalysisSummary {
  step: number | null;
  method: string;
  trainable: number;
  modelParameters: number;
  /** Modules by ‖ΔW‖_F, largest first. */
  topModules: {
    module: string;
    deltaFrobenius: number;
    relativeDelta: number;
    effectiveRank: number | null;
  }[];
  /** Modules whose learned scale moved most over the recorded steps (empty without a learned scale). */
  scaleMoves: ScaleMove[];
}

/** Learned scales move; fixed ones (LoRA's α/r) do not, so only `learned` counts here. */
function learnedScale(m: ModuleMetrics): number | null {
  return m.scaling.kind === 'learned' ? m.scaling.scale : null;
}

/**
 * The short summary: top modules by ‖ΔW‖_F in the snapshot, and where the learned scaling factor moved most
 * between the first and the last step of the recorded time series (no series, no moves: the initial value
 * is not assumed).
 */
export function summarize(snapshot: Snapshot, timeseries: TimeSeriesRow[], top = 5): AnalysisSummary {
  const topModules = [...snapshot.modules]
    .sort((a, b) => b.deltaFrobenius - a.deltaFrobenius)
    .slice(0, top)
    .map((m) => ({
      module: m.module,
      deltaFrobenius: m.deltaFrobenius,
      relativeDelta: m.relativeDelta,
      effectiveRank: m.spectrum.source === 'none' ? null : m.spectrum.effectiveRank,
    }));
  const rows = [...timeseries].sort((a, b) => a.step - b.step);
  const first = new Map<string, { value: number; step: number }>();
  const last = new Map<string, { value: number; step: number }>();
  for (const r of rows) {
    for (const m of r.modules) {
      const v = learnedScale(m);
      if (v === null) continue;
      if (!first.has(m.module)) first.set(m.module, { value: v, step: r.step });
      last.set(m.module, { value: v, step: r.step });
    }
  }
  const scaleMoves = [...first]
    .map(([module, f]) => {
      const l = last.get(module)!;
      return {
        module,
        first: f.value,
        last: l.value,
        firstStep: f.step,
        lastStep: l.step,
        change: l.value - f.value,
      };
    })
    .filter((m) => m.lastStep > m.firstStep)
    .sort((a, b) => Math.abs(b.change) - Math.abs(a.change))
    .slice(0, top);
  return {
    step: snapshot.step,
    method: snapshot.method,
    trainable: snapshot.budget.trainable,
    modelParameters: snapshot.budget.modelParameters,
    topModules,
    scaleMoves,
  };
}

function fmt(x: number): string {
  if (x === 0) return '0';
  const a = Math.abs(x);
  return a >= 1e4 || a < 1e-3 ? x.toExponential(3) : x.toPrecision(4);
}

/** Plain-text rendering of the summary (and of a comparison and eigenvalue results when present). */
export function formatSummary(
  summary: AnalysisSummary,
  extra: { comparison?: Comparison; eigen?: EigenResult[]; module?: ModuleMetrics } = {},
): string {
  const lines: string[] = [];
  const pct = summary.modelParameters ? (100 * summary.trainable) / summary.modelParameters : 0;
  lines.push(
    `${summary.method} adapter${summary.step === null ? '' : ` at step ${summary.step}`}: ${summary.trainable.toLocaleString('en-US')} trainable parameters (${pct.toPrecision(3)}% of ${summary.modelParameters.toLocaleString('en-US')})`,
  );
  lines.push('', 'Top modules by ‖ΔW‖_F:');
  for (const m of summary.topModules) {
    const er = m.effectiveRank === null ? '' : `  effective rank ${m.effectiveRank.toFixed(2)}`;
    lines.push(`  ${m.module}  ‖ΔW‖_F ${fmt(m.deltaFrobenius)}  ‖ΔW‖/‖W0‖ ${fmt(m.relativeDelta)}${er}`);
  }
  if (summary.scaleMoves.length > 0) {
    lines.push('', 'Where the learned scaling factor moved most:');
    for (const s of summary.scaleMoves) {
      lines.push(
        `  ${s.module}  α ${fmt(s.first)} (step ${s.firstStep}) → ${fmt(s.last)} (step ${s.lastStep})  Δ ${fmt(s.change)}`,
      );
    }
  } else {
    lines.push('', 'Scaling factors: none learned, or no time series recorded yet.');
  }
  const m = extra.module;
  if (m) {
    lines.push('', `Module ${m.module} (${m.rows} × ${m.cols}):`);
    lines.push(
      `  ‖ΔW‖_F ${fmt(m.deltaFrobenius)}  ‖ΔW‖_2 ${m.deltaSpectral === null ? 'n/a' : fmt(m.deltaSpectral)}  ‖W0‖_F ${fmt(m.baseFrobenius)}`,
    );
    lines.push(
      `  scaling: ${m.scaling.scale === null ? m.scaling.formula : `${fmt(m.scaling.scale)} (${m.scaling.formula})`}`,
    );
    for (const v of m.scaling.vectors) {
      lines.push(`  ${v.name}: mean ${fmt(v.mean)} std ${fmt(v.std)} min ${fmt(v.min)} max ${fmt(v.max)}`);
    }
    const sv = m.spectrum.singularValues.slice(0, 8).map(fmt).join(', ');
    lines.push(
      `  spectrum (${m.spectrum.source}): ${sv || 'n/a'}${m.spectrum.note ? `  [${m.spectrum.note}]` : ''}`,
    );
    for (const t of m.tensors) {
      lines.push(
        `  ${t.name} [${t.shape.join('×')}]${t.trainable ? '' : ' frozen'}: ‖·‖_F ${fmt(t.frobenius)}  ‖·‖_2 ${t.spectral === null ? 'n/a' : fmt(t.spectral)}`,
      );
    }
  }
  const c = extra.comparison;
  if (c) {
    lines.push(
      '',
      `Comparison with ${c.b.dir} (${c.b.method}, ${c.b.trainable.toLocaleString('en-US')} trainable):`,
    );
    for (const mc of c.modules.slice(0, 10)) {
      const sub = mc.subspace
        ? `  subspace similarity ${mc.subspace.left.similarity.toFixed(3)} (k=${mc.subspace.left.k})`
        : '';
      lines.push(
        `  ${mc.module}  cos(ΔW) ${mc.cosineDelta === null ? 'n/a' : mc.cosineDelta.toFixed(4)}  cos(W0+ΔW) ${mc.cosineAdapted.toFixed(6)}  ‖ΔWa−ΔWb‖_F ${fmt(mc.differenceFrobenius)}${sub}`,
      );
    }
    if (c.modules.length > 10) lines.push(`  … ${c.modules.length - 10} more modules`);
    lines.push(
      `  budget: ${c.budget.a.toLocaleString('en-US')} vs ${c.budget.b.toLocaleString('en-US')} trainable; full fine-tuning ${c.budget.fullFineTuning.toLocaleString('en-US')}`,
    );
  }
  for (const e of extra.eigen ?? []) {
    lines.push(
      '',
      `Eigenvalues of ${e.which === 'base' ? 'W0' : 'W0 + ΔW'} at ${e.module} (n = ${e.n}, ${e.seconds.toFixed(1)} s): spectral radius ${fmt(e.summary.spectralRadius)}, Re ≥ 0: ${e.summary.positiveReal}, Re < 0: ${e.summary.negativeReal}, complex: ${e.summary.complex}`,
    );
  }
  return lines.join('\n');
}
