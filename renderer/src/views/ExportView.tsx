import { useEffect, useState } from 'react';
import type { ExportResult } from '../../../engine/common/contract.ts';
import { Card, Empty, ErrorNote, RunPicker } from '../components/common.tsx';
import { PathPicker } from '../components/PathPicker.tsx';
import { useStudio } from '../context.ts';
import { formatBytes, formatNumber } from '../lib/format.ts';
import { exportCards } from '../slots.ts';

type Format = ExportResult['format'];

const formats: { id: Format; title: string; description: string }[] = [
  {
    id: 'peft',
    title: 'PEFT adapter',
    description: 'adapter_model.safetensors + adapter_config.json, loadable by Hugging Face PEFT',
  },
  {
    id: 'merged',
    title: 'Merged model',
    description: 'the base model with the adapter folded in: a plain transformers checkpoint',
  },
  {
    id: 'lora',
    title: 'LoRA-converted',
    description: 'any low-rank method rewritten as a plain LoRA (lora_A / lora_B)',
  },
  {
    id: 'native',
    title: 'Native checkpoint',
    description: 'the studio’s own adapter state, to continue training elsewhere',
  },
];

function Result({ result }: { result: ExportResult }) {
  return (
    <div
      className={`export-result ${result.verification.ok ? 'ok' : 'bad'}`}
      data-testid={`export-result-${result.format}`}
    >
      <div className="row">
        <strong>{formats.find((f) => f.id === result.format)?.title ?? result.format.toUpperCase()}</strong>
        <span
          className={`badge ${result.verification.ok ? 'badge-completed' : 'badge-failed'}`}
          data-testid="verification"
        >
          {result.verification.ok ? 'verified' : 'verification failed'}
        </span>
        <span className="muted small">max |Δ| {formatNumber(result.verification.maxAbsDiff)}</span>
      </div>
      {result.verification.detail && <p className="small muted">{result.verification.detail}</p>}
      <p className="mono small">{result.out}</p>
      <ul className="files small mono">
        {result.files.map((f) => (
          <li key={f.path}>
            {f.path} <span className="muted">{formatBytes(f.bytes)}</span>
          </li>
        ))}
      </ul>
      <p className="small">Total {formatBytes(result.bytes)}</p>
    </div>
  );
}

export function ExportView() {
  const selected = useStudio((s) => s.selectedRun);
  const run = useStudio((s) => s.runs.find((r) => r.dir === s.selectedRun));
  const busy = useStudio((s) => s.busy);
  const exports = useStudio((s) => s.exports);
  const errors = useStudio((s) => s.errors);
  const runExport = useStudio((s) => s.runExport);
  const estimateExport = useStudio((s) => s.estimateExport);
  const estimate = useStudio((s) => (s.selectedRun ? (s.estimates[s.selectedRun] ?? null) : null));
  const [format, setFormat] = useState<Format>('peft');
  const [out, setOut] = useState('');
  useEffect(() => {
    if (selected) void estimateExport(selected);
  }, [selected, estimateExport]);
  useEffect(() => {
    if (selected) setOut(`${selected}/exports/${format}`);
  }, [selected, format]);
  // a format the run's method lacks (TLoRA has no PEFT type) is replaced by the first one it has
  useEffect(() => {
    if (estimate && estimate[format] === undefined) {
      const first = formats.find((f) => estimate[f.id] !== undefined);
      if (first) setFormat(first.id);
    }
  }, [estimate, format]);
  if (!selected || !run) {
    return (
      <div className="view">
        <header className="view-head">
          <h1>Export</h1>
        </header>
        <Empty title="No run to export">Train a run first; any checkpoint can be exported.</Empty>
      </div>
    );
  }
  const area = `export-${format}`;
  const error = errors[area];
  return (
    <div className="view">
      <header className="view-head">
        <h1>Export</h1>
        <div className="head-actions">
          <RunPicker />
        </div>
      </header>
      <div className="format-picker">
        {formats.map((f) => (
          <button
            type="button"
            aria-pressed={format === f.id}
            key={f.id}
            className={`method ${format === f.id ? 'on' : ''}`}
            onClick={() => setFormat(f.id)}
            data-testid={`format-${f.id}`}
            disabled={estimate !== null && estimate[f.id] === undefined}
            title={
              estimate !== null && estimate[f.id] === undefined
                ? `${run.method} has no ${f.title} format (PEFT has no such adapter type); use LoRA-converted`
                : undefined
            }
          >
            <span className="method-label">{f.title}</span>
            <span className="method-desc">{f.description}</span>
            <span className="method-size mono">
              {estimate
                ? estimate[f.id] === undefined
                  ? 'not available'
                  : formatBytes(estimate[f.id])
                : '…'}
            </span>
          </button>
        ))}
      </div>
      <ErrorNote area="export-estimate" />
      <Card title="Destination">
        <form
          className="stack"
          onSubmit={(e) => {
            e.preventDefault();
            void runExport(selected, format, out.trim());
          }}
        >
          <PathPicker id="export-out" label="Export folder" value={out} onChange={setOut} kind="new-folder" />
          <button
            type="submit"
            className="primary align-start"
            disabled={busy[area] || !out.trim()}
            data-testid="export-run"
          >
            {busy[area]
              ? 'Exporting and verifying…'
              : `Export ${formats.find((f) => f.id === format)?.title}`}
          </button>
        </form>
        <p className="muted small">
          Size before export: <strong>{estimate ? formatBytes(estimate[format]) : '…'}</strong>. After
          writing, the export is reloaded and its outputs are compared with the trained adapter’s.
        </p>
        <div data-testid={error ? 'export-error' : undefined}>
          <ErrorNote area={area} />
        </div>
      </Card>
      {exportCards.map((ExportCard, i) => (
        // biome-ignore lint/suspicious/noArrayIndexKey: the slot list is fixed at build time
        <ExportCard key={i} run={run} />
      ))}
      {exports.length > 0 && (
        <Card title="Exports">
          {exports.map((r) => (
            <Result key={r.out} result={r} />
          ))}
        </Card>
      )}
    </div>
  );
}
