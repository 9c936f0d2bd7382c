import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { methodNames, methods, parseMethodConfig } from '../../engine/adapters/index.ts';
import type { MethodName } from '../../engine/adapters/types.ts';
import { AnalysisRecorder, analyzeAdapter } from '../../engine/analysis/index.ts';
import { fakeModel, seededValues } from '../../engine/analysis/testing.ts';
import { selectBackend } from '../../engine/backends/index.ts';
import { trainingContext } from '../../engine/models/layers.ts';
import type { BenchContext, BenchRow, BenchSection } from '../types.ts';

/** The trainer's default `analysisEvery`-style cadence the overhead is quoted for. */
const EVERY = 10;

/** Sizes as in the method comparison; a method not listed runs with its defaults. */
const configs: Partial<Record<MethodName, Record<string, unknown>>> = {
  lora: { r: 8, loraAlpha: 16 },
  tlora: { r: 32 },
  tinylora: { r: 2, u: 64 },
  vera: { r: 256 },
  loraxs: { r: 32, alpha: 64 },
};

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

/**
 * Overhead of `AnalysisRecorder.record` (the cheap path: norms, scaling factors, low-rank spectra) against
 * training steps, per method: a stack of q/v Linear modules (hidden d, `tokens` rows) with the real method
 * attached, trained with plain SGD on a synthetic loss. Only the adapted modules are computed, so a real
 * model's step (attention, MLP, head) is longer and the fraction there smaller: these figures are an upper
 * bound for the same modules.
 */
export async function analysisOverhead(ctx: BenchContext): Promise<BenchRow[]> {
  const report = await selectBackend();
  const backend = report.matmul ? `${report.chosen}/${report.matmul}` : report.chosen;
  const hidden = ctx.quick ? 256 : 768;
  const blocks = ctx.quick ? 2 : 6;
  const tokens = ctx.quick ? 128 : 256;
  const steps = ctx.quick ? 3 : 5;
  const records = ctx.quick ? 3 : 5;
  const modules = Array.from({ length: blocks }, (_, i) => [
    { name: `model.layers.${i}.self_attn.q_proj`, rows: hidden, cols: hidden },
    { name: `model.layers.${i}.self_attn.v_proj`, rows: hidden, cols: hidden },
  ]).flat();
  const rows: BenchRow[] = [];
  const root = mkdtempSync(join(tmpdir(), 'bench-analysis-'));
  try {
    for (const name of methodNames()) {
      const definition = methods[name];
      const config = configs[name] ?? {};
      const model = fakeModel(modules, 1, 0);
      const layers = [...model.layers.values()];
      const instance = definition.create(layers, parseMethodConfig(name, config), {
        adapterName: 'default',
        seed: 1,
      });
      for (const l of layers) l.activeAdapters = ['default'];
      const vars = instance.trainable().map((p) => p.variable);
      const x0 = tf.keep(tf.tensor2d(seededValues(tokens * hidden, 3), [tokens, hidden]));
      const step = (index: number) => {
        const ctxF = trainingContext(1, index);
        const { value, grads } = tf.variableGrads(() => {
          let x = x0 as tf.Tensor2D;
          for (let b = 0; b < blocks; b++) {
            const q = layers[2 * b].forward(x, ctxF);
            const v = layers[2 * b + 1].forward(x, ctxF);
            x = tf.tanh(tf.add(q, v)) as tf.Tensor2D;
          }
          return tf.mean(tf.square(x)) as tf.Scalar;
        }, vars);
        tf.tidy(() => {
          for (const v of vars) {
            const g = grads[v.name];
            if (g) v.assign(tf.sub(v, tf.mul(g, 1e-2)));
          }
        });
        value.dataSync();
        tf.dispose([value, ...Object.values(grads)]);
      };
      step(0);
      const stepMs: number[] = [];
      for (let i = 1; i <= steps; i++) {
        const t0 = performance.now();
        step(i);
        stepMs.push(performance.now() - t0);
      }
      const recorder = new AnalysisRecorder({
        runDir: join(root, name),
        model,
        every: EVERY,
        snapshots: false,
      });
      const recordMs: number[] = [];
      for (let i = 0; i < records; i++) {
        const t0 = performance.now();
        await recorder.record(i * EVERY, instance, 'interval');
        recordMs.push(performance.now() - t0);
      }
      const t0 = performance.now();
      await analyzeAdapter(instance, model, { step: 0 });
      const snapshotMs = performance.now() - t0;
      const stepMedian = median(stepMs);
      const recordMedian = median(recordMs.slice(1));
      const fraction = recordMedian / (EVERY * stepMedian + recordMedian);
      ctx.log(
        `  ${name}: step ${stepMedian.toFixed(1)} ms, record ${recordMedian.toFixed(1)} ms (first ${recordMs[0].toFixed(1)} ms), snapshot ${snapshotMs.toFixed(0)} ms`,
      );
      rows.push({
        name: `analysis record every ${EVERY} steps: ${name} (${modules.length} × ${hidden}², ${tokens} tokens)`,
        config: backend,
        value: Number((100 * fraction).toFixed(2)),
        unit: '% of training time',
        details: {
          ms: Number(recordMedian.toFixed(2)),
          stepMs: Number(stepMedian.toFixed(2)),
          firstRecordMs: Number(recordMs[0].toFixed(2)),
          checkpointSnapshotMs: Number(snapshotMs.toFixed(1)),
          trainable: vars.reduce((n, v) => n + v.size, 0),
        },
      });
      x0.dispose();
      instance.dispose();
      model.dispose();
    }
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
  return rows;
}

export const section: BenchSection = {
  name: 'analysis-overhead',
  title: 'Adaptation analysis: recorder overhead against training steps',
  run: analysisOverhead,
};
