import { useEffect, useState } from 'react';
import { type Field, fieldText, parseFieldValue } from '../lib/schemaForm.ts';

function TextField({
  field,
  value,
  onChange,
}: {
  field: Field;
  value: unknown;
  onChange: (v: unknown) => void;
}) {
  const [text, setText] = useState(fieldText(value));
  const [error, setError] = useState<string | null>(null);
  useEffect(() => setText(fieldText(value)), [value]);
  const commit = (next: string) => {
    const parsed = parseFieldValue(field, next);
    setError(parsed.error ?? null);
    if (!parsed.error) onChange(parsed.value);
  };
  const numeric = field.kind === 'number' || field.kind === 'integer';
  return (
    <>
      <input
        id={`field-${field.key}`}
        name={field.key}
        type={numeric ? 'number' : 'text'}
        inputMode={numeric ? 'decimal' : undefined}
        min={field.minimum}
        max={field.maximum}
        step={field.kind === 'integer' ? 1 : 'any'}
        value={text}
        placeholder={
          field.default !== undefined ? fieldText(field.default) : field.optional ? 'optional' : ''
        }
        aria-invalid={error ? true : undefined}
        onChange={(e) => {
          setText(e.target.value);
          if (numeric) commit(e.target.value);
        }}
        onBlur={(e) => commit(e.target.value)}
        onKeyDown={(e) => {
          if (e.key === 'Enter') commit((e.target as HTMLInputElement).value);
        }}
      />
      {error && <span className="field-error">{error}</span>}
    </>
  );
}

/** A form generated from a method's schema: one control per field, the schema's description as its tooltip. */
export function SchemaForm({
  fields,
  values,
  onChange,
  issues,
}: {
  fields: Field[];
  values: Record<string, unknown>;
  onChange: (patch: Record<string, unknown>) => void;
  issues?: Record<string, string>;
}) {
  return (
    <div className="schema-form">
      {fields.map((field) => {
        const value = values[field.key] ?? field.default;
        return (
          <div className="field" key={field.key} data-field={field.key}>
            <label htmlFor={`field-${field.key}`} title={field.description}>
              {field.label}
              {field.description && (
                <span className="tip" role="img" aria-label={field.description} title={field.description}>
                  ?
                </span>
              )}
            </label>
            {field.kind === 'boolean' ? (
              <input
                id={`field-${field.key}`}
                type="checkbox"
                checked={Boolean(value)}
                onChange={(e) => onChange({ [field.key]: e.target.checked })}
              />
            ) : field.kind === 'enum' ? (
              <select
                id={`field-${field.key}`}
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
              <TextField field={field} value={value} onChange={(v) => onChange({ [field.key]: v })} />
            )}
            {field.description && <span className="field-help">{field.description}</span>}
            {issues?.[field.key] && <span className="field-error">{issues[field.key]}</span>}
          </div>
        );
      })}
    </div>
  );
}
