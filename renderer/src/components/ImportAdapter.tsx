import { useState } from 'react';
import { useStudio } from '../context.ts';
import { ErrorNote } from './common.tsx';

/** "Import adapter": a PEFT adapter folder becomes a run of the open project (as `studio import`). */
export function ImportAdapter() {
  const importAdapter = useStudio((s) => s.importAdapter);
  const busy = useStudio((s) => s.busy.import === true);
  const [source, setSource] = useState('');
  const [warnings, setWarnings] = useState<string[]>([]);
  const path = source.trim();
  return (
    <form
      className="import-adapter"
      data-testid="import-adapter"
      onSubmit={(event) => {
        event.preventDefault();
        void importAdapter(path).then((result) => {
          if (!result) return;
          setWarnings(result);
          setSource('');
        });
      }}
    >
      <label className="inline-field">
        <span>PEFT adapter folder</span>
        <input
          value={source}
          onChange={(event) => setSource(event.target.value)}
          placeholder="folder with adapter_config.json and adapter_model.safetensors"
        />
      </label>
      <button type="submit" disabled={busy || path === ''}>
        {busy ? 'Importing…' : 'Import adapter'}
      </button>
      <ErrorNote area="import" />
      {warnings.map((warning) => (
        <p key={warning} className="muted small">
          {warning}
        </p>
      ))}
    </form>
  );
}
