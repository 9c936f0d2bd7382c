import type { z } from 'zod';
import { StudioError } from '../common/errors.ts';

/**
 * Command-line flags generated from a method's zod schema, so every option exists once (in the schema)
 * and the CLI, the project file and the UI share names, defaults, ranges and messages.
 */
export interface SchemaFlag {
  /** The config field (`loraAlpha`). */
  field: string;
  /** The kebab-case flag without dashes (`lora-alpha`). */
  flag: string;
  /** Boolean flags take no value; everything else is parsed from a string. */
  type: 'string' | 'boolean';
  description: string;
  /** Placeholder for help (`<number>`, `<a,b|regex>`, …). */
  value: string;
  /** The default value as help text, when the schema has one. */
  defaultText?: string;
}

interface Def {
  type: string;
  innerType?: z.ZodType;
  defaultValue?: unknown;
  options?: z.ZodType[];
  element?: z.ZodType;
  valueType?: z.ZodType;
  entries?: Record<string, string>;
  values?: unknown[];
  shape?: Record<string, z.ZodType>;
}

const defOf = (schema: z.ZodType): Def => (schema as unknown as { _zod: { def: Def } })._zod.def;

/** Strips optional/default/nullable wrappers. */
function unwrap(schema: z.ZodType): { inner: z.ZodType; defaultValue?: unknown } {
  let current = schema;
  let defaultValue: unknown;
  for (;;) {
    const def = defOf(current);
    if (def.type === 'default') {
      defaultValue = def.defaultValue;
      current = def.innerType!;
    } else if (def.type === 'optional' || def.type === 'nullable' || def.type === 'readonly') {
      current = def.innerType!;
    } else {
      return { inner: current, defaultValue };
    }
  }
}

export function kebabCase(field: string): string {
  return field.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
}

function shapeOf(schema: z.ZodType): Record<string, z.ZodType> {
  const shape = (schema as unknown as { shape?: Record<string, z.ZodType> }).shape;
  if (!shape) throw new Error('flags: a method schema must be a zod object');
  return shape;
}

function placeholder(schema: z.ZodType): string {
  const def = defOf(schema);
  switch (def.type) {
    case 'number':
      return '<number>';
    case 'boolean':
      return '<true|false>';
    case 'enum':
      return `<${Object.values(def.entries!).join('|')}>`;
    case 'literal':
      return `<${def.values!.join('|')}>`;
    case 'array':
      return `<${placeholder(def.element!).slice(1, -1)},…>`;
    case 'record':
      return '<key=value,…>';
    case 'union':
      return `<${def.options!.map((o) => placeholder(o).slice(1, -1)).join('|')}>`;
    default:
      return '<text>';
  }
}

/** One flag per top-level field of the schema. */
export function schemaFlags(schema: z.ZodType): SchemaFlag[] {
  return Object.entries(shapeOf(schema)).map(([field, fieldSchema]) => {
    const { inner, defaultValue } = unwrap(fieldSchema);
    const description = fieldSchema.description ?? inner.description ?? field;
    // A plain boolean that defaults to false is a switch; anything else takes a value.
    const isSwitch = defOf(inner).type === 'boolean' && defaultValue !== true;
    const hasDefault =
      defaultValue !== undefined &&
      !(typeof defaultValue === 'object' && Object.keys(defaultValue as object).length === 0);
    return {
      field,
      flag: kebabCase(field),
      type: isSwitch ? 'boolean' : 'string',
      description,
      value: placeholder(inner),
      ...(hasDefault && !isSwitch ? { defaultText: String(defaultValue) } : {}),
    };
  });
}

export class FlagError extends StudioError {
  constructor(message: string) {
    super('invalid_input', message);
    this.name = 'FlagError';
  }
}

/** Characters that make a target value a regex rather than a comma list of names (dots alone do not). */
const REGEX_CHARS = /[\\^$|?*+()[\]{}]/;

function parseValue(schema: z.ZodType, raw: string, flag: string): unknown {
  const def = defOf(unwrap(schema).inner);
  switch (def.type) {
    case 'number': {
      const n = Number(raw);
      if (raw.trim() === '' || !Number.isFinite(n))
        throw new FlagError(`--${flag} must be a number, got "${raw}"`);
      return n;
    }
    case 'boolean':
      if (raw === 'true') return true;
      if (raw === 'false') return false;
      throw new FlagError(`--${flag} must be true or false, got "${raw}"`);
    case 'array':
      return raw
        .split(',')
        .map((s) => s.trim())
        .filter((s) => s !== '')
        .map((s) => parseValue(def.element!, s, flag));
    case 'record': {
      if (raw.trim().startsWith('{')) {
        try {
          return JSON.parse(raw);
        } catch (error) {
          throw new FlagError(`--${flag}: invalid JSON: ${(error as Error).message}`);
        }
      }
      const out: Record<string, unknown> = {};
      for (const pair of raw.split(',').filter((s) => s.trim() !== '')) {
        const at = pair.lastIndexOf('=');
        if (at <= 0)
          throw new FlagError(`--${flag} takes key=value pairs separated by commas, got "${pair}"`);
        out[pair.slice(0, at).trim()] = parseValue(def.valueType!, pair.slice(at + 1).trim(), flag);
      }
      return out;
    }
    case 'union':
      return parseUnion(def.options!, raw, flag);
    default:
      return raw;
  }
}

function parseUnion(options: z.ZodType[], raw: string, flag: string): unknown {
  const types = options.map((o) => defOf(unwrap(o).inner));
  const has = (type: string) => types.some((d) => d.type === type);
  if ((raw === 'true' || raw === 'false') && has('boolean')) return raw === 'true';
  const literal = types.some(
    (d) =>
      (d.type === 'enum' && Object.values(d.entries!).includes(raw)) ||
      (d.type === 'literal' && d.values!.includes(raw)),
  );
  if (literal) return raw;
  const array = options.find((o) => defOf(unwrap(o).inner).type === 'array');
  const isNumeric = raw.trim() !== '' && Number.isFinite(Number(raw));
  if (has('number') && isNumeric) return Number(raw);
  if (array && has('string')) {
    // Names list (`q_proj,v_proj`) unless it looks like a regex or is a keyword such as all-linear.
    if (REGEX_CHARS.test(raw) || raw.toLowerCase() === 'all-linear') return raw;
    return parseValue(array, raw, flag);
  }
  if (array) return parseValue(array, raw, flag);
  if (has('string')) return raw;
  throw new FlagError(
    `--${flag}: cannot read "${raw}" (expected ${options.map((o) => placeholder(o)).join(' or ')})`,
  );
}

/**
 * The config input (before schema validation) from parsed flag values: only flags that were given, keyed by
 * field name. Throws `FlagError` for a value that cannot be read; range checks are the schema's.
 */
export function configFromFlags(
  schema: z.ZodType,
  values: Record<string, string | boolean | string[] | undefined>,
): Record<string, unknown> {
  const shape = shapeOf(schema);
  const config: Record<string, unknown> = {};
  for (const flag of schemaFlags(schema)) {
    const value = values[flag.flag];
    if (value === undefined || value === false) continue;
    if (flag.type === 'boolean') {
      config[flag.field] = true;
      continue;
    }
    if (typeof value !== 'string') throw new FlagError(`--${flag.flag} takes one value`);
    config[flag.field] = parseValue(shape[flag.field], value, flag.flag);
  }
  return config;
}
