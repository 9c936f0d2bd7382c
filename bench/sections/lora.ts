import { execFileSync, spawnSync } from 'node:child_process';
import { promises as fs, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { probeGemms } from '../../engine/backends/gemm.ts';
import type { MatMulPath } from '../../engine/backends/types.ts';
import { gpt2Small, parameterCount, writeGpt2Checkpoint } from '../gpt2-checkpoint.ts';
import type { BenchContext, BenchRow, BenchSection } from '../types.ts';

const BATCH = 4;
const SEQ = 128;
const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const NAME = 'LoRA training step (forward + backward + AdamW)';

/** A python with PyTorch: the first of `python3` and the system one that imports torch. */
function torchPython(): string | null {
  for (const py of ['python3', '/usr/bin/python3']) {
    try {
      execFileSync(py, ['-c', 'import torch'], { stdio: 'ignore' });
      return py;
    } catch {}
  }
  return null;
}

interface ChildResult {
  stepMs: number;
  forwardMs: number;
  loss: number;
  trainable: number;
  wasmHeapBytes: number;
}

function runChild(dir: string, route: MatMulPath, batch: number, steps: number, ctx: BenchContext) {
  const child = spawnSync(
    process.execPath,
    [
      join(root, 'bin/run-ts.mjs'),
      join(root, 'bench/lora-child.ts'),
      dir,
      route,
      String(batch),
      String(SEQ),
      String(steps),
    ],
    { encoding: 'utf8', maxBuffer: 1 << 24 },
  );
  for (const line of child.stderr.split('\n'))
    if (line.startsWith('step ')) ctx.log(`lora: ${route} batch ${batch} ${line}`);
  const last = child.stdout.trim().split('\n').pop() ?? '';
  if (child.status === 0 && last.startsWith('{')) return JSON.parse(last) as ChildResult;
  const aborted = /Aborted\(\)/.test(child.stderr);
  return {
    error: aborted
      ? 'the wasm module aborted: its 4 GiB heap is exhausted (wasm32)'
      : (child.stderr
          .trim()
          .split('\n')
          .filter((l) => /Error/.test(l))[0] ?? `exit code ${child.status}`),
  };
}

export const section: BenchSection = {
  name: 'lora',
  title: `LoRA step, GPT-2 small shape (12 layers, d=768, ${SEQ} tokens, r=8 on c_attn, AdamW on the adapter only)`,
  async run(ctx) {
    const dir = mkdtempSync(join(tmpdir(), 'studio-bench-lora-'));
    const rows: BenchRow[] = [];
    try {
      ctx.log(
        `lora: writing a random ${(parameterCount(gpt2Small) / 1e6).toFixed(0)}M-parameter GPT-2 to ${dir}`,
      );
      await writeGpt2Checkpoint(dir, gpt2Small);
      const routes: MatMulPath[] = probeGemms({ all: true })
        .filter((p) => p.available)
        .map((p) => p.path);
      if (!ctx.quick) routes.push('js-relayout');
      let best: { ms: number; batch: number } | null = null;
      for (const route of routes) {
        // batch 4 is the reference shape; batch 1 is measured when 4 does not fit the wasm heap
        for (const batch of [BATCH, 1]) {
          const steps = route === 'js-relayout' ? 1 : ctx.quick ? 2 : 3;
          const r = runChild(dir, route, batch, steps, ctx);
          const config = `wasm/${route}, batch ${batch}×${SEQ}`;
          if ('error' in r) {
            rows.push({ name: NAME, config, value: Number.NaN, unit: 'ms', details: { error: r.error } });
            ctx.log(`lora: ${config} failed: ${r.error}`);
            continue;
          }
          rows.push({
            name: NAME,
            config,
            value: Math.round(r.stepMs),
            unit: 'ms',
            details: {
              forwardMs: Math.round(r.forwardMs),
              tokensPerSecond: Math.round((batch * SEQ) / (r.stepMs / 1000)),
              trainable: r.trainable,
              wasmHeapMB: Math.round(r.wasmHeapBytes / 2 ** 20),
              loss: Number(r.loss.toFixed(4)),
            },
          });
          if (!best || (batch === best.batch && r.stepMs < best.ms)) best = { ms: r.stepMs, batch };
          break;
        }
      }
      const py = torchPython();
      if (!py) ctx.log('lora: PyTorch comparison skipped (no python3 imports torch)');
      else if (best) {
        const script = join(root, 'bench/torch_lora_step.py');
        const args = [script, '--json', '--steps', ctx.quick ? '2' : '3', '--batch', String(best.batch)];
        const torch = JSON.parse(execFileSync(py, args, { encoding: 'utf8' }).trim().split('\n').pop()!) as {
          step_ms: number;
          forward_ms: number;
          torch: string;
          threads: number;
        };
        rows.push({
          name: NAME,
          config: `PyTorch ${torch.torch} CPU (${torch.threads} threads), batch ${best.batch}×${SEQ}`,
          value: Math.round(torch.step_ms),
          unit: 'ms',
          details: { forwardMs: Math.round(torch.forward_ms) },
        });
        rows.push({
          name: 'studio step time / PyTorch step time',
          config: `fastest wasm route vs PyTorch, batch ${best.batch}`,
          value: Number((best.ms / torch.step_ms).toFixed(2)),
          unit: '×',
        });
      }
    } finally {
      await fs.rm(dir, { recursive: true, force: true });
    }
    return rows;
  },
};
