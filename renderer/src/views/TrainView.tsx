import { useMemo } from 'react';
import { CurveChart } from '../components/charts.tsx';
import { Card, Empty, ErrorNote, ProgressBar, RunPicker, Stat, StatusBadge } from '../components/common.tsx';
import { StartRun } from '../components/StartRun.tsx';
import { TrainingSettings } from '../components/TrainingSettings.tsx';
import { useStudio } from '../context.ts';
import { formatCount, formatDuration, formatNumber, metricLabel } from '../lib/format.ts';
import { isActive } from '../store.ts';

const palette = ['var(--c1)', 'var(--c2)', 'var(--c3)', 'var(--c4)', 'var(--c5)'];

export function TrainView() {
  const project = useStudio((s) => s.project);
  const backend = useStudio((s) => s.backend);
  const selected = useStudio((s) => s.selectedRun);
  const detail = useStudio((s) => (s.selectedRun ? s.details[s.selectedRun] : undefined));
  const busy = useStudio((s) => s.busy.train);
  const pauseRun = useStudio((s) => s.pauseRun);
  const resumeRun = useStudio((s) => s.resumeRun);
  const cancelRun = useStudio((s) => s.cancelRun);
  const setView = useStudio((s) => s.setView);

  const rows = useMemo(() => detail?.metrics.steps ?? [], [detail]);
  const evalRows = useMemo(() => {
    if (!detail) return [];
    return detail.metrics.evals.map((e) => ({ step: e.step, evalLoss: e.evalLoss }));
  }, [detail]);
  const metricKeys = useMemo(() => {
    const keys = new Set<string>();
    for (const e of detail?.metrics.evals ?? []) for (const k of Object.keys(e.metrics)) keys.add(k);
    return [...keys];
  }, [detail]);

  if (!project) {
    return (
      <div className="view">
        <Empty title="No project open">
          <button type="button" onClick={() => setView('project')}>
            Open or create a project
          </button>
        </Empty>
      </div>
    );
  }
  const run = detail?.run;
  const progress = detail?.progress;
  const active = isActive(run);
  const canResume =
    run &&
    !run.live &&
    (run.status === 'interrupted' || run.status === 'paused' || run.status === 'failed') &&
    run.lastCheckpoint;
  return (
    <div className="view">
      <header className="view-head">
        <h1>Train</h1>
        <div className="head-actions">
          <RunPicker />
          <StartRun label="Start new run" testId="start-run" />
        </div>
      </header>
      <ErrorNote area="train" />
      <ErrorNote area="run" />
      <div className="grid-train">
        <Card title="Backend" testId="backend-card">
          <ErrorNote area="backend" />
          {backend ? (
            <>
              <div className="backend-chosen">
                <span className="badge badge-running">{backend.chosen}</span>{' '}
                <span className="small">{backend.reason}</span>
              </div>
              <details>
                <summary className="small">Other backends</summary>
                <ul className="small plain">
                  {backend.candidates.map((c) => (
                    <li key={c.name}>
                      <strong>{c.name}</strong> {c.available ? '✓' : '✗'}{' '}
                      <span className="muted">{c.detail}</span>
                    </li>
                  ))}
                </ul>
              </details>
            </>
          ) : (
            <Empty title="Checking backends…" />
          )}
        </Card>
        <Card
          title={
            run ? (
              <>
                Run {run.id} <StatusBadge status={run.status} />
              </>
            ) : (
              'No run yet'
            )
          }
          testId="run-card"
          actions={
            run && (
              <div className="btn-row">
                {active && run.status === 'running' && (
                  <button
                    type="button"
                    onClick={() => void pauseRun(run.dir)}
                    disabled={busy}
                    data-testid="pause"
                  >
                    Pause
                  </button>
                )}
                {((active && run.status === 'paused') || canResume) && (
                  <button
                    type="button"
                    className="primary"
                    onClick={() => void resumeRun(run.dir)}
                    disabled={busy}
                    data-testid="resume"
                  >
                    {run.live ? 'Resume' : 'Resume from checkpoint'}
                  </button>
                )}
                {active && (
                  <button
                    type="button"
                    className="danger"
                    onClick={() => void cancelRun(run.dir)}
                    disabled={busy}
                    data-testid="cancel"
                  >
                    Cancel
                  </button>
                )}
              </div>
            )
          }
        >
          {run && progress ? (
            <>
              <ProgressBar
                fraction={progress.totalSteps > 0 ? progress.step / progress.totalSteps : 0}
                label="training progress"
              />
              <div className="stats">
                <Stat
                  label="Step"
                  value={
                    <span data-testid="progress-step">{`${progress.step} / ${progress.totalSteps}`}</span>
                  }
                />
                <Stat label="Epoch" value={formatNumber(progress.epoch, 3)} />
                <Stat
                  label="Tokens/s"
                  value={formatCount(
                    progress.tokensPerSec === null ? null : Math.round(progress.tokensPerSec),
                  )}
                />
                <Stat label="ETA" value={run.status === 'running' ? formatDuration(progress.etaSec) : '—'} />
                <Stat label="Loss" value={formatNumber(run.lastLoss)} />
                <Stat label="Eval loss" value={formatNumber(run.lastEvalLoss)} />
              </div>
              {run.error && <div className="error-note">{run.error}</div>}
              <p className="muted small">
                {run.method} · backend {run.backend ?? '—'} · last checkpoint{' '}
                {run.lastCheckpoint ?? 'none yet'}
              </p>
            </>
          ) : (
            <Empty title="No run selected">Start a run: its progress and curves appear here, live.</Empty>
          )}
        </Card>
      </div>
      <TrainingSettings />
      {run && selected && (
        <div className="grid-2">
          <Card>
            <CurveChart
              title="Training loss"
              rows={rows}
              series={[{ key: 'loss', name: 'loss', color: palette[0] }]}
              smoothing
              logToggle
              testId="chart-loss"
            />
          </Card>
          <Card>
            <CurveChart
              title="Validation loss"
              rows={evalRows}
              series={[{ key: 'evalLoss', name: 'eval loss', color: palette[1] }]}
              logToggle
              height={metricKeys.length > 0 ? 140 : 200}
              testId="chart-eval"
            />
            {metricKeys.length > 0 && (
              <table className="table compact" data-testid="eval-metrics">
                <thead>
                  <tr>
                    <th className="num">Step</th>
                    {metricKeys.map((k) => (
                      <th key={k} className="num" title={k}>
                        {metricLabel(k)}
                      </th>
                    ))}
                  </tr>
                </thead>
                <tbody>
                  {(detail?.metrics.evals ?? []).slice(-3).map((e) => (
                    <tr key={e.step}>
                      <td className="num mono">{e.step}</td>
                      {metricKeys.map((k) => (
                        <td key={k} className="num mono">
                          {formatNumber(e.metrics[k])}
                        </td>
                      ))}
                    </tr>
                  ))}
                </tbody>
              </table>
            )}
          </Card>
          <Card>
            <CurveChart
              title="Learning rate"
              rows={rows}
              series={[{ key: 'lr', name: 'lr', color: palette[2] }]}
              testId="chart-lr"
            />
          </Card>
          <Card>
            <CurveChart
              title="Gradient norm"
              rows={rows}
              series={[{ key: 'gradNorm', name: 'grad norm', color: palette[3] }]}
              smoothing
              logToggle
              testId="chart-grad"
            />
          </Card>
        </div>
      )}
    </div>
  );
}
