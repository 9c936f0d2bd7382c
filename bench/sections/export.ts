import { execFileSync } from 'node:child_process';
import { promises as fs, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gpt2Small, parameterCount, writeGpt2Checkpoint } from '../gpt2-checkpoint.ts';
import type { BenchRow, BenchSection } from '../types.ts';

const MB = 1024 * 1024;

export const section: BenchSection = {
  name: 'export',
  title:
    'PEFT and merged export of a LoRA on a 124M-parameter GPT-2, each verified by reloading (peak RSS includes the merged model reloaded for verification)',
  async run(ctx) {
    const dir = mkdtempSync(join(tmpdir(), 'studio-bench-export-model-'));
    try {
      const params = parameterCount(gpt2Small);
      ctx.log(`export: writing a random ${(params / 1e6).toFixed(1)}M-parameter GPT-2 to ${dir}`);
      await writeGpt2Checkpoint(dir, gpt2Small);
      const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
      const out = execFileSync(
        process.execPath,
        [join(root, 'bin/run-ts.mjs'), join(root, 'bench/export-child.ts'), dir],
        { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] },
      );
      const r = JSON.parse(out.trim().split('\n').pop()!) as {
        backend: string;
        loadedBytes: number;
        peakBytes: number;
        peftMs: number;
        mergedMs: number;
        mergedBytes: number;
        peftDiff: number;
        mergedDiff: number;
      };
      const weightBytes = params * 4;
      const rows: BenchRow[] = [
        {
          name: 'PEFT export + verification',
          config: r.backend,
          value: Math.round(r.peftMs),
          unit: 'ms',
          details: { maxAbsDiff: r.peftDiff },
        },
        {
          name: 'merged export + verification',
          config: r.backend,
          value: Math.round(r.mergedMs),
          unit: 'ms',
          details: { maxAbsDiff: r.mergedDiff, mergedMB: Math.round(r.mergedBytes / MB) },
        },
        {
          name: '(peak − loaded RSS) / fp32 weight bytes',
          config: r.backend,
          value: Number(((r.peakBytes - r.loadedBytes) / weightBytes).toFixed(2)),
          unit: '×',
          details: { loadedMB: Math.round(r.loadedBytes / MB), peakMB: Math.round(r.peakBytes / MB) },
        },
      ];
      for (const row of rows) ctx.log(`export: ${row.name}: ${row.value} ${row.unit}`);
      return rows;
    } finally {
      await fs.rm(dir, { recursive: true, force: true });
    }
  },
};
