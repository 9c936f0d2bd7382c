import { useState } from 'react';
import type { RunInfo, RunResize } from '../../../engine/common/contract.ts';
import { useApi, useStudio } from '../context.ts';
import { formatBytes, formatNumber, formatPercent } from '../lib/format.ts';
import { Card } from './common.tsx';

const CRITERIA = [
  { id: 'sv_fro', label: 'Frobenius kept', value: '0.99', hint: 'keep ‖ΔW_k‖_F / ‖ΔW‖_F ≥ this fraction' },
  {
    id: 'sv_cumulative',
    label: 'cumulative σ',
    value: '0.9',
    hint: 'keep Σσᵢ (i ≤ k) / Σσᵢ ≥ this fraction',
  },
  { id: 'sv_ratio', label: 'σ₁/σᵢ ratio', value: '20', hint: 'keep σᵢ > σ₁ / this ratio' },
  { id: 'size', label: 'target size', value: '1MB', hint: 'bytes of the resized adapter (K, M, G)' },
] as const;

/**
 * Spectrum-driven resize (kohya's Resize LoRA): per module the new rank, energy kept and bytes saved, the
 * validation loss of the resized adapter, then a PEFT LoRA export with rank_pattern. The same request as
 * `studio export --format lora --resize <criterion>=<value>`.
 */
export function ResizePanel({ run }: { run: RunInfo }) {
  const runDir = run.dir;
  const api = useApi();
  const busy = useStudio((s) => s.busy);
  const runExport = useStudio((s) => s.runExport);
  const [criterion, setCriterion] = useState<(typeof CRITERIA)[number]['id']>('sv_fro');
  const [value, setValue] = useState('0.99');
  const [proposal, setProposal] = useState<RunResize | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [working, setWorking] = useState(false);
  const spec = `${criterion}=${value.trim()}`;
  const propose = async () => {
    setWorking(true);
    setError(null);
    try {
      setProposal(await api.call('export.resize', { runDir, resize: spec, validate: true }));
    } catch (e) {
      setError((e as Error).message);
      setProposal(null);
    } finally {
      setWorking(false);
    }
  };
  const p = proposal?.proposal;
  const v = proposal?.validation;
  return (
    <Card title="Resize by spectrum">
      <form
        className="row"
        onSubmit={(e) => {
          e.preventDefault();
          void propose();
        }}
      >
        <select
          aria-label="resize criterion"
          value={criterion}
          onChange={(e) => {
            const c = CRITERIA.find((x) => x.id === e.target.value)!;
            setCriterion(c.id);
            setValue(c.value);
          }}
          data-testid="resize-criterion"
        >
          {CRITERIA.map((c) => (
            <option key={c.id} value={c.id} title={c.hint}>
              {c.label}
            </option>
          ))}
        </select>
        <input
          className="mono"
          aria-label="resize value"
          value={value}
          onChange={(e) => setValue(e.target.value)}
          data-testid="resize-value"
        />
        <button type="submit" disabled={working} data-testid="resize-propose">
          {working ? 'Measuring…' : 'Propose ranks'}
        </button>
        <button
          type="button"
          className="primary"
          disabled={!p || busy['export-lora']}
          onClick={() =>
            void runExport(
              runDir,
              'lora',
              `${runDir}/exports/lora-${spec.replace(/[^A-Za-z0-9._-]/g, '_')}`,
              { resize: spec },
            )
          }
          data-testid="resize-export"
        >
          Export resized LoRA
        </button>
      </form>
      <p className="muted small">
        {CRITERIA.find((c) => c.id === criterion)?.hint}; ranks come from the exact SVD of each module’s ΔW.
      </p>
      {error && <div className="error-note">{error}</div>}
      {p && (
        <>
          <p className="small" data-testid="resize-summary">
            {formatBytes(p.bytesBefore)} → <strong>{formatBytes(p.bytesAfter)}</strong>, energy kept{' '}
            {formatPercent(p.retainedEnergy)}
            {v
              ? `; validation loss ${formatNumber(v.lossOriginal)} → ${formatNumber(v.lossResized)} (base model ${formatNumber(v.lossBase)}, ${v.examples} examples)`
              : '; the run has no validation data, so no loss is measured'}
          </p>
          <table className="small" data-testid="resize-table">
            <thead>
              <tr>
                <th>module</th>
                <th>rank</th>
                <th>new rank</th>
                <th>Frobenius kept</th>
                <th>energy kept</th>
                <th>saved</th>
              </tr>
            </thead>
            <tbody>
              {p.modules.map((m) => (
                <tr key={m.module}>
                  <td className="mono">{m.module}</td>
                  <td>{m.rank}</td>
                  <td>{m.newRank}</td>
                  <td>{formatPercent(m.retainedFrobenius)}</td>
                  <td>{formatPercent(m.retainedEnergy)}</td>
                  <td>{formatBytes(m.bytesSaved)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </>
      )}
    </Card>
  );
}
