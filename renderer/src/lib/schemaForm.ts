/** A form field derived from one property of a method's JSON Schema (generated from its zod schema). */
export interface Field {
  key: string;
  label: string;
  kind: 'number' | 'integer' | 'boolean' | 'enum' | 'string' | 'json';
  description?: string;
  /** What the number counts (tokens, steps, …), shown beside the label. */
  unit?: string;
  default?: unknown;
  minimum?: number;
  maximum?: number;
  /** The bound itself is not allowed (zod's positive(), lt()). */
  exclusiveMinimum?: boolean;
  exclusiveMaximum?: boolean;
  options?: (string | number | boolean | null)[];
  /** Empty text means "not set" (the field has a default, or may be absent). */
  optional: boolean;
  nullable: boolean;
}

type Schema = Record<string, unknown>;

function nonNull(variants: Schema[]): Schema[] {
  return variants.filter((v) => v.type !== 'null');
}

type TypeInfo = Pick<
  Field,
  'kind' | 'minimum' | 'maximum' | 'exclusiveMinimum' | 'exclusiveMaximum' | 'options'
>;

export function describeType(schema: Schema): TypeInfo {
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
  const bounds = {
    minimum: bound(schema.exclusiveMinimum) ?? bound(schema.minimum),
    maximum: bound(schema.exclusiveMaximum) ?? bound(schema.maximum),
    exclusiveMinimum: bound(schema.exclusiveMinimum) !== undefined || undefined,
    exclusiveMaximum: bound(schema.exclusiveMaximum) !== undefined || undefined,
  };
  switch (schema.type) {
    case 'integer':
      return { kind: 'integer', ...bounds };
    case 'number':
      return { kind: 'number', ...bounds };
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

/** A number as people type it: decimals, exponents, a leading sign (`0.0002`, `2e-4`, `-1`, `.5`). */
const NUMBER = /^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$/;

/** Parses a typed number against a field's kind and bounds; the error names the field and the rule. */
export function parseNumber(field: Field, trimmed: string): { value?: number; error?: string } {
  if (!NUMBER.test(trimmed)) {
    const example = field.kind === 'integer' ? 'like 8' : 'like 0.0002 or 2e-4';
    return { error: `${field.label}: “${trimmed}” is not a number (type digits, ${example})` };
  }
  const value = Number(trimmed);
  if (!Number.isFinite(value)) return { error: `${field.label}: ${trimmed} is too large` };
  if (field.kind === 'integer' && !Number.isInteger(value))
    return { error: `${field.label} must be a whole number` };
  const { minimum: lo, maximum: hi } = field;
  if (lo !== undefined && (field.exclusiveMinimum ? value <= lo : value < lo))
    return { error: `${field.label} must be ${field.exclusiveMinimum ? '>' : '≥'} ${lo}` };
  if (hi !== undefined && (field.exclusiveMaximum ? value >= hi : value > hi))
    return { error: `${field.label} must be ${field.exclusiveMaximum ? '<' : '≤'} ${hi}` };
  return { value };
}

/** Parses a field's text input; returns an error message for bad input instead of throwing or guessing. */
export function parseFieldValue(field: Field, text: string): { value?: unknown; error?: string } {
  const trimmed = text.trim();
  if (trimmed === '') {
    if (field.nullable) return { value: null };
    if (field.optional) return { value: undefined };
    return { error: `${field.label} is required` };
  }
  if (field.kind === 'number' || field.kind === 'integer') return parseNumber(field, trimmed);
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
