import { useState } from 'react';
import type { Output } from '../../../engine/api/contract.ts';
import { Card, Empty, ErrorNote, RunPicker } from '../components/common.tsx';
import { useStudio } from '../context.ts';

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
  const [mode, setMode] = useState<'greedy' | 'sampled'>('greedy');
  const [maxNewTokens, setMaxNewTokens] = useState(32);
  const [temperature, setTemperature] = useState(0.8);
  const [topK, setTopK] = useState(40);
  const [seed, setSeed] = useState(0);
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
      : generate({ runDir: selected, prompt, options: { mode, maxNewTokens, temperature, topK, seed } });
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
            <div className="row wrap">
              <label className="inline-field">
                <span>Decoding</span>
                <select value={mode} onChange={(e) => setMode(e.target.value as typeof mode)}>
                  <option value="greedy">greedy</option>
                  <option value="sampled">sampled</option>
                </select>
              </label>
              <label className="inline-field">
                <span>Max new tokens</span>
                <input
                  type="number"
                  min={1}
                  max={512}
                  value={maxNewTokens}
                  onChange={(e) => setMaxNewTokens(Number(e.target.value))}
                />
              </label>
              {mode === 'sampled' && (
                <>
                  <label className="inline-field">
                    <span>Temperature</span>
                    <input
                      type="number"
                      step={0.05}
                      min={0.05}
                      max={5}
                      value={temperature}
                      onChange={(e) => setTemperature(Number(e.target.value))}
                    />
                  </label>
                  <label className="inline-field">
                    <span>Top-k</span>
                    <input
                      type="number"
                      min={0}
                      max={1000}
                      value={topK}
                      onChange={(e) => setTopK(Number(e.target.value))}
                    />
                  </label>
                  <label className="inline-field">
                    <span>Seed</span>
                    <input type="number" value={seed} onChange={(e) => setSeed(Number(e.target.value))} />
                  </label>
                </>
              )}
            </div>
          )}
          <div className="row">
            {examplePrompt && (
              <button type="button" onClick={() => setPrompt(examplePrompt)} data-testid="try-example">
                Use a validation example
              </button>
            )}
            <button type="submit" className="primary" disabled={busy || !prompt.trim()} data-testid="try-run">
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
