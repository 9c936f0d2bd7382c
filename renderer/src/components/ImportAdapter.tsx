import { useState } from 'react';
import { useStudio } from '../context.ts';
import { Card, ErrorNote } from './common.tsx';

/** "Import adapter": a PEFT adapter folder becomes a run of the open project (as `studio import`). */
export function ImportAdapter() {
  const importAdapter = useStudio((s) => s.importAdapter);
  const busy = useStudio((s) => s.busy.import === true);
  const [source, setSource] = useState('');
  const [warnings, setWarnings] = useState<string[]>([]);
  const path = source.trim();
  return (
    <Card title="Import adapter" testId="import-adapter">
      <form
        className="row"
        onSubmit={(event) => {
          event.preventDefault();
          void importAdapter(path).then((result) => {
            if (!result) return;
            setWarnings(result);
            setSource('');
          });
        }}
      >
        <input
          className="grow mono"
          aria-label="PEFT adapter folder"
          value={source}
          onChange={(event) => setSource(event.target.value)}
          placeholder="PEFT adapter folder (adapter_config.json + adapter_model.safetensors)"
          spellCheck={false}
        />
        <button type="submit" disabled={busy || path === ''}>
          {busy ? 'Importing…' : 'Import adapter'}
        </button>
      </form>
      <ErrorNote area="import" />
      {warnings.map((warning) => (
        <p key={warning} className="muted small">
          {warning}
        </p>
      ))}
    </Card>
  );
}
