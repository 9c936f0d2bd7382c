import { execFileSync } from 'node:child_process';
import { promises as fs, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gpt2Small, parameterCount, writeGpt2Checkpoint } from '../gpt2-checkpoint.ts';
import type { BenchRow, BenchSection } from '../types.ts';

const MB = 1024 * 1024;
const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

/**
 * The child runs as compiled JavaScript, as the packaged app runs its engine host (a bundle, packages external):
 * through tsx the TypeScript compiler would add some 30 MB to the baseline that no user process carries.
 * The bundle sits in node_modules/.cache so its package imports resolve from this repository.
 */
async function bundleLoadChild(): Promise<string> {
  const { build } = await import('esbuild');
  const outfile = join(root, 'node_modules/.cache/adapter-studio/load-child.mjs');
  await build({
    entryPoints: [join(root, 'bench/load-child.ts')],
    outfile,
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    packages: 'external',
    logLevel: 'error',
  });
  return outfile;
}

export const section: BenchSection = {
  name: 'load',
  title:
    'peak RSS while loading a 124M-parameter GPT-2 from safetensors, engine bundled as in the app (target: peak ≤ 1.3× fp32 weights)',
  async run(ctx) {
    const dir = mkdtempSync(join(tmpdir(), 'studio-bench-load-'));
    try {
      const params = parameterCount(gpt2Small);
      ctx.log(`load: writing a random ${(params / 1e6).toFixed(1)}M-parameter GPT-2 to ${dir}`);
      const fileBytes = await writeGpt2Checkpoint(dir, gpt2Small);
      const weightBytes = params * 4;
      const child = await bundleLoadChild();
      const out = execFileSync(process.execPath, [child, dir], {
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'ignore'],
      });
      const r = JSON.parse(out.trim().split('\n').pop()!) as {
        backend: string;
        baselineBytes: number;
        peakBytes: number;
        loadMs: number;
      };
      const rows: BenchRow[] = [
        {
          name: 'peak RSS / fp32 weight bytes',
          config: r.backend,
          value: Number((r.peakBytes / weightBytes).toFixed(2)),
          unit: '×',
          details: {
            peakMB: Math.round(r.peakBytes / MB),
            weightsMB: Math.round(weightBytes / MB),
            fileMB: Math.round(fileBytes / MB),
            baselineMB: Math.round(r.baselineBytes / MB),
            loadMs: Math.round(r.loadMs),
          },
        },
        {
          name: '(peak − baseline RSS) / fp32 weight bytes',
          config: r.backend,
          value: Number(((r.peakBytes - r.baselineBytes) / weightBytes).toFixed(2)),
          unit: '×',
        },
        { name: 'load time', config: r.backend, value: Math.round(r.loadMs), unit: 'ms' },
      ];
      for (const row of rows) ctx.log(`load: ${row.name}: ${row.value} ${row.unit}`);
      return rows;
    } finally {
      await fs.rm(dir, { recursive: true, force: true });
    }
  },
};
