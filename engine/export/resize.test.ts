import { promises as fs } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { attachAdapter, detachAdapter } from '../adapters/index.ts';
import type { FrozenSnapshot, FrozenWeight } from '../backends/frozen.ts';
import { useTestBackend } from '../backends/testing.ts';
import { matrix, svd } from '../linalg/index.ts';
import { loadModel } from '../models/index.ts';
import { exportAdapter, loadPeftAdapter } from './index.ts';
import { disposeBatch, maxAbs, maxAbsDiff, probeBatch, probeOutputs, withOnlyAdapter } from './verify.ts';

const FIXTURES = join(import.meta.dirname, '..', 'models', 'fixtures');
let tmp: string;

beforeAll(async () => {
  await useTestBackend();
  tmp = await fs.mkdtemp(join(tmpdir(), 'resize-'));
});

afterAll(async () => {
  await fs.rm(tmp, { recursive: true, force: true });
});

describe('resized LoRA export', () => {
  it('logits of the reloaded resized adapter equal base + the dense-SVD truncation of each ΔW', async () => {
    const model = await loadModel(join(FIXTURES, 'llama'));
    const instance = attachAdapter(
      model,
      'lora',
      { r: 6, loraAlpha: 12, targetModules: ['q_proj', 'v_proj', 'up_proj'] },
      {
        adapterName: 'default',
        seed: 1,
      },
    );
    const state = instance.state();
    const random: Record<string, tf.Tensor> = {};
    let s = 3;
    for (const [k, t] of Object.entries(state)) {
      random[k] = tf.add(t, tf.randomNormal(t.shape, 0, 0.3, 'float32', s++));
      t.dispose();
    }
    instance.loadState(random);
    for (const t of Object.values(random)) t.dispose();
    const batch = probeBatch(model.spec.vocabSize);
    try {
      const out = join(tmp, 'resized');
      const result = await exportAdapter(model, instance, {
        format: 'lora',
        out,
        resize: { criterion: 'sv_fro', value: 0.8 },
      });
      expect(result.verification.ok).toBe(true);
      const ranks = new Map(result.resize!.modules.map((m) => [m.module, m.newRank]));
      expect([...ranks.values()].some((k) => k < 6)).toBe(true);
      // reference: W0 + U_k S_k V_kᵀ of the dense ΔW, SVD in float64, merged into a fresh base model
      const fresh = await loadModel(join(FIXTURES, 'llama'));
      const saved: [FrozenWeight, FrozenSnapshot][] = [];
      for (const [name, layer] of instance.layers) {
        const delta = tf.tidy(() => layer.deltaWeight());
        const [rows, cols] = delta.shape;
        const d = svd(matrix(rows, cols, delta.dataSync()));
        delta.dispose();
        const k = ranks.get(name)!;
        const t = new Float32Array(rows * cols);
        for (let i = 0; i < rows; i++)
          for (let j = 0; j < cols; j++) {
            let v = 0;
            for (let q = 0; q < k; q++) v += d.u.data[i * d.u.cols + q] * d.s[q] * d.v.data[j * d.v.cols + q];
            t[i * cols + j] = v;
          }
        const base = fresh.layers.get(name)!.weight;
        saved.push([base, base.snapshot()]);
        const merged = tf.tidy(() => tf.add(base.toTensor(), tf.tensor2d(t, [rows, cols])) as tf.Tensor2D);
        base.replace(merged);
        merged.dispose();
      }
      const reference = withOnlyAdapter(fresh, null, () => probeOutputs(fresh, batch));
      for (const [weight, snapshot] of saved) weight.restore(snapshot);
      await loadPeftAdapter(fresh, out, { adapterName: 'resized' });
      const resized = withOnlyAdapter(fresh, 'resized', () => probeOutputs(fresh, batch));
      const original = withOnlyAdapter(model, 'default', () => probeOutputs(model, batch));
      detachAdapter(fresh, 'resized');
      fresh.dispose();
      expect(maxAbsDiff(resized, reference)).toBeLessThan(1e-4 * Math.max(1, maxAbs(reference)));
      // the truncation is visible: the resized adapter is not the original
      expect(maxAbsDiff(resized, original)).toBeGreaterThan(1e-4);
      const config = JSON.parse(await fs.readFile(join(out, 'adapter_config.json'), 'utf8'));
      expect(config.lora_alpha).toBe(config.r);
    } finally {
      disposeBatch(batch);
      model.dispose();
    }
  });

  it('refuses --resize for other formats and DoRA (no low-rank ΔW)', async () => {
    const model = await loadModel(join(FIXTURES, 'llama'));
    try {
      const instance = attachAdapter(
        model,
        'lora',
        { r: 2, loraAlpha: 4, useDora: true },
        { adapterName: 'default', seed: 1 },
      );
      await expect(
        exportAdapter(model, instance, {
          format: 'peft',
          out: join(tmp, 'x'),
          resize: { criterion: 'sv_fro', value: 0.9 },
        }),
      ).rejects.toThrow(/--resize applies to --format lora/);
      await expect(
        exportAdapter(model, instance, {
          format: 'lora',
          out: join(tmp, 'y'),
          resize: { criterion: 'sv_fro', value: 0.9 },
        }),
      ).rejects.toThrow(/not low-rank/);
    } finally {
      model.dispose();
    }
  });

  it('refuses an adapter with modules_to_save rather than dropping them', async () => {
    const model = await loadModel(join(FIXTURES, 'llama'));
    try {
      const instance = attachAdapter(
        model,
        'lora',
        { r: 2, loraAlpha: 4, targetModules: ['q_proj'], modulesToSave: ['lm_head'] },
        { adapterName: 'default', seed: 1 },
      );
      await expect(
        exportAdapter(model, instance, {
          format: 'lora',
          out: join(tmp, 'saved'),
          resize: { criterion: 'sv_fro', value: 0.9 },
        }),
      ).rejects.toThrow(/also trains lm_head \(modules_to_save\), which a spectrum resize does not cover/);
    } finally {
      model.dispose();
    }
  });
});
