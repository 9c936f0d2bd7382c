import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { inferenceContext } from '../../models/layers.ts';
import { loadModel } from '../../models/load.ts';
import { initWasmBackend } from '../wasm.ts';
import { initWebGpuBackend } from '../webgpu.ts';
import { activeRuntime } from './runtime.ts';
import { gpuProbe } from './testing.ts';

const FIXTURES = new URL('../../models/fixtures/', import.meta.url).pathname;

/** The padded batch each fixture's expected.json was made with (left and right padding). */
function batchOf(name: string): { ids: number[][]; mask: number[][] } {
  const exp = JSON.parse(readFileSync(join(FIXTURES, name, 'expected.json'), 'utf8'));
  return { ids: exp.input_ids, mask: exp.attention_mask };
}

async function logits(name: string): Promise<{ values: Float32Array; shape: number[]; frozen: string[] }> {
  const { ids, mask } = batchOf(name);
  const model = await loadModel(join(FIXTURES, name));
  const out = tf.tidy(() =>
    model.forward(
      {
        inputIds: tf.tensor2d(ids, undefined, 'int32'),
        attentionMask: tf.tensor2d(mask, undefined, 'int32'),
      },
      inferenceContext(),
    ),
  );
  const values = (await out.data()) as Float32Array;
  const shape = out.shape;
  const frozen = [...(activeRuntime()?.frozen.values() ?? [])].map((w) => w.dtype);
  out.dispose();
  model.dispose();
  return { values, shape, frozen };
}

/** Largest difference over real tokens' logits (padding rows are undefined), relative to the largest logit. */
function realTokenError(a: Float32Array, b: Float32Array, shape: number[], mask: number[][]): number {
  const perRow = shape[shape.length - 1];
  let diff = 0;
  let scale = 0;
  for (let row = 0; row < a.length / perRow; row++) {
    if (shape.length === 3 && mask[Math.floor(row / shape[1])][row % shape[1]] === 0) continue;
    for (let j = row * perRow; j < (row + 1) * perRow; j++) {
      diff = Math.max(diff, Math.abs(a[j] - b[j]));
      scale = Math.max(scale, Math.abs(b[j]));
    }
  }
  return diff / scale;
}

const NAMES = ['gpt2', 'gpt2-cls', 'llama', 'llama-cls', 'llama-bf16', 'qwen2', 'mistral', 'bert', 'roberta'];

describe.skipIf(!gpuProbe.available)(
  `model forward passes on webgpu match the CPU (${gpuProbe.reason})`,
  () => {
    it.each(NAMES)('%s: logits of a padded batch, fused attention, norms and activations', async (name) => {
      await initWasmBackend();
      const cpu = await logits(name);
      await initWebGpuBackend();
      const gpu = await logits(name);
      expect(gpu.shape).toEqual(cpu.shape);
      // llama-bf16's weights are bf16: its GPU copies are f16, which holds every bf16 value of these weights
      expect(realTokenError(gpu.values, cpu.values, cpu.shape, batchOf(name).mask)).toBeLessThan(1e-4);
    });

    it('synchronous reads fail with a message that says what to use', async () => {
      await initWebGpuBackend();
      const t = tf.add(tf.ones([3]), 1);
      expect(() => t.dataSync()).toThrow(/cannot read tensors synchronously in Node.*await data\(\)/);
      expect(Array.from(await t.data())).toEqual([2, 2, 2]);
      t.dispose();
    });
  },
);
