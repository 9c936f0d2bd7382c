import { execFileSync } from 'node:child_process';
import { promises as fs, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs-core';
import { attachAdapter } from '../../engine/adapters/index.ts';
import { loadGemm, nativeGemmOrder } from '../../engine/backends/gemm.ts';
import { ensureGradients } from '../../engine/backends/gradients.ts';
import { setMatMulRoute } from '../../engine/backends/matmul.ts';
import type { MatMulPath, NativeGemm } from '../../engine/backends/types.ts';
import { initWasmBackend } from '../../engine/backends/wasm.ts';
import { loadModel, trainingContext } from '../../engine/models/index.ts';
import { AdamW, causalLmLossSum } from '../../engine/training/index.ts';
import { gpt2Small, parameterCount, writeGpt2Checkpoint } from '../gpt2-checkpoint.ts';
import type { BenchContext, BenchRow, BenchSection } from '../types.ts';

const BATCH = 4;
const SEQ = 128;
const RANK = 8;

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

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

interface StepTimes {
  stepMs: number;
  forwardMs: number;
  loss: number;
}

async function timeSteps(dir: string, steps: number, ctx: BenchContext, label: string): Promise<StepTimes> {
  const model = await loadModel(dir);
  const instance = attachAdapter(
    model,
    'lora',
    { r: RANK, loraAlpha: 16, targetModules: ['c_attn'] },
    { adapterName: 'default', seed: 0 },
  );
  const params = instance.trainable();
  const optimizer = new AdamW(params, {
    beta1: 0.9,
    beta2: 0.999,
    eps: 1e-8,
    groups: { adapter: { lr: 1e-4, weightDecay: 0.01 }, scaling: { lr: 1e-4, weightDecay: 0 } },
  });
  const ids = new Int32Array(BATCH * SEQ);
  for (let i = 0; i < ids.length; i++) ids[i] = (i * 7919 + 13) % gpt2Small.vocab;
  const inputIds = tf.tensor2d(ids, [BATCH, SEQ], 'int32');
  const attentionMask = tf.ones([BATCH, SEQ], 'int32') as tf.Tensor2D;
  const lossMask = tf.ones([BATCH, SEQ], 'float32') as tf.Tensor2D;
  const targets = BATCH * (SEQ - 1);
  const byVariable = new Map(params.map((p) => [p.variable.name, p.name]));
  const stepTimes: number[] = [];
  const forwardTimes: number[] = [];
  let loss = Number.NaN;
  try {
    for (let step = 0; step <= steps; step++) {
      const f0 = performance.now();
      tf.tidy(() => {
        model.forward({ inputIds, attentionMask }, trainingContext(0, step));
      });
      const f1 = performance.now();
      const { value, grads } = tf.variableGrads(
        () => {
          const logits = model.forward({ inputIds, attentionMask }, trainingContext(0, step)) as tf.Tensor3D;
          return tf.div(causalLmLossSum(logits, inputIds, lossMask), targets) as tf.Scalar;
        },
        params.map((p) => p.variable),
      );
      const named: Record<string, tf.Tensor> = {};
      for (const [key, g] of Object.entries(grads)) named[byVariable.get(key) ?? key] = g;
      optimizer.step(named, 1);
      loss = value.dataSync()[0];
      tf.dispose([value, ...Object.values(grads)]);
      const f2 = performance.now();
      // step 0 warms up kernels and allocations
      if (step > 0) {
        forwardTimes.push(f1 - f0);
        stepTimes.push(f2 - f1);
      }
      ctx.log(`lora: ${label} step ${step}: ${(f2 - f1).toFixed(0)} ms (forward ${(f1 - f0).toFixed(0)} ms)`);
    }
  } finally {
    tf.dispose([inputIds, attentionMask, lossMask]);
    optimizer.dispose();
    model.dispose();
  }
  return { stepMs: median(stepTimes), forwardMs: median(forwardTimes), loss };
}

export const section: BenchSection = {
  name: 'lora',
  title: `LoRA step, GPT-2 small shape (12 layers, d=768, batch ${BATCH}×${SEQ}, r=${RANK} on c_attn, AdamW on the adapter)`,
  async run(ctx) {
    await ensureGradients();
    await initWasmBackend();
    const dir = mkdtempSync(join(tmpdir(), 'studio-bench-lora-'));
    const rows: BenchRow[] = [];
    try {
      ctx.log(
        `lora: writing a random ${(parameterCount(gpt2Small) / 1e6).toFixed(0)}M-parameter GPT-2 to ${dir}`,
      );
      await writeGpt2Checkpoint(dir, gpt2Small);
      const routes: { path: MatMulPath; gemm: NativeGemm | null }[] = [];
      for (const path of nativeGemmOrder) {
        try {
          routes.push({ path, gemm: loadGemm(path) });
        } catch (error) {
          ctx.log(`lora: ${path} skipped (${(error as Error).message})`);
        }
      }
      if (!ctx.quick) routes.push({ path: 'js-relayout', gemm: null });
      let best = Number.POSITIVE_INFINITY;
      for (const route of routes) {
        setMatMulRoute(route.path, route.gemm);
        const steps = route.gemm ? (ctx.quick ? 2 : 3) : 1;
        const t = await timeSteps(dir, steps, ctx, `wasm/${route.path}`);
        best = Math.min(best, t.stepMs);
        rows.push({
          name: 'LoRA training step (forward + backward + AdamW)',
          config: `wasm/${route.path}`,
          value: Math.round(t.stepMs),
          unit: 'ms',
          details: {
            forwardMs: Math.round(t.forwardMs),
            tokensPerSecond: Math.round((BATCH * SEQ) / (t.stepMs / 1000)),
            loss: Number(t.loss.toFixed(4)),
            steps,
          },
        });
      }
      const py = torchPython();
      if (!py) {
        ctx.log('lora: PyTorch comparison skipped (no python3 imports torch)');
      } else {
        const script = join(dirname(fileURLToPath(import.meta.url)), '..', 'torch_lora_step.py');
        const out = execFileSync(py, [script, '--json', '--steps', ctx.quick ? '2' : '3'], {
          encoding: 'utf8',
        });
        const torch = JSON.parse(out.trim().split('\n').pop()!) as {
          step_ms: number;
          forward_ms: number;
          torch: string;
          threads: number;
        };
        rows.push({
          name: 'LoRA training step (forward + backward + AdamW)',
          config: `PyTorch ${torch.torch} CPU, ${torch.threads} threads`,
          value: Math.round(torch.step_ms),
          unit: 'ms',
          details: { forwardMs: Math.round(torch.forward_ms) },
        });
        rows.push({
          name: 'studio step time / PyTorch step time',
          config: 'fastest wasm route vs PyTorch',
          value: Number((best / torch.step_ms).toFixed(2)),
          unit: '×',
        });
      }
    } finally {
      await fs.rm(dir, { recursive: true, force: true });
    }
    return rows;
  },
};
