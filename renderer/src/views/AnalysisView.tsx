import { useEffect, useMemo, useState } from 'react';
import {
  CartesianGrid,
  Legend,
  ResponsiveContainer,
  Scatter,
  ScatterChart,
  Tooltip,
  XAxis,
  YAxis,
  ZAxis,
} from 'recharts';
import type { Analysis, RunComparison, RunInfo } from '../../../engine/common/contract.ts';
import { ChartCard } from '../components/ChartCard.tsx';
import { BarsChart, CurveChart } from '../components/charts.tsx';
import { Card, Empty, ErrorNote, ProgressBar, RunPicker } from '../components/common.tsx';
import { Heatmap } from '../components/heatmap.tsx';
import { useStudio } from '../context.ts';
import { formatNumber } from '../lib/format.ts';

/** Short module labels for axes: the last three name parts. */
export function shortName(name: string): string {
  const parts = name.split('.');
  return parts.length <= 3 ? name : parts.slice(-3).join('.');
}

function Eigen({ runDir, modules }: { runDir: string; modules: string[] }) {
  const jobs = useStudio((s) => s.eigenJobs);
  const startEigen = useStudio((s) => s.startEigen);
  const cancelEigen = useStudio((s) => s.cancelEigen);
  const [module, setModule] = useState(modules[0] ?? '');
  const job = Object.values(jobs)
    .filter((j) => j.runDir === runDir && j.module === module)
    .pop();
  const running = job && !job.result && !job.error;
  return (
    <Card title="Eigenvalues of W₀ + ΔW vs W₀" testId="eigen-card">
      <div className="row">
        <label className="inline-field">
          <span>Module</span>
          <select value={module} onChange={(e) => setModule(e.target.value)}>
            {modules.map((m) => (
              <option key={m} value={m}>
                {m}
              </option>
            ))}
          </select>
        </label>
        {running ? (
          <button type="button" onClick={() => void cancelEigen(job.jobId)}>
            Cancel
          </button>
        ) : (
          <button type="button" onClick={() => void startEigen(runDir, module)} disabled={!module}>
            Compute
          </button>
        )}
      </div>
      <ErrorNote area="eigen" />
      {job && running && (
        <div className="eigen-progress">
          <ProgressBar fraction={job.fraction} label="eigenvalue computation" />
          <span className="small muted">{job.message}</span>
        </div>
      )}
      {job?.error && <div className="error-note">{job.error}</div>}
      {job?.result ? (
        <ResponsiveContainer width="100%" height={260}>
          <ScatterChart margin={{ top: 8, right: 12, bottom: 8, left: 0 }}>
            <CartesianGrid stroke="var(--grid)" strokeDasharray="3 3" />
            <XAxis
              type="number"
              dataKey="re"
              name="Re"
              tick={{ fontSize: 11, fill: 'var(--muted)' }}
              tickFormatter={(v: number) => formatNumber(v, 2)}
            />
            <YAxis
              type="number"
              dataKey="im"
              name="Im"
              tick={{ fontSize: 11, fill: 'var(--muted)' }}
              width={50}
              tickFormatter={(v: number) => formatNumber(v, 2)}
            />
            <ZAxis range={[18, 18]} />
            <Tooltip formatter={(v) => (typeof v === 'number' ? formatNumber(v) : String(v))} />
            <Legend wrapperStyle={{ fontSize: 12 }} />
            <Scatter name="W₀" data={job.result.base} fill="var(--c4)" isAnimationActive={false} />
            <Scatter name="W₀ + ΔW" data={job.result.adapted} fill="var(--c1)" isAnimationActive={false} />
          </ScatterChart>
        </ResponsiveContainer>
      ) : (
        !running && (
          <p className="muted small">Square weights only; computed on request in the engine process.</p>
        )
      )}
    </Card>
  );
}

export function SimilarityMaps({ comparison }: { comparison: RunComparison }) {
  if (comparison.similarity.length === 0) {
    return (
      <p className="muted small">
        No analysis snapshots in one of the runs: nothing to compare inside the adapters.
      </p>
    );
  }
  return (
    <div className="grid-2">
      {comparison.similarity.map((map) => (
        <ChartCard key={map.name} title={map.name} testId={`similarity-${map.name}`}>
          {(detail) => (
            <Heatmap
              title={map.name}
              rowLabels={map.rowLabels.map(shortName)}
              colLabels={map.colLabels.map(shortName)}
              matrix={map.matrix}
              rowAxis={comparison.runA.id}
              colAxis={comparison.runB.id}
              unit="similarity (1 = same direction)"
              cellHeight={detail ? 26 : 18}
              allColumnLabels={detail}
            />
          )}
        </ChartCard>
      ))}
    </div>
  );
}

