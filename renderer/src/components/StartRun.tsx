import { useMemo, useState } from 'react';
import { useStudio } from '../context.ts';
import { type SanityWarning, sanityWarnings } from '../lib/sanity.ts';
import { formErrors, isActive } from '../store.ts';

/** The sanity warnings of the settings the next run would use. */
export function useSanityWarnings(): SanityWarning[] {
  const draft = useStudio((s) => s.draft);
  const model = useStudio((s) => s.model);
  const budget = useStudio((s) => s.budget);
  const projectTraining = useStudio((s) => s.project?.training);
  const trainingDraft = useStudio((s) => s.trainingDraft);
  const trainExamples = useStudio((s) => s.preview?.trainCount ?? null);
  const machineMemoryBytes = useStudio((s) => s.appInfo?.memoryBytes ?? null);
  return useMemo(
    () =>
      draft
        ? sanityWarnings({
            method: draft.method,
            config: draft.config,
            model,
            budget,
            training: { ...projectTraining, ...trainingDraft },
            trainExamples,
            machineMemoryBytes,
          })
        : [],
    [draft, model, budget, projectTraining, trainingDraft, trainExamples, machineMemoryBytes],
  );
}

/**
 * The one way to start a run, wherever it sits: disabled while a settings form holds text that is not a
 * valid value (saying which), and, when the settings earn sanity warnings, asking once more before starting.
 */
export function StartRun({ label, testId }: { label: string; testId: string }) {
  const project = useStudio((s) => s.project);
  const busy = useStudio((s) => Boolean(s.busy.train || s.busy.adapter));
  const active = useStudio((s) => s.runs.some((r) => isActive(r)));
  const fieldErrors = useStudio((s) => s.fieldErrors);
  const startRun = useStudio((s) => s.startRun);
  const warnings = useSanityWarnings();
  const [confirming, setConfirming] = useState(false);
  const blocking = formErrors({ fieldErrors }, 'adapter', 'training');
  const messages = [...new Set(warnings.map((w) => w.message))];
  const start = () => {
    setConfirming(false);
    void startRun();
  };
  return (
    <div className="start-run">
      <button
        type="button"
        className="primary"
        disabled={!project || busy || active || blocking.length > 0}
        onClick={() => (messages.length > 0 ? setConfirming(true) : start())}
        data-testid={testId}
        title={active ? 'a run of this project is in progress' : 'start a new run with these settings'}
      >
        {label}
      </button>
      {blocking.length > 0 && (
        <div className="start-blocked small" data-testid="start-blocked">
          Fix {blocking.length === 1 ? 'this setting' : `these ${blocking.length} settings`} first:
          <ul>
            {blocking.map((e) => (
              <li key={e}>{e}</li>
            ))}
          </ul>
        </div>
      )}
      {confirming && blocking.length === 0 && (
        <div
          className="start-warnings"
          role="alertdialog"
          aria-label="before starting"
          data-testid="start-warnings"
        >
          <strong>
            Before starting:{' '}
            {messages.length === 1 ? 'one setting looks off' : `${messages.length} settings look off`}
          </strong>
          <ul>
            {messages.map((m) => (
              <li key={m}>{m}</li>
            ))}
          </ul>
          <div className="btn-row">
            <button type="button" onClick={() => setConfirming(false)} data-testid="start-back">
              Back to the settings
            </button>
            <button type="button" className="primary" onClick={start} data-testid="start-anyway">
              Start anyway
            </button>
          </div>
        </div>
      )}
    </div>
  );
}
