import { useState } from 'react';
import { useStudio } from '../context.ts';
import type { ImportKind } from '../store/types.ts';
import { Card, ErrorNote } from './common.tsx';
import { PathPicker } from './PathPicker.tsx';

const KIND_WORDS: Record<ImportKind, { label: string; help: string }> = {
  adapter: {
    label: 'a PEFT adapter folder',
    help: 'adapter_config.json + adapter_model.safetensors, trained anywhere on this project’s base model',
  },
  job: {
    label: 'a hand-off job’s output',
    help: 'the output/ folder a Run elsewhere job wrote: checkpoints, trainer_state.json, metrics.jsonl',
  },
};

/**
 * "Import": a PEFT adapter folder (as `studio import`) or the output of a hand-off job trained elsewhere (as
 * `studio import-run`) becomes a run of the open project, with its curves when the job logged them.
 */
export function ImportRun() {
  const importRun = useStudio((s) => s.importRun);
  const busy = useStudio((s) => s.busy.import === true);
  const [kind, setKind] = useState<ImportKind>('adapter');
  const [source, setSource] = useState('');
  const [warnings, setWarnings] = useState<string[]>([]);
  const path = source.trim();
  return (
    <Card title="Import a run" testId="import-run">
      <form
        className="stack"
        onSubmit={(event) => {
          event.preventDefault();
          void importRun(kind, path).then((result) => {
            if (!result) return;
            setWarnings(result);
            setSource('');
          });
        }}
      >
        <div className="row" role="radiogroup" aria-label="what the folder is">
          {(Object.keys(KIND_WORDS) as ImportKind[]).map((k) => (
            <label key={k} className="row small">
              <input type="radio" name="import-kind" checked={kind === k} onChange={() => setKind(k)} />
              {KIND_WORDS[k].label}
            </label>
          ))}
        </div>
        <PathPicker
          id="import-source"
          label="Folder"
          value={source}
          onChange={setSource}
          kind="folder"
          help={KIND_WORDS[kind].help}
        />
        <button
          type="submit"
          className="align-start"
          disabled={busy || path === ''}
          data-testid="import-submit"
        >
          {busy ? 'Importing…' : 'Import'}
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
