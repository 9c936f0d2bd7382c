import { useMemo, useState } from 'react';
import { z } from 'zod';
import { GenerateOptionsSchema, type Input, type Output } from '../../../engine/common/contract.ts';
import { Card, Empty, ErrorNote, RunPicker } from '../components/common.tsx';
import { StoreForm } from '../components/SchemaForm.tsx';
import { useStudio } from '../context.ts';
import { fieldsFromSchema } from '../lib/schemaForm.ts';
import { formErrors } from '../store.ts';

type Options = NonNullable<Input<'tryit.generate'>['options']>;

/** Decoding options as the API contract defines them (bounds, defaults, types): one source for both sides. */
const optionFields = fieldsFromSchema(
  z.toJSONSchema(GenerateOptionsSchema, { io: 'input', unrepresentable: 'any' }) as Record<string, unknown>,
);
const SAMPLING = ['temperature', 'topK', 'seed'];

type Classified = Output<'tryit.classify'>;

function Probabilities({ result }: { result: Classified['base'] }) {
  return (
    <div>
      <div className="big-label" data-testid="predicted-label">
        {result.label}
      </div>
      <ul className="probs">
        {result.probabilities.map((p) => (
          <li key={p.label}>
            <span className="prob-label">{p.label}</span>
            <span className="prob-bar">
              <span style={{ width: `${(p.p * 100).toFixed(1)}%` }} />
            </span>
            <span className="mono small">{(p.p * 100).toFixed(1)}%</span>
          </li>
        ))}
      </ul>
    </div>
  );
}

export function TryView() {
  const selected = useStudio((s) => s.selectedRun);
  const model = useStudio((s) => s.model);
  const preview = useStudio((s) => s.preview);
  // the prompt part (no loss) of a validation example: the format the adapter was trained on
  const example = preview?.examples.find((e) => e.split === 'validation') ?? preview?.examples[0];
  const examplePrompt = example?.segments
    .filter((seg) => !seg.trained)
    .map((seg) => seg.text)
    .join('')
    .replace(/^<\|[^|]*\|>/, '');
  const [prompt, setPrompt] = useState('');
  const [options, setOptions] = useState<Options>({});
  const invalid = useStudio((s) => formErrors(s, 'try').length > 0);
  const fields = useMemo(
    () => optionFields.filter((f) => options.mode === 'sampled' || !SAMPLING.includes(f.key)),
    [options.mode],
  );
  const busy = useStudio((s) => Boolean(s.busy.try));
  const generated = useStudio((s) => s.generated);
  const classified = useStudio((s) => s.classified);
  const generate = useStudio((s) => s.generate);
  const classify = useStudio((s) => s.classify);
  if (!selected) {
    return (
      <div className="view">
        <header className="view-head">
          <h1>Try it</h1>
        </header>
        <Empty title="No trained adapter yet">
          Train a run, then compare the base model and the adapted one here.
        </Empty>
      </div>
    );
  }
  const classifier = model?.task === 'seq-cls';
  const submit = () =>
    classifier
      ? classify({ runDir: selected, text: prompt })
      : generate({ runDir: selected, prompt, options });
  return (
    <div className="view">
      <header className="view-head">
        <h1>Try it</h1>
        <div className="head-actions">
          <RunPicker />
        </div>
      </header>
      <Card>
        <form
          className="stack"
          onSubmit={(e) => {
            e.preventDefault();
            void submit();
          }}
        >
          <label htmlFor="prompt">{classifier ? 'Text to classify' : 'Prompt'}</label>
          <textarea
            id="prompt"
            rows={4}
            value={prompt}
            onChange={(e) => setPrompt(e.target.value)}
            onKeyDown={(e) => {
              if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) void submit();
            }}
            placeholder={classifier ? 'A sentence…' : 'Write a prompt… (Ctrl+Enter to run)'}
          />
          {!classifier && (
            <StoreForm
              form="try"
              fields={fields}
              values={options}
              onChange={(patch) => setOptions((o) => ({ ...o, ...patch }))}
            />
          )}
          <div className="row">
            {examplePrompt && (
              <button type="button" onClick={() => setPrompt(examplePrompt)} data-testid="try-example">
                Use a validation example
              </button>
            )}
            <button
              type="submit"
              className="primary"
              disabled={busy || invalid || !prompt.trim()}
              data-testid="try-run"
            >
              {busy ? 'Running…' : classifier ? 'Classify' : 'Generate'}
            </button>
          </div>
        </form>
        <ErrorNote area="try" />
      </Card>
      {generated && !classifier && (
        <div className="grid-2" data-testid="try-output">
          <Card title="Base model">
            <pre className="generation">
              <span className="muted">{prompt}</span>
              {generated.base.text || <em className="muted"> ⏎ (end of text at once)</em>}
            </pre>
            <p className="muted small">
              {generated.base.tokens} tokens · {Math.round(generated.base.ms)} ms
            </p>
          </Card>
          <Card title="With the adapter">
            <pre className="generation" data-testid="adapted-text">
              <span className="muted">{prompt}</span>
              {generated.adapted.text || <em className="muted"> ⏎ (end of text at once)</em>}
            </pre>
            <p className="muted small">
              {generated.adapted.tokens} tokens · {Math.round(generated.adapted.ms)} ms ·{' '}
              {generated.checkpoint}
            </p>
          </Card>
        </div>
      )}
      {classified && classifier && (
        <div className="grid-2" data-testid="try-output">
          <Card title="Base model">
            <Probabilities result={classified.base} />
          </Card>
          <Card title="With the adapter">
            <Probabilities result={classified.adapted} />
          </Card>
        </div>
      )}
    </div>
  );
}
