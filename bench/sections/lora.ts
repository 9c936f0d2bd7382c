import { execFileSync, spawnSync } from 'node:child_process';
import { promises as fs, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { probeGemms } from '../../engine/backends/gemm.ts';
import { findPython } from '../../engine/testing/python.ts';
import { gpt2Small, parameterCount, writeGpt2Checkpoint } from '../gpt2-checkpoint.ts';
import { ratio2, targetNote } from '../targets.ts';
import type { BenchContext, BenchRow, BenchSection } from '../types.ts';

const BATCH = 4;
const SEQ = 128;
const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const NAME = 'LoRA training step (forward + backward + AdamW)';

/** Issue #10: the studio's step at most 0.8× PyTorch's time. */
const TORCH_TARGET = { op: '≤', value: 0.8 } as const;

interface ChildResult {
  stepMs: number;
  forwardMs: number;
  loss: number;
  trainable: number;
  /** Null on the native backend (no wasm heap). */
  wasmHeapBytes: number | null;
}

/** `route` is a backend preference with its matmul route: `native:onnxruntime-mlas`, `wasm:koffi-blas`, … */
function runChild(dir: string, route: string, batch: number, steps: number, ctx: BenchContext) {
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
  title: `LoRA step, GPT-2 small shape (12 layers, d=768, ${SEQ} tokens, r=8 on c_attn, AdamW on the adapter only), native and wasm backends against PyTorch (target: ≤ ${TORCH_TARGET.value}× PyTorch's step time)`,
  async run(ctx) {
    const dir = mkdtempSync(join(tmpdir(), 'studio-bench-lora-'));
    const rows: BenchRow[] = [];
    try {
      ctx.log(
        `lora: writing a random ${(parameterCount(gpt2Small) / 1e6).toFixed(0)}M-parameter GPT-2 to ${dir}`,
      );
      await writeGpt2Checkpoint(dir, gpt2Small);
      const gemms = probeGemms({ all: true })
        .filter((p) => p.available)
        .map((p) => p.path);
      // the native backend (the CPU default) first, then the wasm routes
      const routes = [...gemms.map((g) => `native:${g}`), ...gemms.map((g) => `wasm:${g}`)];
      if (!ctx.quick) routes.push('wasm:js-relayout');
      const best = new Map<'native' | 'wasm', { ms: number; batch: number; route: string }>();
      for (const route of routes) {
        const kind = route.startsWith('native:') ? 'native' : 'wasm';
        // batch 4 is the reference shape; batch 1 is measured when 4 does not fit the wasm heap
        for (const batch of [BATCH, 1]) {
          const steps = route === 'wasm:js-relayout' ? 1 : ctx.quick ? 2 : 3;
          const r = runChild(dir, route, batch, steps, ctx);
          const config = `${route.replace(':', '/')}, batch ${batch}×${SEQ}`;
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
              ...(r.wasmHeapBytes === null ? {} : { wasmHeapMB: Math.round(r.wasmHeapBytes / 2 ** 20) }),
              loss: Number(r.loss.toFixed(4)),
            },
          });
          const prev = best.get(kind);
          // a larger batch wins over a faster smaller one: the reference shape is batch 4
          if (!prev || batch > prev.batch || (batch === prev.batch && r.stepMs < prev.ms)) {
            best.set(kind, { ms: r.stepMs, batch, route });
          }
          break;
        }
      }
      const py = findPython(['torch']);
      if (!py.python) ctx.log(`lora: PyTorch comparison skipped (${py.reason})`);
      for (const batch of new Set([...best.values()].map((b) => b.batch))) {
        if (!py.python) break;
        const script = join(root, 'bench/torch_lora_step.py');
        const args = [script, '--json', '--steps', ctx.quick ? '2' : '3', '--batch', String(batch)];
        const torch = JSON.parse(
          execFileSync(py.python, args, { encoding: 'utf8' }).trim().split('\n').pop()!,
        ) as {
          step_ms: number;
          forward_ms: number;
          torch: string;
          threads: number;
        };
        rows.push({
          name: NAME,
          config: `PyTorch ${torch.torch} CPU (${torch.threads} threads), batch ${batch}×${SEQ}`,
          value: Math.round(torch.step_ms),
          unit: 'ms',
          details: { forwardMs: Math.round(torch.forward_ms), python: py.python },
        });
        for (const [kind, b] of best) {
          if (b.batch !== batch) continue;
          const ratio = b.ms / torch.step_ms;
          rows.push({
            name: 'studio step time / PyTorch step time',
            config: `fastest ${kind} route (${b.route}) vs PyTorch ${torch.torch}, batch ${batch}`,
            value: ratio2(ratio),
            unit: '×',
            note: targetNote(ratio, TORCH_TARGET),
          });
        }
      }
    } finally {
      await fs.rm(dir, { recursive: true, force: true });
    }
    return rows;
  },
};
