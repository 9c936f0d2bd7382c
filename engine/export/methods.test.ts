import { promises as fs } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { attachAdapter } from '../adapters/index.ts';
import { useTestBackend } from '../backends/testing.ts';
import { loadModel } from '../models/index.ts';
import { openSafetensors } from '../safetensors/index.ts';
import { exportAdapter } from './index.ts';

const FIXTURES = join(import.meta.dirname, '..', 'models', 'fixtures');
let tmp: string;

beforeAll(async () => {
  await useTestBackend();
  tmp = await fs.mkdtemp(join(tmpdir(), 'export-methods-'));
});

afterAll(async () => {
  await fs.rm(tmp, { recursive: true, force: true });
});

/** Each method on a fixture, with every adapter tensor (trainable or not) perturbed so ΔW ≠ 0. */
async function adapted(fixture: string, method: string, config: Record<string, unknown>) {
  const model = await loadModel(join(FIXTURES, fixture));
  const instance = attachAdapter(model, method, config, { seed: 11 });
  const state = instance.state();
  const trainable = new Set(instance.trainable().map((p) => p.name));
  const next: Record<string, tf.Tensor> = {};
  let seed = 1;
  for (const [key, t] of Object.entries(state)) {
    next[key] = trainable.has(key)
      ? tf.add(t, tf.randomNormal(t.shape, 0, 0.3, 'float32', seed++))
      : t.clone();
  }
  instance.loadState(next);
  tf.dispose([...Object.values(state), ...Object.values(next)]);
  return { model, instance };
}

async function keysOf(dir: string): Promise<string[]> {
  const file = await openSafetensors(join(dir, 'adapter_model.safetensors'));
  const keys = file.keys();
  await file.close();
  return keys;
}

const cases: { method: string; fixture: string; config: Record<string, unknown>; peft: boolean }[] = [
  { method: 'vera', fixture: 'llama', config: { r: 4, targetModules: ['q_proj', 'v_proj'] }, peft: true },
  { method: 'vera', fixture: 'gpt2', config: { r: 4 }, peft: true },
  {
    method: 'tinylora',
    fixture: 'llama',
    config: { r: 2, u: 3, targetModules: ['q_proj', 'v_proj'] },
    peft: true,
  },
  { method: 'tinylora', fixture: 'gpt2', config: { r: 2, u: 3, weightTying: 1 }, peft: true },
  { method: 'tlora', fixture: 'roberta', config: { r: 2 }, peft: false },
  { method: 'loraxs', fixture: 'llama', config: { r: 2, targetModules: ['q_proj', 'v_proj'] }, peft: false },
];

describe('every method exports and verifies', () => {
  for (const c of cases) {
    it(`${c.method} on ${c.fixture}: ${c.peft ? 'peft, ' : ''}lora conversion and merged`, async () => {
      const { model, instance } = await adapted(c.fixture, c.method, c.config);
      const name = `${c.method}-${c.fixture}`;
      if (c.peft) {
        const peft = await exportAdapter(model, instance, { format: 'peft', out: join(tmp, `${name}-peft`) });
        expect(peft.verification.ok).toBe(true);
        expect(peft.verification.adapterEffect).toBeGreaterThan(1e-4);
      } else {
        await expect(
          exportAdapter(model, instance, { format: 'peft', out: join(tmp, `${name}-peft`) }),
        ).rejects.toThrow(new RegExp(`${c.method} has no PEFT format .*--format lora`));
      }
      const lora = await exportAdapter(model, instance, { format: 'lora', out: join(tmp, `${name}-lora`) });
      expect(lora.verification.ok).toBe(true);
      expect(lora.verification.adapterEffect).toBeGreaterThan(1e-4);
      const config = JSON.parse(await fs.readFile(join(tmp, `${name}-lora`, 'adapter_config.json'), 'utf8'));
      expect(config.peft_type).toBe('LORA');
      expect(config.lora_alpha).toBe(config.r);
      const merged = await exportAdapter(model, instance, {
        format: 'merged',
        out: join(tmp, `${name}-merged`),
      });
      expect(merged.verification.ok).toBe(true);
      model.dispose();
    });
  }

  it('VeRA PEFT keys: shared projections at model level, λ vectors per module', async () => {
    const keys = await keysOf(join(tmp, 'vera-llama-peft'));
    expect(keys).toEqual([
      'base_model.model.model.layers.0.self_attn.q_proj.vera_lambda_b',
      'base_model.model.model.layers.0.self_attn.q_proj.vera_lambda_d',
      'base_model.model.model.layers.0.self_attn.v_proj.vera_lambda_b',
      'base_model.model.model.layers.0.self_attn.v_proj.vera_lambda_d',
      'base_model.model.model.layers.1.self_attn.q_proj.vera_lambda_b',
      'base_model.model.model.layers.1.self_attn.q_proj.vera_lambda_d',
      'base_model.model.model.layers.1.self_attn.v_proj.vera_lambda_b',
      'base_model.model.model.layers.1.self_attn.v_proj.vera_lambda_d',
      'base_model.vera_A',
      'base_model.vera_B',
    ]);
    const config = JSON.parse(await fs.readFile(join(tmp, 'vera-llama-peft', 'adapter_config.json'), 'utf8'));
    expect(config).toMatchObject({ peft_type: 'VERA', r: 4, save_projection: true, inference_mode: true });
    expect(await fs.readFile(join(tmp, 'vera-llama-peft', 'adapter_config.json'), 'utf8')).toMatch(
      /"d_initial": 0\.1,\n {2}"fan_in_fan_out": false,/,
    );
  });

  it('TinyLoRA PEFT keys: SVD factors and projections per module, tied v at model level', async () => {
    const keys = await keysOf(join(tmp, 'tinylora-gpt2-peft'));
    const perModule = (i: number) =>
      ['tinylora_A', 'tinylora_B', 'tinylora_P'].map(
        (s) => `base_model.model.transformer.h.${i}.attn.c_attn.${s}`,
      );
    expect(keys).toEqual([...perModule(0), ...perModule(1), 'base_model.tinylora_v.0']);
    const text = await fs.readFile(join(tmp, 'tinylora-gpt2-peft', 'adapter_config.json'), 'utf8');
    expect(JSON.parse(text)).toMatchObject({ peft_type: 'TINYLORA', u: 3, fan_in_fan_out: true });
    expect(text).toMatch(/"weight_tying": 1\.0/);
  });
});
