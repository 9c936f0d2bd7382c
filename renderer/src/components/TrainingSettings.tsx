import { type ReactNode, useEffect, useMemo, useState } from 'react';
import type { SettingField } from '../../../engine/common/contract.ts';
import { useStudio } from '../context.ts';
import { warningsByField } from '../lib/sanity.ts';
import { describeType, type Field } from '../lib/schemaForm.ts';
import { formErrors } from '../store.ts';
import { ErrorNote } from './common.tsx';
import { StoreForm } from './SchemaForm.tsx';
import { useSanityWarnings } from './StartRun.tsx';

/**
 * A training setting as a form field. Empty text means "not set" only where the schema has no default and
 * the project sets nothing: anywhere else an empty field would silently fall back to another value.
 */
function fieldOf(setting: SettingField, project: Record<string, unknown>): Field {
  const schema = setting.schema as Record<string, unknown>;
  return {
    key: setting.key,
    label: setting.label,
    unit: setting.unit,
    description: setting.help,
    default: schema.default,
    optional: !('default' in schema) && !(setting.key in project),
    nullable: false,
    ...describeType(schema),
  };
}

/** Folded settings: they unfold by themselves when one is wrong or warned about, and fold only when asked. */
function Fold({ summary, issue, children }: { summary: string; issue: boolean; children: ReactNode }) {
  const [open, setOpen] = useState(issue);
  useEffect(() => {
    if (issue) setOpen(true);
  }, [issue]);
  return (
    <details open={open} onToggle={(e) => setOpen(e.currentTarget.open)}>
      <summary className="small">{summary}</summary>
      {children}
    </details>
  );
}

/** The settings of the next run in plain words, grouped; the rarely changed ones folded under each group. */
export function TrainingSettings() {
  const settings = useStudio((s) => s.trainingFields);
  const groups = useStudio((s) => s.trainingGroups);
  const project = useStudio((s) => s.project?.training ?? null);
  const draft = useStudio((s) => s.trainingDraft);
  const fieldErrors = useStudio((s) => s.fieldErrors);
  const setTraining = useStudio((s) => s.setTraining);
  const saveTraining = useStudio((s) => s.saveTraining);
  const resetForm = useStudio((s) => s.resetForm);
  const busy = useStudio((s) => Boolean(s.busy.training));
  const warnings = warningsByField(useSanityWarnings(), 'training');
  const fields = useMemo(() => settings.map((f) => fieldOf(f, project ?? {})), [settings, project]);
  const hasRuns = useStudio((s) => s.runs.length > 0);
  const pending = Object.keys(draft).length > 0 || formErrors({ fieldErrors }, 'training').length > 0;
  // folded while a run's curves are the thing to watch, unless something here is changed or wrong
  const [open, setOpen] = useState(!hasRuns || pending);
  useEffect(() => {
    if (pending) setOpen(true);
  }, [pending]);
  if (!project) return null;
  const values = { ...project, ...draft };
  const byKey = new Map(settings.map((f) => [f.key, f]));
  const form = (list: Field[]) => (
    <StoreForm form="training" fields={list} values={values} onChange={setTraining} warnings={warnings} />
  );
  const changed = Object.keys(draft).length;
  const invalid = formErrors({ fieldErrors }, 'training').length;
  const issueIn = (keys: string[]) => keys.some((k) => fieldErrors[`training:${k}`] || warnings[k]?.length);
  return (
    <details
      className="card training-settings"
      data-testid="training-settings"
      open={open}
      onToggle={(e) => setOpen(e.currentTarget.open)}
    >
      <summary className="card-head">
        <h2>Settings of the next run</h2>
        <div className="card-actions">
          <span className="muted small">
            {changed === 0 ? 'as in the project' : `${changed} changed for the next run`}
          </span>
          <button
            type="button"
            disabled={changed === 0 || invalid > 0 || busy}
            onClick={() => void saveTraining()}
            title="write these settings into project.json"
          >
            Save to project
          </button>
          <button
            type="button"
            disabled={changed === 0 && invalid === 0}
            onClick={() => {
              resetForm('training');
              setTraining(Object.fromEntries(Object.keys(draft).map((k) => [k, undefined])));
            }}
          >
            Reset
          </button>
        </div>
      </summary>
      <ErrorNote area="training" />
      <div className="settings-groups">
        {groups.map((group) => {
          const inGroup = fields.filter((f) => byKey.get(f.key)?.group === group.id);
          const basic = inGroup.filter((f) => !byKey.get(f.key)?.advanced);
          const folded = inGroup.filter((f) => byKey.get(f.key)?.advanced);
          return (
            <fieldset key={group.id} className="settings-group" data-group={group.id}>
              <legend>{group.label}</legend>
              {form(basic)}
              {folded.length > 0 && (
                <Fold
                  summary={`More ${group.label.toLowerCase()} settings (${folded.length})`}
                  issue={issueIn(folded.map((f) => f.key))}
                >
                  {form(folded)}
                </Fold>
              )}
            </fieldset>
          );
        })}
      </div>
    </details>
  );
}
