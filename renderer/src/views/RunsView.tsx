import { useMemo, useState } from 'react';
import type { RunComparison } from '../../../engine/common/contract.ts';
import { BarsChart, CurveChart } from '../components/charts.tsx';
import { Card, Empty, ErrorNote, StatusBadge } from '../components/common.tsx';
import { useStudio } from '../context.ts';
import { formatDate, formatNumber } from '../lib/format.ts';
import { runsViewCards } from '../slots.ts';
import { isActive } from '../store.ts';
import { SimilarityMaps, shortName } from './AnalysisView.tsx';

function show(value: unknown): string {
  if (value === undefined) return '—';
  return typeof value === 'string' ? value : JSON.stringify(value);
}

/** Both runs' curves on one step axis. */
export function overlay(comparison: RunComparison): Record<string, number | null>[] {
  const byStep = new Map<number, Record<string, number | null>>();
  for (const [key, metrics] of [
    ['a', comparison.metricsA],
    ['b', comparison.metricsB],
  ] as const) {
    for (const row of metrics.steps) {
      const entry = byStep.get(row.step) ?? { step: row.step };
      entry[key] = row.loss;
      byStep.set(row.step, entry);
    }
  }
  return [...byStep.values()].sort((x, y) => (x.step ?? 0) - (y.step ?? 0));
}

function ComparisonPanel({ comparison }: { comparison: RunComparison }) {
  const rows = useMemo(() => overlay(comparison), [comparison]);
  const pair = [
    { key: 'a', name: comparison.runA.id, color: 'var(--c1)' },
    { key: 'b', name: comparison.runB.id, color: 'var(--c2)' },
  ];
  const norms = comparison.deltaNorms.map((d) => ({
    label: shortName(d.module),
    full: d.module,
    a: d.a,
    b: d.b,
  }));
  return (
    <div data-testid="run-comparison">
      <div className="grid-2">
        <Card>
          <CurveChart title="Training loss" rows={rows} series={pair} smoothing logToggle />
        </Card>
        <Card title="Config differences">
          {comparison.configDiff.length === 0 ? (
            <p className="muted">Same configuration.</p>
          ) : (
            <table className="table compact">
              <thead>
                <tr>
                  <th>Setting</th>
                  <th>{comparison.runA.id}</th>
                  <th>{comparison.runB.id}</th>
                </tr>
              </thead>
              <tbody>
                {comparison.configDiff.map((d) => (
                  <tr key={d.key}>
                    <td className="mono">{d.key}</td>
                    <td className="mono">{show(d.a)}</td>
                    <td className="mono">{show(d.b)}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          )}
        </Card>
      </div>
      {norms.length > 0 && (
        <Card>
          <BarsChart title="‖ΔW‖ per module" rows={norms} bars={pair} />
        </Card>
      )}
      <SimilarityMaps comparison={comparison} />
    </div>
  );
}

export function RunsView() {
  const project = useStudio((s) => s.project);
  const runs = useStudio((s) => s.runs);
  const selectRun = useStudio((s) => s.selectRun);
  const deleteRun = useStudio((s) => s.deleteRun);
  const refreshRuns = useStudio((s) => s.refreshRuns);
  const compareRuns = useStudio((s) => s.compareRuns);
  const comparison = useStudio((s) => s.runComparison);
  const setView = useStudio((s) => s.setView);
  const [picked, setPicked] = useState<string[]>([]);
  const [confirm, setConfirm] = useState<string | null>(null);
  if (!project) {
    return (
      <div className="view">
        <Empty title="No project open" />
      </div>
    );
  }
  const toggle = (dir: string) =>
    setPicked((p) => (p.includes(dir) ? p.filter((d) => d !== dir) : [...p.slice(-1), dir]));
  return (
    <div className="view">
      <header className="view-head">
        <h1>Runs</h1>
        <div className="head-actions">
          <button type="button" onClick={() => void refreshRuns()}>
            Refresh
          </button>
          <button
            type="button"
            className="primary"
            disabled={picked.length !== 2}
            onClick={() => void compareRuns(picked[0], picked[1])}
            data-testid="compare-runs"
          >
            Compare {picked.length === 2 ? 'the two runs' : '(pick two)'}
          </button>
        </div>
      </header>
      <div className="grid-2">
        {runsViewCards.map((Piece, i) => (
          // biome-ignore lint/suspicious/noArrayIndexKey: the slot list is fixed at build time
          <Piece key={i} />
        ))}
      </div>
      <ErrorNote area="runs" />
      <ErrorNote area="compare-runs" />
      {runs.length === 0 ? (
        <Empty title="No runs yet">Runs of this project appear here with their curves and settings.</Empty>
      ) : (
        <Card>
          <table className="table" data-testid="runs-table">
            <thead>
              <tr>
                <th aria-label="compare" />
                <th>Run</th>
                <th>Method</th>
                <th>Status</th>
                <th className="num">Step</th>
                <th className="num">Loss</th>
                <th className="num">Eval loss</th>
                <th>Started</th>
                <th aria-label="actions" />
              </tr>
            </thead>
            <tbody>
              {runs.map((run) => (
                <tr key={run.dir}>
                  <td>
                    <input
                      type="checkbox"
                      aria-label={`compare ${run.id}`}
                      checked={picked.includes(run.dir)}
                      onChange={() => toggle(run.dir)}
                    />
                  </td>
                  <td className="mono">{run.id}</td>
                  <td>{run.method}</td>
                  <td>
                    <StatusBadge status={run.status} />
                    {run.origin && (
                      <span className="badge" title={run.origin.source}>
                        {run.origin.kind === 'imported-run'
                          ? `ran on ${run.origin.where ?? 'another machine'}`
                          : 'imported'}
                      </span>
                    )}
                  </td>
                  <td className="num mono">
                    {run.step}/{run.totalSteps}
                  </td>
                  <td className="num mono">{formatNumber(run.lastLoss)}</td>
                  <td className="num mono">{formatNumber(run.lastEvalLoss)}</td>
                  <td className="small">{formatDate(run.createdAt)}</td>
                  <td className="btn-row">
                    <button
                      type="button"
                      onClick={() => {
                        void selectRun(run.dir);
                        setView('train');
                      }}
                    >
                      Open
                    </button>
                    {confirm === run.dir ? (
                      <>
                        <button
                          type="button"
                          className="danger"
                          onClick={() => void deleteRun(run.dir).then(() => setConfirm(null))}
                        >
                          Delete for good
                        </button>
                        <button type="button" onClick={() => setConfirm(null)}>
                          Keep
                        </button>
                      </>
                    ) : (
                      <button
                        type="button"
                        disabled={isActive(run)}
                        onClick={() => setConfirm(run.dir)}
                        title={isActive(run) ? 'stop the run first' : 'delete this run folder'}
                      >
                        Delete
                      </button>
                    )}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </Card>
      )}
      {comparison && <ComparisonPanel comparison={comparison} />}
    </div>
  );
}