type Bars = Parameters<typeof BarsChart>[0]['rows'];

/** One per-module metric of the last snapshot as a bar chart card. */
function ModuleBars(props: {
  rows: Bars;
  title: string;
  metric: string;
  name: string;
  color: string;
  testId: string;
}) {
  return (
    <ChartCard title={props.title} testId={props.testId}>
      {(detail) => (
        <BarsChart
          title={props.title}
          rows={props.rows}
          bars={[{ key: props.metric, name: props.name, color: props.color }]}
          height={detail ? 460 : 220}
        />
      )}
    </ChartCard>
  );
}

/** The heatmaps of the given metrics: one card each, rows are layers, columns snapshot steps. */
function Heatmaps({ analysis, metrics }: { analysis: Analysis; metrics: string[] }) {
  const maps = analysis.heatmaps.filter((h) => metrics.includes(h.metric));
  if (maps.length === 0) return null;
  return (
    <div className="grid-2">
      {maps.map((h) => (
        <ChartCard key={h.name} title={h.name} testId={`heatmap-${h.name}`}>
          {(detail) => (
            <Heatmap
              title={h.name}
              rowLabels={h.rowLabels}
              colLabels={analysis.steps.map(String)}
              matrix={h.matrix}
              rowAxis={h.rowAxis}
              colAxis="step"
              unit={h.unit}
              cellHeight={detail ? 30 : 18}
              allColumnLabels={detail && analysis.steps.length <= 40}
            />
          )}
        </ChartCard>
      ))}
    </div>
  );
}

export const analysisSections = [
  { id: 'norms', title: 'Norms' },
  { id: 'scaling', title: 'Scaling factors' },
  { id: 'spectra', title: 'Spectra' },
  { id: 'eigen', title: 'Eigenvalues' },
  { id: 'distributions', title: 'Distributions' },
  { id: 'comparison', title: 'Comparison' },
] as const;

function Spectrum({ analysis }: { analysis: Analysis }) {
  const [module, setModule] = useState(analysis.modules[0] ?? '');
  const rows = useMemo(
    () => (analysis.spectra[module] ?? []).map((s, i) => ({ step: i + 1, sigma: s })),
    [analysis, module],
  );
  const title = `σᵢ of ΔW · ${shortName(module)}`;
  return (
    <div className="stack">
      <label className="inline-field">
        <span>Module</span>
        <select
          aria-label="module for the spectrum"
          value={module}
          onChange={(e) => setModule(e.target.value)}
        >
          {analysis.modules.map((m) => (
            <option key={m} value={m}>
              {m}
            </option>
          ))}
        </select>
      </label>
      <ChartCard title={title} testId="spectrum-card">
        {(detail) => (
          <CurveChart
            title={`${title} (index i →)`}
            rows={rows}
            series={[{ key: 'sigma', name: 'σ', color: 'var(--c1)' }]}
            logToggle
            height={detail ? 460 : 220}
            testId={detail ? undefined : 'spectrum'}
          />
        )}
      </ChartCard>
    </div>
  );
}

function Section({
  id,
  analysis,
  runDir,
  others,
}: {
  id: string;
  analysis: Analysis | undefined;
  runDir: string;
  others: RunInfo[];
}) {
  const bars: Bars = (analysis?.bars ?? []).map((b) => ({
    label: shortName(b.module),
    full: b.module,
    deltaNorm: b.deltaNorm,
    scaling: b.scaling,
    trainable: b.trainable,
  }));
  if (id === 'comparison') return <CompareRuns runDir={runDir} others={others} />;
  if (id === 'eigen') return <Eigen runDir={runDir} modules={analysis?.modules ?? []} />;
  if (!analysis) return null;
  if (id === 'norms')
    return (
      <>
        <Heatmaps analysis={analysis} metrics={['deltaFrobenius', 'relativeDelta', 'trainableNorm']} />
        <div className="grid-2">
          <ModuleBars
            rows={bars}
            title="‖ΔW‖_F per module (last snapshot)"
            metric="deltaNorm"
            name="‖ΔW‖"
            color="var(--c1)"
            testId="bars-delta"
          />
          <ModuleBars
            rows={bars}
            title="Trainable parameters per module"
            metric="trainable"
            name="trainable"
            color="var(--c2)"
            testId="bars-trainable"
          />
        </div>
      </>
    );
  if (id === 'scaling') {
    const scaled = bars.some((b) => b.scaling !== null);
    const vectors = analysis.heatmaps.some((h) => h.metric === 'scalingVectors');
    return scaled || vectors ? (
      <>
        <Heatmaps analysis={analysis} metrics={['scale', 'scalingVectors']} />
        <ModuleBars
          rows={bars}
          title="Scaling factor per module (last snapshot)"
          metric="scaling"
          name="scaling"
          color="var(--c3)"
          testId="bars-scaling"
        />
      </>
    ) : (
      <Empty title="No trained scaling factor">
        This method scales ΔW by a constant (LoRA: α / r), so there is nothing to follow over the run.
      </Empty>
    );
  }
  if (id === 'spectra')
    return (
      <>
        <Heatmaps analysis={analysis} metrics={['effectiveRank']} />
        <Spectrum analysis={analysis} />
      </>
    );
  return analysis.histograms.length > 0 ? (
    <div className="grid-2">
      {analysis.histograms.map((h) => (
        <ChartCard key={h.name} title={h.name} testId={`histogram-${h.name}`}>
          {(detail) => (
            <BarsChart
              title={`${h.name} (value → count)`}
              height={detail ? 460 : 200}
              rows={h.counts.map((c, i) => ({
                label: formatNumber((h.edges[i] + h.edges[i + 1]) / 2, 2),
                count: c,
              }))}
              bars={[{ key: 'count', name: 'count', color: 'var(--c5)' }]}
            />
          )}
        </ChartCard>
      ))}
    </div>
  ) : (
    <Empty title="No distributions yet">They are recorded with the analysis snapshots at checkpoints.</Empty>
  );
}

