import type { ReactNode } from 'react';
import { useStudio } from '../context.ts';

/** An in-place error with the engine's own message. */
export function ErrorNote({ area }: { area: string }) {
  const error = useStudio((s) => s.errors[area]);
  const clear = useStudio((s) => s.clearError);
  if (!error) return null;
  return (
    <div className="error-note" role="alert">
      <span className="error-icon" aria-hidden>
        !
      </span>
      <span className="error-text">{error}</span>
      <button type="button" className="link" onClick={() => clear(area)} aria-label="dismiss error">
        dismiss
      </button>
    </div>
  );
}

export function Empty({ title, children }: { title: string; children?: ReactNode }) {
  return (
    <div className="empty">
      <div className="empty-title">{title}</div>
      {children && <div className="empty-body">{children}</div>}
    </div>
  );
}

export function Card({
  title,
  actions,
  children,
  className,
  testId,
}: {
  title?: ReactNode;
  actions?: ReactNode;
  children: ReactNode;
  className?: string;
  testId?: string;
}) {
  return (
    <section className={`card ${className ?? ''}`} data-testid={testId}>
      {(title || actions) && (
        <header className="card-head">
          {title && <h2>{title}</h2>}
          {actions && <div className="card-actions">{actions}</div>}
        </header>
      )}
      {children}
    </section>
  );
}

export function Stat({ label, value, hint }: { label: string; value: ReactNode; hint?: string }) {
  return (
    <div className="stat" title={hint}>
      <div className="stat-label">{label}</div>
      <div className="stat-value">{value}</div>
    </div>
  );
}

export function ProgressBar({ fraction, label }: { fraction: number; label: string }) {
  const pct = Math.max(0, Math.min(1, fraction)) * 100;
  return (
    <div
      className="progress"
      role="progressbar"
      aria-label={label}
      aria-valuenow={Math.round(pct)}
      aria-valuemin={0}
      aria-valuemax={100}
    >
      <div className="progress-fill" style={{ width: `${pct}%` }} />
    </div>
  );
}

export function StatusBadge({ status }: { status: string }) {
  return <span className={`badge badge-${status}`}>{status}</span>;
}

/** A run picker for the views that work on one run. */
export function RunPicker({ label = 'Run' }: { label?: string }) {
  const runs = useStudio((s) => s.runs);
  const selected = useStudio((s) => s.selectedRun);
  const selectRun = useStudio((s) => s.selectRun);
  if (runs.length === 0) return null;
  return (
    <label className="inline-field">
      <span>{label}</span>
      <select value={selected ?? ''} onChange={(e) => void selectRun(e.target.value || null)}>
        {runs.map((r) => (
          <option key={r.dir} value={r.dir}>
            {r.id} · {r.method} · {r.status}
          </option>
        ))}
      </select>
    </label>
  );
}
