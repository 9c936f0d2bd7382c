import { parseArgs } from 'node:util';

/** One option of a CLI command; `parseArgs` semantics plus a description for `--help`. */
export interface OptionSpec {
  type: 'string' | 'boolean';
  description: string;
  short?: string;
  multiple?: boolean;
  default?: string | boolean;
  /** Placeholder shown in help, e.g. `<dir>`. */
  value?: string;
}

export interface CommandIO {
  out: (text: string) => void;
  err: (text: string) => void;
  /** True when stdout is a terminal: progress bars are drawn only then. */
  isTTY: boolean;
}

export interface ParsedArgs {
  values: Record<string, string | boolean | string[] | undefined>;
  positionals: string[];
}

export interface Command {
  name: string;
  summary: string;
  /** Usage line after `studio <name>`, e.g. `<model-dir> [--json]`. */
  usage: string;
  options: Record<string, OptionSpec>;
  /** Returns the process exit code. Throwing a `CliError` prints its one-line message. */
  run(args: ParsedArgs, io: CommandIO): Promise<number>;
}

/** An expected failure: printed as one line, exit code 1 (2 for usage errors). */
export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode = 1,
  ) {
    super(message);
    this.name = 'CliError';
  }
}

export const jsonOption: OptionSpec = { type: 'boolean', description: 'machine-readable JSON output' };

export function parseCommandArgs(command: Command, argv: string[]): ParsedArgs {
  const options: Record<string, { type: 'string' | 'boolean'; short?: string; multiple?: boolean }> = {};
  for (const [name, spec] of Object.entries(command.options)) {
    // node's parseArgs rejects `short: undefined`, so optional fields are set only when given
    options[name] = {
      type: spec.type,
      ...(spec.short !== undefined ? { short: spec.short } : {}),
      ...(spec.multiple !== undefined ? { multiple: spec.multiple } : {}),
    };
  }
  try {
    const { values, positionals } = parseArgs({
      args: joinNegativeValues(command, argv),
      options,
      allowPositionals: true,
      strict: true,
    });
    const withDefaults: ParsedArgs['values'] = { ...values } as ParsedArgs['values'];
    for (const [name, spec] of Object.entries(command.options)) {
      if (withDefaults[name] === undefined && spec.default !== undefined) withDefaults[name] = spec.default;
    }
    return { values: withDefaults, positionals };
  } catch (error) {
    const message = (error as Error).message;
    const unknown = /^Unknown option '([^']+)'/.exec(message);
    if (unknown) {
      throw new CliError(`unknown option ${unknown[1]} (see \`studio ${command.name} --help\`)`, 2);
    }
    throw new CliError(message.split('. ')[0], 2);
  }
}

/**
 * `--r -1` as `--r=-1`: node's parseArgs takes a value that starts with `-` for an option, so a negative
 * number after a string option would be refused as ambiguous instead of reaching the config check.
 */
function joinNegativeValues(command: Command, argv: string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const name = argv[i].startsWith('--') ? argv[i].slice(2) : null;
    const next = argv[i + 1];
    if (name && command.options[name]?.type === 'string' && next !== undefined && /^-\.?\d/.test(next)) {
      out.push(`${argv[i]}=${next}`);
      i++;
    } else {
      out.push(argv[i]);
    }
  }
  return out;
}

export function formatHelp(command: Command): string {
  const lines = [`studio ${command.name} ${command.usage}`.trimEnd(), '', command.summary, ''];
  const entries = Object.entries(command.options);
  const heads = entries.map(([name, spec]) => {
    const short = spec.short ? `-${spec.short}, ` : '    ';
    const value = spec.type === 'string' ? ` ${spec.value ?? '<value>'}` : '';
    return `  ${short}--${name}${value}`;
  });
  const help = '  -h, --help';
  const width = Math.max(help.length, ...heads.map((h) => h.length)) + 2;
  lines.push('Options:');
  entries.forEach(([, spec], i) => {
    const def = spec.default !== undefined && spec.default !== false ? ` (default: ${spec.default})` : '';
    lines.push(`${heads[i].padEnd(width)}${spec.description}${def}`);
  });
  lines.push(`${help.padEnd(width)}show this help`);
  return lines.join('\n');
}

/** Reads a string option; throws a usage error when it is required and missing. */
export function stringArg(args: ParsedArgs, name: string, required: true): string;
export function stringArg(args: ParsedArgs, name: string, required?: false): string | undefined;
export function stringArg(args: ParsedArgs, name: string, required = false): string | undefined {
  const value = args.values[name];
  if (value === undefined || value === '') {
    if (required) throw new CliError(`missing required option --${name}`, 2);
    return undefined;
  }
  if (typeof value !== 'string') throw new CliError(`option --${name} takes a value`, 2);
  return value;
}

/** Reads a numeric option with a clear error for non-numbers. */
export function numberArg(args: ParsedArgs, name: string): number | undefined {
  const raw = stringArg(args, name);
  if (raw === undefined) return undefined;
  const value = Number(raw);
  if (!Number.isFinite(value)) throw new CliError(`option --${name} must be a number, got "${raw}"`, 2);
  return value;
}

export function positional(args: ParsedArgs, index: number, what: string): string {
  const value = args.positionals[index];
  if (value === undefined) throw new CliError(`missing ${what}`, 2);
  return value;
}
