import { useState } from 'react';
import { useStudio } from '../context.ts';
import { type Field, fieldText, parseFieldValue } from '../lib/schemaForm.ts';

/** Text typed into a field that is not (yet) its value: shown as typed, with the reason when it is invalid. */
export interface Draft {
  text: string;
  error: string | null;
}

function sameValue(a: unknown, b: unknown): boolean {
  return a === b || (a === undefined && b === null) || (a === null && b === undefined);
}

/**
 * A typed field (number, text, JSON). It never rewrites what the user types: each keystroke is parsed, a
 * valid value goes to `onChange`, and invalid text stays visible, marked, with the reason. A plain text input
 * with a decimal keyboard, since a number input hands over "" for text it cannot read (`2e`, `0.`).
 */
export function TextField({
  id,
  field,
  value,
  onChange,
  draft,
  onDraft,
}: {
  id: string;
  field: Field;
  value: unknown;
  onChange: (v: unknown) => void;
  draft?: Draft;
  onDraft: (draft: Draft | undefined) => void;
}) {
  // typed text wins while it is invalid or still reads as the value (`2e-4` for 0.0002); a value changed
  // elsewhere (a reset, another window) shows as its own text
  const shown =
    draft && (draft.error !== null || sameValue(parseFieldValue(field, draft.text).value, value))
      ? draft.text
      : fieldText(value);
  const numeric = field.kind === 'number' || field.kind === 'integer';
  const errorId = `${id}-error`;
  return (
    <>
      <input
        id={id}
        name={field.key}
        type="text"
        inputMode={
          numeric
            ? field.kind === 'integer' && (field.minimum ?? -1) >= 0
              ? 'numeric'
              : 'decimal'
            : undefined
        }
        spellCheck={false}
        autoComplete="off"
        data-numeric={numeric ? field.kind : undefined}
        value={shown}
        placeholder={field.default !== undefined ? fieldText(field.default) : field.optional ? 'not set' : ''}
        aria-invalid={draft?.error ? true : undefined}
        aria-describedby={draft?.error ? errorId : undefined}
        onChange={(e) => {
          const text = e.target.value;
          const parsed = parseFieldValue(field, text);
          if (parsed.error) {
            onDraft({ text, error: parsed.error });
            return;
          }
          onDraft(fieldText(parsed.value) === text ? undefined : { text, error: null });
          if (!sameValue(parsed.value, value)) onChange(parsed.value);
        }}
      />
      {draft?.error && (
        <span className="field-error" id={errorId} data-testid="field-error">
          {draft.error}
        </span>
      )}
    </>
  );
}

/** Drafts kept in the component, for forms that do not need them to outlive it. */
function useLocalDrafts() {
  const [drafts, setDrafts] = useState<Record<string, Draft>>({});
  const onDraft = (key: string, draft: Draft | undefined) =>
    setDrafts((d) => {
      const next = { ...d };
      if (draft) next[key] = draft;
      else delete next[key];
      return next;
    });
  return { drafts, onDraft };
}

export interface SchemaFormProps {
  fields: Field[];
  values: Record<string, unknown>;
  onChange: (patch: Record<string, unknown>) => void;
  /** Typed text per field; without it the form keeps its own. */
  drafts?: Record<string, Draft>;
  onDraft?: (key: string, draft: Draft | undefined) => void;
  /** Sanity warnings per field: legal, but probably not what was meant. */
  warnings?: Record<string, string[]>;
  /** Prefix of the input ids (two forms on one page). */
  idPrefix?: string;
}

/**
 * A form generated from a schema: one control per field, labelled in words with its unit, the field name
 * (what project.json, the API and the CLI use) as a secondary hint, and the schema's description as help.
 */
export function SchemaForm({
  fields,
  values,
  onChange,
  drafts,
  onDraft,
  warnings,
  idPrefix = 'field',
}: SchemaFormProps) {
  const local = useLocalDrafts();
  const draftOf = drafts ?? local.drafts;
  const setDraft = onDraft ?? local.onDraft;
  return (
    <div className="schema-form">
      {fields.map((field) => {
        const value = values[field.key] ?? field.default;
        const id = `${idPrefix}-${field.key}`;
        return (
          <div className="field" key={field.key} data-field={field.key}>
            <label htmlFor={id}>
              <span className="field-label">{field.label}</span>
              {field.unit && <span className="field-unit"> ({field.unit})</span>}
              {field.label !== field.key && <code className="field-key">{field.key}</code>}
            </label>
            {field.kind === 'boolean' ? (
              <input
                id={id}
                type="checkbox"
                checked={Boolean(value)}
                onChange={(e) => onChange({ [field.key]: e.target.checked })}
              />
            ) : field.kind === 'enum' ? (
              <select
                id={id}
                value={fieldText(value)}
                onChange={(e) => {
                  const option = field.options?.find((o) => fieldText(o) === e.target.value);
                  onChange({ [field.key]: option });
                }}
              >
                {field.options?.map((o) => (
                  <option key={fieldText(o)} value={fieldText(o)}>
                    {fieldText(o) || '—'}
                  </option>
                ))}
              </select>
            ) : (
              <TextField
                id={id}
                field={field}
                // an emptied field stays empty (its placeholder shows the default it falls back to)
                value={values[field.key]}
                onChange={(v) => onChange({ [field.key]: v })}
                draft={draftOf[field.key]}
                onDraft={(d) => setDraft(field.key, d)}
              />
            )}
            {warnings?.[field.key]?.map((w) => (
              <span key={w} className="field-warning" data-testid="field-warning">
                {w}
              </span>
            ))}
            {field.description && <span className="field-help">{field.description}</span>}
          </div>
        );
      })}
    </div>
  );
}

/** A SchemaForm whose typed text lives in the store under `form`: it outlives the view, and blocks actions. */
export function StoreForm({
  form,
  ...props
}: Omit<SchemaFormProps, 'drafts' | 'onDraft'> & { form: string }) {
  const texts = useStudio((s) => s.fieldTexts);
  const errors = useStudio((s) => s.fieldErrors);
  const setFieldText = useStudio((s) => s.setFieldText);
  const drafts: Record<string, Draft> = {};
  for (const [id, text] of Object.entries(texts)) {
    if (id.startsWith(`${form}:`)) drafts[id.slice(form.length + 1)] = { text, error: errors[id] ?? null };
  }
  return (
    <SchemaForm
      {...props}
      idPrefix={props.idPrefix ?? form}
      drafts={drafts}
      onDraft={(key, draft) => setFieldText(form, key, draft?.text, draft?.error ?? null)}
    />
  );
}