function CompareRuns({ runDir, others }: { runDir: string; others: RunInfo[] }) {
  const comparison = useStudio((s) => s.runComparison);
  const compareRuns = useStudio((s) => s.compareRuns);
  const [other, setOther] = useState('');
  return (
    <Card
      title="Compare with another run"
      actions={
        <form
          className="row"
          onSubmit={(e) => {
            e.preventDefault();
            if (other) void compareRuns(runDir, other);
          }}
        >
          <select aria-label="run to compare with" value={other} onChange={(e) => setOther(e.target.value)}>
            <option value="">choose a run</option>
            {others.map((r) => (
              <option key={r.dir} value={r.dir}>
                {r.id} · {r.method}
              </option>
            ))}
          </select>
          <button type="submit" disabled={!other}>
            Compare
          </button>
        </form>
      }
    >
      <ErrorNote area="compare-runs" />
      {comparison && comparison.runA.dir === runDir ? (
        <SimilarityMaps comparison={comparison} />
      ) : (
        <p className="muted small">Cosine similarity and subspace overlap of ΔW, module by module.</p>
      )}
    </Card>
  );
}

export function AnalysisView() {
  const selected = useStudio((s) => s.selectedRun);
  const runs = useStudio((s) => s.runs);
  const analysis = useStudio((s) => (s.selectedRun ? s.analysis[s.selectedRun] : undefined));
  const loadAnalysis = useStudio((s) => s.loadAnalysis);
  const busy = useStudio((s) => s.busy.analysis);
  const section = useStudio((s) => s.analysisSection);
  const setSection = useStudio((s) => s.setAnalysisSection);
  useEffect(() => {
    if (selected) void loadAnalysis(selected);
  }, [selected, loadAnalysis]);
  if (!selected) {
    return (
      <div className="view">
        <header className="view-head">
          <h1>Analysis</h1>
        </header>
        <Empty title="No run yet">
          Train a run: per-layer norms, scaling factors and spectra of its adapter appear here.
        </Empty>
      </div>
    );
  }
  const current = analysisSections.find((s) => s.id === section) ?? analysisSections[0];
  return (
    <div className="view">
      <header className="view-head">
        <h1>Analysis</h1>
        <div className="head-actions">
          <RunPicker />
          <button type="button" onClick={() => void loadAnalysis(selected)} disabled={busy}>
            {busy ? 'Loading…' : 'Refresh'}
          </button>
        </div>
      </header>
      <div className="section-tabs" role="tablist" aria-label="analysis sections">
        {analysisSections.map((s) => (
          <button
            key={s.id}
            type="button"
            role="tab"
            aria-selected={s.id === current.id}
            className={s.id === current.id ? 'tab on' : 'tab'}
            onClick={() => setSection(s.id)}
            data-testid={`section-${s.id}`}
          >
            {s.title}
          </button>
        ))}
      </div>
      <ErrorNote area="analysis" />
      {analysis?.downsampled && (
        <p className="muted small">
          Long run: snapshots are thinned to {analysis.steps.length} steps for display.
        </p>
      )}
      <section role="tabpanel" aria-label={current.title} className="section-body" data-section={current.id}>
        {!analysis && current.id !== 'comparison' && current.id !== 'eigen' ? (
          <Empty title={busy ? 'Reading the analysis…' : 'No analysis'} />
        ) : (
          <Section
            id={current.id}
            analysis={analysis}
            runDir={selected}
            others={runs.filter((r) => r.dir !== selected)}
          />
        )}
      </section>
    </div>
  );
}
