/**
 * Benchmarks (not tests): `npm run bench [-- --json] [--quick] [--only matmul,lora] [--allow-software-gpu]`.
 * Each section lives in `bench/sections/<name>.ts` and exports `section: BenchSection`; add a file there and
 * list it below. Figures print as tables; `--json` prints one JSON document on stdout and writes it to
 * `bench/results/latest.json`.
 */
import { mkdirSync } from 'node:fs';
import { arch, cpus, platform, totalmem } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ensureGradients } from '../engine/backends/gradients.ts';
import { writeJsonAtomic } from '../engine/io/atomic.ts';
import type { BenchRow, BenchSection } from './types.ts';

const sections: Record<string, () => Promise<{ section: BenchSection }>> = {
  matmul: () => import('./sections/matmul.ts'),
  lora: () => import('./sections/lora.ts'),
  load: () => import('./sections/load.ts'),
  export: () => import('./sections/export.ts'),
  svd: () => import('./sections/svd.ts'),
};

function table(rows: BenchRow[]): string {
  const cells = rows.map((r) => [
    r.name,
    r.config,
    `${r.value} ${r.unit}`,
    r.details?.ms !== undefined ? `${r.details.ms} ms` : '',
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
  const argv = process.argv.slice(2);
  const json = argv.includes('--json');
  const quick = argv.includes('--quick');
  const onlyIndex = argv.indexOf('--only');
  const only = onlyIndex >= 0 ? argv[onlyIndex + 1]?.split(',') : undefined;
  const unknown = only?.filter((n) => !(n in sections)) ?? [];
  if (unknown.length) {
    console.error(
      `bench: unknown section(s) ${unknown.join(', ')}; sections: ${Object.keys(sections).join(', ')}`,
    );
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
  };
  const results: { section: string; title: string; rows: BenchRow[]; error?: string }[] = [];
  for (const name of only ?? Object.keys(sections)) {
    const { section } = await sections[name]();
    log(`== ${section.title}`);
    try {
      results.push({ section: name, title: section.title, rows: await section.run({ quick, log }) });
    } catch (error) {
      const message = (error as Error).message;
      log(`bench ${name} failed: ${message}`);
      results.push({ section: name, title: section.title, rows: [], error: message });
    }
  }
  const document = { date: new Date().toISOString(), machine, quick, results };
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
