import { promises as fs } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { attachAdapter, detachAdapter } from '../adapters/index.ts';
import { useTestBackend } from '../backends/testing.ts';
import { loadModel } from '../models/index.ts';
import type { LoadedModel } from '../models/types.ts';
import { openCheckpoint, openSafetensors, writeSafetensors } from '../safetensors/index.ts';
import { exportAdapter, loadPeftAdapter } from './index.ts';
import { adaptedFixture } from './testing.ts';

const FIXTURES = join(import.meta.dirname, '..', 'models', 'fixtures');
const GOLDEN = join(import.meta.dirname, 'fixtures');

let tmp: string;

beforeAll(async () => {
  await useTestBackend();
  tmp = await fs.mkdtemp(join(tmpdir(), 'export-test-'));
});

afterAll(async () => {
  await fs.rm(tmp, { recursive: true, force: true });
});

const adapted = adaptedFixture;

async function sortedKeys(path: string): Promise<string[]> {
  const file = await openSafetensors(path);
  const keys = file.keys();
  await file.close();
  return keys;
}

describe('PEFT adapter export', () => {
  it('gpt2 LoRA: PEFT keys, F32, format=pt, golden adapter_config.json, verified by reloading', async () => {
    const { model, instance } = await adapted('gpt2', 'lora', { r: 2, loraAlpha: 4 });
    const out = join(tmp, 'gpt2-peft');
    const result = await exportAdapter(model, instance, {
      format: 'peft',
      out,
      baseModelNameOrPath: 'openai-community/gpt2',
    });
    expect(result.files).toEqual(['adapter_config.json', 'adapter_model.safetensors']);
    expect(result.verification.ok).toBe(true);
    expect(result.verification.adapterEffect).toBeGreaterThan(1e-3);
    expect(result.verification.maxAbsDiff).toBeLessThan(1e-5);
    const file = await openSafetensors(join(out, 'adapter_model.safetensors'));
    expect(file.metadata).toEqual({ format: 'pt' });
    expect(file.keys()).toEqual([
      'base_model.model.transformer.h.0.attn.c_attn.lora_A.weight',
      'base_model.model.transformer.h.0.attn.c_attn.lora_B.weight',
      'base_model.model.transformer.h.1.attn.c_attn.lora_A.weight',
      'base_model.model.transformer.h.1.attn.c_attn.lora_B.weight',
    ]);
    expect(file.info('base_model.model.transformer.h.0.attn.c_attn.lora_A.weight')).toEqual({
      dtype: 'F32',
      shape: [2, 16],
      byteLength: 128,
    });
    expect(file.info('base_model.model.transformer.h.0.attn.c_attn.lora_B.weight').shape).toEqual([48, 2]);
    await file.close();
    const text = await fs.readFile(join(out, 'adapter_config.json'), 'utf8');
    expect(text).toBe(await fs.readFile(join(GOLDEN, 'gpt2-lora.adapter_config.json'), 'utf8'));
    model.dispose();
  });

  it('llama DoRA + rsLoRA: magnitude vectors exported and reloaded; LoRA conversion refuses', async () => {
    const { model, instance } = await adapted('llama', 'lora', {
      r: 2,
      loraAlpha: 3,
      useDora: true,
      useRslora: true,
      targetModules: ['q_proj', 'v_proj'],
    });
    const result = await exportAdapter(model, instance, { format: 'peft', out: join(tmp, 'llama-dora') });
    expect(result.verification.ok).toBe(true);
    const keys = await sortedKeys(join(tmp, 'llama-dora', 'adapter_model.safetensors'));
    expect(keys).toContain('base_model.model.model.layers.0.self_attn.q_proj.lora_magnitude_vector');
    const config = JSON.parse(await fs.readFile(join(tmp, 'llama-dora', 'adapter_config.json'), 'utf8'));
    expect(config).toMatchObject({
      use_dora: true,
      use_rslora: true,
      r: 2,
      lora_alpha: 3,
      peft_type: 'LORA',
    });
    await expect(
      exportAdapter(model, instance, { format: 'lora', out: join(tmp, 'llama-dora-lora') }),
    ).rejects.toThrow(/not low-rank \(DoRA.*export --format peft or --format merged/);
    await expect(fs.access(join(tmp, 'llama-dora-lora'))).rejects.toThrow();
    model.dispose();
  });
});

describe('LoRA conversion', () => {
  it('per-module ranks become rank_pattern/alpha_pattern, scaling 1, verified on a fresh base', async () => {
    const { model, instance } = await adapted('llama', 'lora', {
      r: 4,
      loraAlpha: 8,
      targetModules: ['q_proj', 'v_proj', 'o_proj'],
      rankPattern: { o_proj: 2 },
    });
    const out = join(tmp, 'llama-lora');
    const result = await exportAdapter(model, instance, {
      format: 'lora',
      out,
      baseModelNameOrPath: 'meta-llama/Llama-3.2-1B',
    });
    expect(result.verification.ok).toBe(true);
    const text = await fs.readFile(join(out, 'adapter_config.json'), 'utf8');
    expect(text).toBe(await fs.readFile(join(GOLDEN, 'llama-conversion.adapter_config.json'), 'utf8'));
    const config = JSON.parse(text);
    expect(config.r).toBe(4);
    expect(config.lora_alpha).toBe(4);
    expect(config.rank_pattern).toEqual({
      'model\\.layers\\.0\\.self_attn\\.o_proj': 2,
      'model\\.layers\\.1\\.self_attn\\.o_proj': 2,
    });
    expect(config.alpha_pattern).toEqual(config.rank_pattern);
    expect(config.target_modules).toEqual(['o_proj', 'q_proj', 'v_proj']);
    const file = await openSafetensors(join(out, 'adapter_model.safetensors'));
    // lora_B = left factor = s·B with s = 8/4: the conversion folds the scaling into B.
    const a = await file.readFloat32('base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight');
    expect(file.info('base_model.model.model.layers.0.self_attn.o_proj.lora_A.weight').shape[0]).toBe(2);
    await file.close();
    const native = instance.state();
    expect(Array.from(a)).toEqual(
      Array.from(native['model.layers.0.self_attn.q_proj.lora_A.weight'].dataSync()),
    );
    for (const t of Object.values(native)) t.dispose();
    model.dispose();
  });
});

describe('merged model export', () => {
  it('gpt2: Conv1D folded in stored orientation; names, dtypes and untouched tensors identical', async () => {
    const { model, instance } = await adapted('gpt2', 'lora', { r: 2, targetModules: ['c_attn', 'c_fc'] });
    const out = join(tmp, 'gpt2-merged');
    const result = await exportAdapter(model, instance, { format: 'merged', out });
    expect(result.verification.ok).toBe(true);
    expect(result.verification.maxAbsDiff).toBeLessThan(1e-4);
    expect(result.files).toEqual(
      expect.arrayContaining(['config.json', 'model.safetensors', 'tokenizer.json']),
    );
    const before = await openCheckpoint(join(FIXTURES, 'gpt2'));
    const after = await openCheckpoint(out);
    expect(after.keys()).toEqual(before.keys());
    for (const key of before.keys()) {
      expect(after.info(key)).toEqual(before.info(key));
      const same =
        Buffer.compare(Buffer.from(await before.readRaw(key)), Buffer.from(await after.readRaw(key))) === 0;
      expect(same, key).toBe(!/c_attn\.weight|c_fc\.weight/.test(key));
    }
    // Independent check of one merged tensor: W_stored + (s·B·A)ᵀ for Conv1D.
    const w = tf.tensor(await before.readFloat32('h.0.attn.c_attn.weight'), [16, 48]);
    const state = instance.state();
    const delta = tf.mul(
      tf.matMul(
        state['transformer.h.0.attn.c_attn.lora_B.weight'],
        state['transformer.h.0.attn.c_attn.lora_A.weight'],
      ),
      8 / 2,
    );
    const expected = tf.add(w, tf.transpose(delta)).dataSync();
    const got = await after.readFloat32('h.0.attn.c_attn.weight');
    let maxErr = 0;
    for (let i = 0; i < got.length; i++) maxErr = Math.max(maxErr, Math.abs(got[i] - expected[i]));
    expect(maxErr).toBeLessThan(1e-6);
    await before.close();
    await after.close();
    model.dispose();
  });

  it('llama-bf16: BF16 preserved for every tensor', async () => {
    const { model, instance } = await adapted('llama-bf16', 'lora', { r: 2 });
    const out = join(tmp, 'llama-bf16-merged');
    const result = await exportAdapter(model, instance, { format: 'merged', out });
    expect(result.verification.ok).toBe(true);
    const ckpt = await openCheckpoint(out);
    expect(new Set(ckpt.keys().map((k) => ckpt.info(k).dtype))).toEqual(new Set(['BF16']));
    await ckpt.close();
    model.dispose();
  });

  it('llama-sharded: the same shard files and weight_map', async () => {
    const { model, instance } = await adapted('llama-sharded', 'lora', { r: 2 });
    const out = join(tmp, 'llama-sharded-merged');
    const result = await exportAdapter(model, instance, { format: 'merged', out });
    expect(result.verification.ok).toBe(true);
    const index = (dir: string) =>
      fs.readFile(join(dir, 'model.safetensors.index.json'), 'utf8').then(JSON.parse);
    expect((await index(out)).weight_map).toEqual((await index(join(FIXTURES, 'llama-sharded'))).weight_map);
    model.dispose();
  });

  it('roberta (sequence classification): merged and PEFT both verify', async () => {
    const { model, instance } = await adapted('roberta', 'lora', { r: 2 });
    const merged = await exportAdapter(model, instance, {
      format: 'merged',
      out: join(tmp, 'roberta-merged'),
    });
    expect(merged.verification.ok).toBe(true);
    const peft = await exportAdapter(model, instance, { format: 'peft', out: join(tmp, 'roberta-peft') });
    expect(peft.verification.ok).toBe(true);
    const config = JSON.parse(await fs.readFile(join(tmp, 'roberta-peft', 'adapter_config.json'), 'utf8'));
    expect(config.task_type).toBe('SEQ_CLS');
    expect(config.target_modules).toEqual(['query', 'value']);
    model.dispose();
  });
});

describe('merged model edge cases', () => {
  it('a classification head missing from a causal checkpoint is written from memory; PEFT refuses to adapt it', async () => {
    const model = await loadModel(join(FIXTURES, 'gpt2'), { task: 'seq-cls', numLabels: 3, seed: 5 });
    expect(model.newlyInitialized).toEqual(['score']);
    const instance = attachAdapter(model, 'lora', { r: 2, targetModules: ['c_attn', 'score'] }, { seed: 3 });
    const state = instance.state();
    const random = Object.fromEntries(
      Object.entries(state).map(([k, t], i) => [k, tf.randomNormal(t.shape, 0, 0.2, 'float32', i)]),
    );
    instance.loadState(random);
    tf.dispose([...Object.values(state), ...Object.values(random)]);
    const out = join(tmp, 'gpt2-cls-merged');
    const result = await exportAdapter(model, instance, { format: 'merged', out });
    expect(result.verification.ok).toBe(true);
    const ckpt = await openCheckpoint(out);
    expect(ckpt.info('score.weight')).toEqual({ dtype: 'F32', shape: [3, 16], byteLength: 192 });
    await ckpt.close();
    await expect(
      exportAdapter(model, instance, { format: 'peft', out: join(tmp, 'gpt2-cls-peft') }),
    ).rejects.toThrow(/adapts score, which PEFT saves whole as modules_to_save .* export --format merged/);
    model.dispose();
  });

  it('refuses to merge into an embedding tied to the output head', async () => {
    const { model, instance } = await adapted('gpt2', 'lora', { r: 2, targetModules: ['wte'] });
    await expect(
      exportAdapter(model, instance, { format: 'merged', out: join(tmp, 'tied') }),
    ).rejects.toThrow(/transformer\.wte: its weight is shared with lm_head \(tie_word_embeddings\)/);
    const peft = await exportAdapter(model, instance, { format: 'peft', out: join(tmp, 'tied-peft') });
    expect(peft.verification.ok).toBe(true);
    const lora = await exportAdapter(model, instance, { format: 'lora', out: join(tmp, 'tied-lora') });
    expect(lora.verification.ok).toBe(true);
    const keys = await sortedKeys(join(tmp, 'tied-lora', 'adapter_model.safetensors'));
    expect(keys).toEqual([
      'base_model.model.transformer.wte.lora_embedding_A',
      'base_model.model.transformer.wte.lora_embedding_B',
    ]);
    model.dispose();
  });
});

describe('output folder safety and sharding', () => {
  it('refuses to replace the base model folder or an unrelated non-empty folder', async () => {
    const { model, instance } = await adapted('llama', 'lora', { r: 2 });
    await expect(exportAdapter(model, instance, { format: 'merged', out: model.dir })).rejects.toThrow(
      /would replace .*llama, which the export reads/,
    );
    await expect(exportAdapter(model, instance, { format: 'merged', out: FIXTURES })).rejects.toThrow(
      /which the export reads/,
    );
    const unrelated = join(tmp, 'documents');
    await fs.mkdir(unrelated, { recursive: true });
    await fs.writeFile(join(unrelated, 'notes.txt'), 'keep me');
    await expect(exportAdapter(model, instance, { format: 'peft', out: unrelated })).rejects.toThrow(
      /documents is not empty and was not written by an export/,
    );
    expect(await fs.readFile(join(unrelated, 'notes.txt'), 'utf8')).toBe('keep me');
    model.dispose();
  });

  it('a single-file model larger than maxShardBytes is written as shards + index and reloads', async () => {
    const { model, instance } = await adapted('llama', 'lora', { r: 2 });
    const out = join(tmp, 'llama-resharded');
    const result = await exportAdapter(model, instance, { format: 'merged', out, maxShardBytes: 20_000 });
    expect(result.verification.ok).toBe(true);
    expect(result.files).toContain('model.safetensors.index.json');
    expect(result.files.filter((f) => /^model-\d{5}-of-\d{5}\.safetensors$/.test(f)).length).toBeGreaterThan(
      1,
    );
    model.dispose();
  });
});

describe('loadPeftAdapter errors', () => {
  let model: LoadedModel;
  let dir: string;
  beforeAll(async () => {
    const a = await adapted('gpt2', 'lora', { r: 2 });
    dir = join(tmp, 'gpt2-for-errors');
    await exportAdapter(a.model, a.instance, { format: 'peft', out: dir });
    a.model.dispose();
    model = await loadModel(join(FIXTURES, 'gpt2'));
  });
  afterAll(() => model.dispose());

  async function variant(name: string, edit: (d: string) => Promise<void>): Promise<string> {
    const d = join(tmp, `variant-${name}`);
    await fs.cp(dir, d, { recursive: true });
    await edit(d);
    return d;
  }

  async function rewriteTensors(
    d: string,
    fn: (t: Record<string, { dtype: 'F32'; shape: number[]; data: Float32Array }>) => void,
  ) {
    const file = await openSafetensors(join(d, 'adapter_model.safetensors'));
    const tensors: Record<string, { dtype: 'F32'; shape: number[]; data: Float32Array }> = {};
    for (const k of file.keys())
      tensors[k] = { dtype: 'F32', shape: file.info(k).shape, data: await file.readFloat32(k) };
    await file.close();
    fn(tensors);
    await writeSafetensors(join(d, 'adapter_model.safetensors'), tensors, { format: 'pt' });
  }

  it('a missing tensor', async () => {
    const d = await variant('missing', (d) =>
      rewriteTensors(d, (t) => {
        delete t['base_model.model.transformer.h.1.attn.c_attn.lora_B.weight'];
      }),
    );
    await expect(loadPeftAdapter(model, d)).rejects.toThrow(
      /adapter_model\.safetensors: .*missing "transformer\.h\.1\.attn\.c_attn\.lora_B\.weight"/,
    );
    expect([...model.layers.values()].every((l) => l.adapters.size === 0)).toBe(true);
  });

  it('a wrong shape', async () => {
    const d = await variant('shape', (d) =>
      rewriteTensors(d, (t) => {
        t['base_model.model.transformer.h.0.attn.c_attn.lora_A.weight'] = {
          dtype: 'F32',
          shape: [2, 8],
          data: new Float32Array(16),
        };
      }),
    );
    await expect(loadPeftAdapter(model, d)).rejects.toThrow(/has shape \[2, 8\], expected \[2, 16\]/);
  });

  it('an adapter for another architecture (foreign base model)', async () => {
    const llama = await loadModel(join(FIXTURES, 'llama'));
    await expect(loadPeftAdapter(llama, dir)).rejects.toThrow(
      /tensor "base_model\.model\.transformer\.h\.0\.attn\.c_attn\.lora_A\.weight" is for a module this model does not have \(the adapter was saved for base model/,
    );
    llama.dispose();
  });

  it('a non-finite weight, named with its tensor and file', async () => {
    const d = await variant('nan', (d) =>
      rewriteTensors(d, (t) => {
        t['base_model.model.transformer.h.1.attn.c_attn.lora_A.weight'].data[3] = Number.POSITIVE_INFINITY;
      }),
    );
    await expect(loadPeftAdapter(model, d)).rejects.toThrow(
      `${join(d, 'adapter_model.safetensors')}: tensor "base_model.model.transformer.h.1.attn.c_attn.lora_A.weight" holds a non-finite value (Infinity at index 3`,
    );
    expect([...model.layers.values()].every((l) => l.adapters.size === 0)).toBe(true);
  });

  it('a malformed adapter_config.json and an unknown peft_type', async () => {
    const bad = await variant('badjson', (d) =>
      fs.writeFile(join(d, 'adapter_config.json'), '{"peft_type": "LORA", "r": '),
    );
    await expect(loadPeftAdapter(model, bad)).rejects.toThrow(
      /adapter_config\.json: adapter config is not valid JSON/,
    );
    const unknown = await variant('unknown', (d) =>
      fs.writeFile(join(d, 'adapter_config.json'), '{"peft_type": "IA3"}'),
    );
    await expect(loadPeftAdapter(model, unknown)).rejects.toThrow(
      /peft_type "IA3" is not supported \(supported: LORA/,
    );
  });

  it('round trip: the reloaded adapter is detachable and reproduces the outputs', async () => {
    const instance = await loadPeftAdapter(model, dir, { adapterName: 'again' });
    expect(instance.method).toBe('lora');
    detachAdapter(model, 'again');
  });
});
