/** A form field derived from one property of a method's JSON Schema (generated from its zod schema). */
export interface Field {
  key: string;
  label: string;
  kind: 'number' | 'integer' | 'boolean' | 'enum' | 'string' | 'json';
  description?: string;
  default?: unknown;
  minimum?: number;
  maximum?: number;
  options?: (string | number | boolean | null)[];
  optional: boolean;
  nullable: boolean;
}

type Schema = Record<string, unknown>;

function nonNull(variants: Schema[]): Schema[] {
  return variants.filter((v) => v.type !== 'null');
}

function describeType(schema: Schema): Pick<Field, 'kind' | 'minimum' | 'maximum' | 'options'> {
  if (Array.isArray(schema.enum)) return { kind: 'enum', options: schema.enum as Field['options'] };
  if ('const' in schema) return { kind: 'enum', options: [schema.const as string] };
  const variants = (schema.anyOf ?? schema.oneOf) as Schema[] | undefined;
  if (variants) {
    const real = nonNull(variants);
    if (real.length === 1) return describeType(real[0]);
    const choices = (v: Schema): Field['options'] | null => {
      if (Array.isArray(v.enum)) return v.enum as Field['options'];
      if ('const' in v) return [v.const as string];
      if (v.type === 'boolean') return [true, false];
      return null;
    };
    const lists = real.map(choices);
    if (lists.every((l) => l !== null)) return { kind: 'enum', options: lists.flat() as Field['options'] };
    return { kind: 'json' };
  }
  const bound = (x: unknown) => (typeof x === 'number' ? x : undefined);
  const minimum = bound(schema.minimum) ?? bound(schema.exclusiveMinimum);
  const maximum = bound(schema.maximum) ?? bound(schema.exclusiveMaximum);
  switch (schema.type) {
    case 'integer':
      return { kind: 'integer', minimum, maximum };
    case 'number':
      return { kind: 'number', minimum, maximum };
    case 'boolean':
      return { kind: 'boolean' };
    case 'string':
      return { kind: 'string' };
    default:
      return { kind: 'json' };
  }
}

function isNullable(schema: Schema): boolean {
  const variants = (schema.anyOf ?? schema.oneOf) as Schema[] | undefined;
  return schema.type === 'null' || Boolean(variants?.some((v) => v.type === 'null'));
}

/** `lora_alpha` → "lora alpha", `useRslora` → "use rslora". */
export function humanize(key: string): string {
  return key
    .replace(/([a-z0-9])([A-Z])/g, '$1 $2')
    .replace(/_/g, ' ')
    .toLowerCase();
}

export function fieldsFromSchema(schema: Schema, skip: (key: string) => boolean = () => false): Field[] {
  const properties = (schema.properties ?? {}) as Record<string, Schema>;
  const required = new Set((schema.required ?? []) as string[]);
  return Object.entries(properties)
    .filter(([key]) => !skip(key))
    .map(([key, prop]) => ({
      key,
      label: (prop.title as string | undefined) ?? humanize(key),
      description: prop.description as string | undefined,
      default: prop.default,
      optional: !required.has(key) || 'default' in prop,
      nullable: isNullable(prop),
      ...describeType(prop),
    }));
}

/** Parses a field's text input; returns an error message for bad input instead of throwing. */
export function parseFieldValue(field: Field, text: string): { value?: unknown; error?: string } {
  const trimmed = text.trim();
  if (trimmed === '') {
    if (field.nullable) return { value: null };
    if (field.optional) return { value: undefined };
    return { error: `${field.label} is required` };
  }
  if (field.kind === 'number' || field.kind === 'integer') {
    const value = Number(trimmed);
    if (!Number.isFinite(value)) return { error: `${field.label} must be a number` };
    if (field.kind === 'integer' && !Number.isInteger(value))
      return { error: `${field.label} must be a whole number` };
    if (field.minimum !== undefined && value < field.minimum)
      return { error: `${field.label} must be ≥ ${field.minimum}` };
    if (field.maximum !== undefined && value > field.maximum)
      return { error: `${field.label} must be ≤ ${field.maximum}` };
    return { value };
  }
  if (field.kind === 'json') {
    try {
      return { value: JSON.parse(trimmed) };
    } catch {
      return { value: trimmed };
    }
  }
  return { value: trimmed };
}

export function fieldText(value: unknown): string {
  if (value === undefined || value === null) return '';
  if (typeof value === 'object') return JSON.stringify(value);
  return String(value);
}
