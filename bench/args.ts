/** `npm run bench` flags, parsed without side effects (bench.ts acts on them; args.test.ts checks them). */
export interface BenchOptions {
  /** Print one JSON document on stdout and write bench/results/latest.json. */
  json: boolean;
  /** Fewer sizes and repetitions, for a quick check. */
  quick: boolean;
  /** Sections to run (`--sections` or `--only`, comma-separated); every section when unset. */
  sections?: string[];
  /** Let the matmul section take a software WebGPU adapter. */
  allowSoftwareGpu: boolean;
  /** The `shapes` section: which shapes (`--shapes qwen2.5-0.5b,llama-3.2-1b`); every shape when unset. */
  shapes?: string[];
  /** The `shapes` section: batch, tokens per example and timed steps for every shape, overriding the table. */
  batch?: number;
  seq?: number;
  steps?: number;
  /** The `shapes` section: which frozen-weight dtypes to run (`--dtypes bf16,fp32`); both when unset. */
  dtypes?: ShapeDtype[];
}

export type ShapeDtype = 'bf16' | 'fp32';
export const shapeDtypes: ShapeDtype[] = ['bf16', 'fp32'];

export const BENCH_USAGE =
  'usage: npm run bench -- [--json] [--quick] [--sections matmul,lora,…] [--allow-software-gpu] ' +
  '[--shapes qwen2.5-0.5b,…] [--dtypes bf16,fp32] [--batch N] [--seq N] [--steps N]';

export class BenchArgsError extends Error {}

function list(flag: string, value: string | undefined): string[] {
  const items = (value ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  if (value === undefined || value.startsWith('--') || items.length === 0) {
    throw new BenchArgsError(`${flag} needs a comma-separated list`);
  }
  return items;
}

function positiveInt(flag: string, value: string | undefined): number {
  const n = Number(value);
  if (value === undefined || !/^\d+$/.test(value) || !Number.isSafeInteger(n) || n < 1) {
    throw new BenchArgsError(
      `${flag} needs a whole number ≥ 1, got ${value === undefined ? 'nothing' : `"${value}"`}`,
    );
  }
  return n;
}

/** Parses the flags after `npm run bench --`; an unknown flag or a bad value throws `BenchArgsError`. */
export function parseBenchArgs(argv: string[]): BenchOptions {
  const o: BenchOptions = { json: false, quick: false, allowSoftwareGpu: false };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i];
    const value = () => argv[++i];
    switch (flag) {
      case '--json':
        o.json = true;
        break;
      case '--quick':
        o.quick = true;
        break;
      case '--allow-software-gpu':
        o.allowSoftwareGpu = true;
        break;
      case '--only':
      case '--sections':
        o.sections = list(flag, value());
        break;
      case '--shapes':
        o.shapes = list(flag, value());
        break;
      case '--dtypes': {
        const dtypes = list(flag, value());
        const bad = dtypes.filter((d) => !(shapeDtypes as string[]).includes(d));
        if (bad.length) {
          throw new BenchArgsError(`--dtypes: unknown ${bad.join(', ')}; expected ${shapeDtypes.join(', ')}`);
        }
        o.dtypes = dtypes as ShapeDtype[];
        break;
      }
      case '--batch':
        o.batch = positiveInt(flag, value());
        break;
      case '--seq':
        o.seq = positiveInt(flag, value());
        if (o.seq < 2) throw new BenchArgsError('--seq needs at least 2 tokens (one prediction target)');
        break;
      case '--steps':
        o.steps = positiveInt(flag, value());
        break;
      default:
        throw new BenchArgsError(`unknown argument "${flag}"`);
    }
  }
  return o;
}
