/**
 * Benchmarks (not tests): `npm run bench [-- --json] [--quick] [--sections matmul,lora] [--allow-software-gpu]`
 * (`--only` is `--sections`; flags of single sections, e.g. `--shapes`, in bench/args.ts).
 * Each section lives in `bench/sections/<name>.ts` and exports `section: BenchSection`; a new file there is
 * picked up without editing this one. Figures print as tables; `--json` prints one JSON document on stdout
 * and writes it to `bench/results/latest.json`.
 */
import { mkdirSync, readdirSync } from 'node:fs';
import { arch, cpus, loadavg, platform, totalmem } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { ensureGradients } from '../engine/backends/gradients.ts';
import { writeJsonAtomic } from '../engine/io/atomic.ts';
import { BENCH_USAGE, BenchArgsError, type BenchOptions, parseBenchArgs } from './args.ts';
import { unknownShapes } from './shapes.ts';
import type { BenchRow, BenchSection } from './types.ts';

const sectionsDir = join(dirname(fileURLToPath(import.meta.url)), 'sections');
/** Backend figures first, then every other section file in name order. */
const leading = ['matmul', 'lora', 'load'];

function sectionNames(): string[] {
  const found = readdirSync(sectionsDir)
    .filter((f) => f.endsWith('.ts') && !f.endsWith('.test.ts'))
    .map((f) => f.slice(0, -3));
  return [...leading.filter((n) => found.includes(n)), ...found.filter((n) => !leading.includes(n)).sort()];
}

async function loadSection(name: string): Promise<BenchSection> {
  const mod = (await import(pathToFileURL(join(sectionsDir, `${name}.ts`)).href)) as {
    section?: BenchSection;
  };
  if (!mod.section) throw new Error(`bench/sections/${name}.ts does not export \`section\``);
  return mod.section;
}

function valueCell(r: BenchRow): string {
  const skipped = r.skipped ?? (r.details?.skipped !== undefined ? String(r.details.skipped) : undefined);
  if (skipped) return `skipped: ${skipped}`;
  if (Number.isNaN(r.value)) return `failed: ${String(r.details?.error ?? 'no value')}`;
  return `${r.value} ${r.unit}`;
}

function table(rows: BenchRow[]): string {
  const cells = rows.map((r) => [
    r.name,
    r.config,
    valueCell(r),
    [r.details?.ms !== undefined ? `${r.details.ms} ms` : '', r.note ?? ''].filter(Boolean).join('  '),
  ]);
  const head = ['measurement', 'backend / route', 'value', ''];
  const widths = head.map((h, i) => Math.max(h.length, ...cells.map((c) => c[i].length)));
  const line = (c: string[]) =>
    c
      .map((x, i) => x.padEnd(widths[i]))
      .join('  ')
      .trimEnd();
  return [line(head), line(widths.map((w) => '-'.repeat(w))), ...cells.map(line)].join('\n');
}

async function main() {
  let options: BenchOptions;
  try {
    options = parseBenchArgs(process.argv.slice(2));
  } catch (error) {
    if (!(error instanceof BenchArgsError)) throw error;
    console.error(`bench: ${error.message}\n${BENCH_USAGE}`);
    process.exit(2);
  }
  const { json, quick, sections: only } = options;
  const available = sectionNames();
  const unknown = only?.filter((n) => !available.includes(n)) ?? [];
  if (unknown.length) {
    console.error(`bench: unknown section(s) ${unknown.join(', ')}; sections: ${available.join(', ')}`);
    process.exit(2);
  }
  const badShapes = unknownShapes(options.shapes);
  if (badShapes) {
    console.error(`bench: ${badShapes}`);
    process.exit(2);
  }
  const log = (line: string) => process.stderr.write(`${line}\n`);
  // before any section module loads: training code imports tfjs-core's ESM gradients, which need the resolver
  await ensureGradients();
  const machine = {
    cpu: cpus()[0]?.model ?? 'unknown',
    cores: cpus().length,
    memoryGiB: Number((totalmem() / 2 ** 30).toFixed(1)),
    platform: `${platform()}-${arch()}`,
    node: process.version,
    // other processes skew every figure: a load above the core count means contended timings
    loadAverageAtStart: Number(loadavg()[0].toFixed(2)),
  };
  const results: { section: string; title: string; rows: BenchRow[]; error?: string }[] = [];
  for (const name of only ?? available) {
    const section = await loadSection(name);
    log(`== ${section.title}`);
    try {
      results.push({ section: name, title: section.title, rows: await section.run({ quick, log, options }) });
    } catch (error) {
      const message = (error as Error).message;
      log(`bench ${name} failed: ${message}`);
      results.push({ section: name, title: section.title, rows: [], error: message });
    }
  }
  const document = {
    date: new Date().toISOString(),
    machine: { ...machine, loadAverageAtEnd: Number(loadavg()[0].toFixed(2)) },
    quick,
    results,
  };
  if (json) {
    const out = join(dirname(fileURLToPath(import.meta.url)), 'results', 'latest.json');
    mkdirSync(dirname(out), { recursive: true });
    await writeJsonAtomic(out, document);
    process.stdout.write(`${JSON.stringify(document, null, 2)}\n`);
  } else {
    console.log(
      `machine: ${machine.cpu}, ${machine.cores} cores, ${machine.memoryGiB} GiB, ${machine.platform}, Node ${machine.node}`,
    );
    for (const r of results) {
      console.log(`\n## ${r.title}\n`);
      console.log(r.error ? `failed: ${r.error}` : table(r.rows));
    }
  }
  // native thread pools (onnxruntime, OpenBLAS, Dawn) may hold the event loop open
  process.exit(results.some((r) => r.error) ? 1 : 0);
}

await main();
