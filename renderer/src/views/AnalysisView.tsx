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
import type { Analysis, RunComparison } from '../../../engine/common/contract.ts';
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
        <Heatmap
          key={map.name}
          title={map.name}
          rowLabels={map.rowLabels.map(shortName)}
          colLabels={map.colLabels.map(shortName)}
          matrix={map.matrix}
          testId={`similarity-${map.name}`}
        />
      ))}
    </div>
  );
}

/** One per-module metric of the last snapshot as a bar chart card. */
function ModuleBars(props: {
  rows: Parameters<typeof BarsChart>[0]['rows'];
  title: string;
  metric: string;
  name: string;
  color: string;
  testId: string;
}) {
  return (
    <Card>
      <BarsChart
        title={props.title}
        rows={props.rows}
        bars={[{ key: props.metric, name: props.name, color: props.color }]}
        testId={props.testId}
      />
    </Card>
  );
}

/** Trainable parameters per module: beside ‖ΔW‖ when there is no scaling factor to show, else below. */
function TrainableBars({ rows }: { rows: Parameters<typeof BarsChart>[0]['rows'] }) {
  return (
    <ModuleBars
      rows={rows}
      title="Trainable parameters per module"
      metric="trainable"
      name="trainable"
      color="var(--c2)"
      testId="bars-trainable"
    />
  );
}

function AnalysisBody({ analysis }: { analysis: Analysis }) {
  const [module, setModule] = useState(analysis.modules[0] ?? '');
  const spectrum = useMemo(
    () => (analysis.spectra[module] ?? []).map((s, i) => ({ step: i + 1, sigma: s })),
    [analysis, module],
  );
  const bars = analysis.bars.map((b) => ({
    label: shortName(b.module),
    full: b.module,
    deltaNorm: b.deltaNorm,
    scaling: b.scaling,
    trainable: b.trainable,
  }));
  const withScaling = bars.some((b) => b.scaling !== null);
  return (
    <>
      {analysis.downsampled && (
        <p className="muted small">
          Long run: snapshots are downsampled to {analysis.steps.length} steps for display.
        </p>
      )}
      <div className="grid-2">
        {analysis.heatmaps.map((h) => (
          <Card key={h.name}>
            <Heatmap
              title={h.name}
              rowLabels={h.rowLabels}
              colLabels={analysis.steps.map(String)}
              matrix={h.matrix}
              testId={`heatmap-${h.name}`}
            />
          </Card>
        ))}
      </div>
      <div className="grid-2">
        <ModuleBars
          rows={bars}
          title="‖ΔW‖_F per module (last snapshot)"
          metric="deltaNorm"
          name="‖ΔW‖"
          color="var(--c1)"
          testId="bars-delta"
        />
        {withScaling ? (
          <ModuleBars
            rows={bars}
            title="Scaling factor per module"
            metric="scaling"
            name="scaling"
            color="var(--c3)"
            testId="bars-scaling"
          />
        ) : (
          <TrainableBars rows={bars} />
        )}
      </div>
      <div className="grid-2">
        <Card
          title="ΔW singular spectrum"
          actions={
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
          }
        >
          <CurveChart
            title={`σᵢ of ΔW · ${shortName(module)}`}
            rows={spectrum}
            series={[{ key: 'sigma', name: 'σ', color: 'var(--c1)' }]}
            logToggle
            testId="spectrum"
          />
        </Card>
        <Eigen runDir={analysis.runDir} modules={analysis.modules} />
      </div>
      {withScaling && <TrainableBars rows={bars} />}
      {analysis.histograms.length > 0 && (
        <div className="grid-2">
          {analysis.histograms.map((h) => (
            <Card key={h.name}>
              <BarsChart
                title={h.name}
                height={180}
                rows={h.counts.map((c, i) => ({
                  label: formatNumber((h.edges[i] + h.edges[i + 1]) / 2, 2),
                  count: c,
                }))}
                bars={[{ key: 'count', name: 'count', color: 'var(--c5)' }]}
              />
            </Card>
          ))}
        </div>
      )}
    </>
  );
}

export function AnalysisView() {
  const selected = useStudio((s) => s.selectedRun);
  const runs = useStudio((s) => s.runs);
  const analysis = useStudio((s) => (s.selectedRun ? s.analysis[s.selectedRun] : undefined));
  const loadAnalysis = useStudio((s) => s.loadAnalysis);
  const busy = useStudio((s) => s.busy.analysis);
  const comparison = useStudio((s) => s.runComparison);
  const compareRuns = useStudio((s) => s.compareRuns);
  const [other, setOther] = useState('');
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
  const others = runs.filter((r) => r.dir !== selected);
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
      <ErrorNote area="analysis" />
      {analysis ? (
        <AnalysisBody analysis={analysis} />
      ) : (
        <Empty title={busy ? 'Reading the analysis…' : 'No analysis'} />
      )}
      <Card
        title="Compare with another run"
        actions={
          <form
            className="row"
            onSubmit={(e) => {
              e.preventDefault();
              if (other) void compareRuns(selected, other);
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
        {comparison && comparison.runA.dir === selected ? (
          <SimilarityMaps comparison={comparison} />
        ) : (
          <p className="muted small">Cosine similarity and subspace overlap of ΔW, module by module.</p>
        )}
      </Card>
    </div>
  );
}
