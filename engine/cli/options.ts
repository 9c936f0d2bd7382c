import { configFromFlags, FlagError, schemaFlags } from '../adapters/flags.ts';
import { getMethod, methodNames } from '../adapters/registry.ts';
import { TrainingSettings } from '../common/project-schema.ts';
import { CliError, type OptionSpec, type ParsedArgs } from './command.ts';

/**
 * CLI flags of every training setting, generated from the `TrainingSettings` schema (so the CLI and
 * project.json cannot drift apart): `learningRate` is `--learning-rate`.
 */
export function trainingOptions(): Record<string, OptionSpec> {
  const out: Record<string, OptionSpec> = {};
  for (const f of schemaFlags(TrainingSettings)) {
    const def = f.defaultText !== undefined ? ` (default ${f.defaultText})` : '';
    out[f.flag] = { type: f.type, description: `${f.description}${def}`, value: f.value };
  }
  return out;
}

/** Training settings given on the command line (only those given), before schema validation. */
export function trainingFromArgs(args: ParsedArgs): Record<string, unknown> {
  try {
    return configFromFlags(TrainingSettings, args.values);
  } catch (error) {
    if (error instanceof FlagError) throw new CliError(error.message, 2);
    throw error;
  }
}

/** Flags of every registered method's config, each listed once with the methods it belongs to. */
export function methodOptions(reserved: Record<string, OptionSpec>): {
  options: Record<string, OptionSpec>;
  owners: Map<string, string[]>;
} {
  const options: Record<string, OptionSpec> = {};
  const owners = new Map<string, string[]>();
  for (const name of methodNames()) {
    for (const f of schemaFlags(getMethod(name).schema)) {
      if (f.flag in reserved)
        throw new Error(`method flag --${f.flag} of ${name} collides with a command option`);
      const list = owners.get(f.flag);
      if (list) {
        list.push(name);
        if (options[f.flag].type !== f.type) options[f.flag] = { ...options[f.flag], type: 'string' };
        continue;
      }
      owners.set(f.flag, [name]);
      const def = f.defaultText !== undefined ? ` (default ${f.defaultText})` : '';
      options[f.flag] = { type: f.type, description: `${f.description}${def}`, value: f.value };
    }
  }
  for (const [flag, list] of owners) {
    if (list.length < methodNames().length) options[flag].description += ` [${list.join(', ')}]`;
  }
  return { options, owners };
}

/** The method config input from flags; a flag of another method is a usage error. */
export function methodConfigFromArgs(
  method: string,
  args: ParsedArgs,
  owners: Map<string, string[]>,
): Record<string, unknown> {
  const definition = getMethod(method);
  const own = new Set(schemaFlags(definition.schema).map((f) => f.flag));
  for (const [flag, methods] of owners) {
    const value = args.values[flag];
    if (value !== undefined && value !== false && !own.has(flag)) {
      throw new CliError(
        `--${flag} is not an option of ${definition.name} (it belongs to ${methods.join(', ')})`,
        2,
      );
    }
  }
  try {
    return configFromFlags(definition.schema, args.values);
  } catch (error) {
    if (error instanceof FlagError) throw new CliError(error.message, 2);
    throw error;
  }
}

/**
 * The config of each compared method from the same flags: a flag goes to the methods that have it, and a flag
 * that none of them has is a usage error.
 */
export function methodConfigsFromArgs(
  methods: readonly string[],
  args: ParsedArgs,
  owners: Map<string, string[]>,
): { method: string; config: Record<string, unknown> }[] {
  for (const [flag, list] of owners) {
    const value = args.values[flag];
    if (value !== undefined && value !== false && !list.some((m) => methods.includes(m))) {
      throw new CliError(
        `--${flag} is not an option of ${methods.join(', ')} (it belongs to ${list.join(', ')})`,
        2,
      );
    }
  }
  return methods.map((name) => {
    const definition = getMethod(name);
    try {
      return { method: definition.name, config: configFromFlags(definition.schema, args.values) };
    } catch (error) {
      if (error instanceof FlagError) throw new CliError(error.message, 2);
      throw error;
    }
  });
}
