import { readFileSync } from 'node:fs';
import { copyFile, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { useTestBackend } from '../backends/testing.ts';
import { openCheckpoint, writeSafetensors } from '../safetensors/index.ts';
import { generate, generateGreedyBatch } from './generate.ts';
import { type AdapterLayer, inferenceContext } from './layers.ts';
import { loadModel } from './load.ts';
import { loadTokenizer } from './tokenizer.ts';
import type { LoadedModel } from './types.ts';

const FIXTURES = join(import.meta.dirname, 'fixtures');
const ctx = inferenceContext();

function expectedOf(name: string) {
  return JSON.parse(readFileSync(join(FIXTURES, name, 'expected.json'), 'utf8'));
}

function batchOf(ids: number[][], mask?: number[][]) {
  return {
    inputIds: tf.tensor2d(ids, undefined, 'int32'),
    attentionMask: tf.tensor2d(mask ?? ids.map((r) => r.map(() => 1)), undefined, 'int32'),
  };
}

let scratch: string;

async function copyFixture(name: string): Promise<string> {
  const dir = await mkdtemp(join(scratch, `${name}-`));
  for (const f of await readdir(join(FIXTURES, name))) await copyFile(join(FIXTURES, name, f), join(dir, f));
  return dir;
}

beforeAll(async () => {
  await useTestBackend();
  scratch = await mkdtemp(join(tmpdir(), 'models-test-'));
});

afterAll(async () => {
  await rm(scratch, { recursive: true, force: true });
});

describe('generate', () => {
  for (const name of ['gpt2', 'llama', 'qwen2', 'mistral', 'llama-sharded']) {
    it(`greedy decoding (KV cache) matches the reference's full recomputation: ${name}`, async () => {
      const exp = expectedOf(name).greedy;
      const model = await loadModel(join(FIXTURES, name));
      const tok = await loadTokenizer(join(FIXTURES, name));
      const before = tf.memory().numTensors;
      const out = await generate(model, tok, exp.prompt_ids, {
        maxNewTokens: exp.max_new_tokens,
        stopTokenIds: [exp.eos_token_id],
      });
      expect(out.ids).toEqual(exp.ids);
      expect(tf.memory().numTensors).toBe(before);
      model.dispose();
    });
  }

  for (const name of ['gpt2', 'llama']) {
    it(`batched greedy decoding of left-padded prompts gives each prompt's own greedy ids: ${name}`, async () => {
      const exp = expectedOf(name).greedy;
      const model = await loadModel(join(FIXTURES, name));
      const tok = await loadTokenizer(join(FIXTURES, name));
      const prompts: number[][] = [exp.prompt_ids, [5, 9], [...exp.prompt_ids, 3, 17, 4], [12]];
      // a stop token one prompt meets early, so rows finish at different steps
      const early = (await generate(model, tok, prompts[1], { maxNewTokens: 3, stopTokenIds: [] })).ids[1];
      for (const stopTokenIds of [[exp.eos_token_id], [early]]) {
        const alone = [];
        for (const p of prompts)
          alone.push((await generate(model, tok, p, { maxNewTokens: 7, stopTokenIds })).ids);
        const before = tf.memory().numTensors;
        const batched = await generateGreedyBatch(model, prompts, {
          maxNewTokens: 7,
          stopTokenIds,
          padTokenId: 0,
        });
        expect(batched).toEqual(alone);
        expect(tf.memory().numTensors).toBe(before);
      }
      model.dispose();
    });
  }

  it('the LM head runs on the last position only (KV-cache and full-recompute paths)', async () => {
    const exp = expectedOf('llama').greedy;
    const model = await loadModel(join(FIXTURES, 'llama'));
    const tok = await loadTokenizer(join(FIXTURES, 'llama'));
    const head = model.layers.get('lm_head')!;
    const headRows: number[] = [];
    const forward = head.forward.bind(head);
    head.forward = (x, c) => {
      headRows.push(x.shape[0]);
      return forward(x, c);
    };
    const opts = { maxNewTokens: exp.max_new_tokens, stopTokenIds: [exp.eos_token_id] };
    const cached = await generate(model, tok, exp.prompt_ids, opts);
    expect(cached.ids).toEqual(exp.ids);
    expect(headRows).toEqual(cached.ids.map(() => 1));
    // a LoadedModel that is not this engine's has no cache: whole sequences, still one head row each
    headRows.length = 0;
    const plain: LoadedModel = {
      spec: model.spec,
      dir: model.dir,
      layers: model.layers,
      forward: (b, c) => model.forward(b, c),
      hidden: (b, c) => model.hidden(b, c),
      head: (rows, c) => model.head(rows, c),
      dispose: () => model.dispose(),
    };
    const before = tf.memory().numTensors;
    const recomputed = await generate(plain, tok, exp.prompt_ids, opts);
    expect(recomputed.ids).toEqual(exp.ids);
    expect(headRows).toEqual(recomputed.ids.map(() => 1));
    const batched = await generateGreedyBatch(plain, [exp.prompt_ids, [5, 9]], {
      maxNewTokens: 3,
      stopTokenIds: [],
      padTokenId: 0,
    });
    expect(batched[0]).toEqual(exp.ids.slice(0, 3));
    expect(tf.memory().numTensors).toBe(before);
    head.forward = forward;
    model.dispose();
  });

  it('a text prompt is tokenised with special tokens; sampling is reproducible per seed', async () => {
    const model = await loadModel(join(FIXTURES, 'llama'));
    const tok = await loadTokenizer(join(FIXTURES, 'llama'));
    const greedy = await generate(model, tok, 'the cat', { maxNewTokens: 6 });
    expect(greedy.ids).toEqual(expectedOf('llama').greedy.ids);
    const a = await generate(model, tok, 'the cat', { maxNewTokens: 8, temperature: 1.5, seed: 7 });
    const b = await generate(model, tok, 'the cat', { maxNewTokens: 8, temperature: 1.5, seed: 7 });
    const c = await generate(model, tok, 'the cat', { maxNewTokens: 8, temperature: 1.5, seed: 8 });
    expect(a.ids).toEqual(b.ids);
    expect(a.ids).not.toEqual(c.ids);
    const top1 = await generate(model, tok, 'the cat', { maxNewTokens: 6, temperature: 1, topK: 1, seed: 3 });
    expect(top1.ids).toEqual(greedy.ids);
    model.dispose();
  });

  it('stops at a stop token and reports why', async () => {
    const model = await loadModel(join(FIXTURES, 'gpt2'));
    const tok = await loadTokenizer(join(FIXTURES, 'gpt2'));
    const first = (await generate(model, tok, 'the cat', { maxNewTokens: 1 })).ids[0];
    const out = await generate(model, tok, 'the cat', { maxNewTokens: 5, stopTokenIds: [first] });
    expect(out).toMatchObject({ ids: [first], finishReason: 'eos' });
    model.dispose();
  });

  it('decoding in chunks with the cache gives the logits of one full forward pass', async () => {
    const model = await loadModel(join(FIXTURES, 'mistral'));
    const ids = [5, 9, 40, 41, 77, 3, 8, 100];
    const full = tf.tidy(() => model.forward(batchOf([ids]), ctx));
    const first = model.decode(
      tf.tensor2d([ids.slice(0, 5)], undefined, 'int32'),
      tf.ones([1, 5]),
      null,
      ctx,
    );
    const second = model.decode(
      tf.tensor2d([ids.slice(5)], undefined, 'int32'),
      tf.ones([1, 8]),
      first.cache,
      ctx,
    );
    const joined = tf.concat([first.logits, second.logits], 1);
    expect(tf.max(tf.abs(tf.sub(joined, full))).dataSync()[0]).toBeLessThan(1e-5);
    tf.dispose([full, joined, first.logits, second.logits, first.cache, second.cache] as never);
    model.dispose();
  });
});

describe('adapters take part in the forward pass', () => {
  /** An adapter adding `shift` to every output (Linear) or row (Embedding). */
  function shiftAdapter(shift: number, out: number): AdapterLayer {
    return {
      adapterName: 'shift',
      forward: (_x, base) => tf.add(base, shift),
      embed: (_ids, base) => tf.add(base, shift),
      deltaWeight: () => tf.zeros([out, 1]),
      lowRankFactors: () => null,
    };
  }

  it('through Linear (lm_head) and Embedding modules', async () => {
    const model = await loadModel(join(FIXTURES, 'llama'));
    const batch = batchOf([[1, 2, 3]]);
    const base = tf.tidy(() => model.forward(batch, ctx));
    const head = model.layers.get('lm_head')!;
    head.adapters.set('shift', shiftAdapter(0.5, 1));
    head.activeAdapters = ['shift'];
    const shifted = tf.tidy(() => model.forward(batch, ctx));
    expect(tf.max(tf.abs(tf.sub(tf.sub(shifted, base), 0.5))).dataSync()[0]).toBeLessThan(1e-5);
    head.adaptersEnabled = false;
    const off = tf.tidy(() => model.forward(batch, ctx));
    expect(tf.max(tf.abs(tf.sub(off, base))).dataSync()[0]).toBe(0);
    const emb = model.layers.get('model.embed_tokens')!;
    emb.adapters.set('shift', shiftAdapter(0.1, 1));
    emb.activeAdapters = ['shift'];
    const embShifted = tf.tidy(() => model.forward(batch, ctx));
    expect(tf.max(tf.abs(tf.sub(embShifted, base))).dataSync()[0]).toBeGreaterThan(1e-3);
    tf.dispose([base, shifted, off, embShifted]);
    model.dispose();
  });

  it('gradients reach an adapter variable and match finite differences', async () => {
    const model = await loadModel(join(FIXTURES, 'llama'));
    const layer = model.layers.get('model.layers.0.self_attn.q_proj')!;
    const a = tf.variable(tf.randomNormal<tf.Rank.R2>([16, 16], 0, 0.1, 'float32', 1));
    layer.adapters.set('lin', {
      adapterName: 'lin',
      forward: (x, base) => tf.add(base, tf.matMul(x, a)),
      deltaWeight: () => tf.transpose(a),
      lowRankFactors: () => null,
    });
    layer.activeAdapters = ['lin'];
    const e = expectedOf('llama');
    const batch = batchOf(e.input_ids, e.attention_mask);
    // padded positions are left out, as a training loss does (their fully masked rows carry no signal)
    const realTokens = tf.tensor3d(e.attention_mask.map((r: number[]) => r.map((m) => [m])));
    const weights = tf.mul(tf.randomNormal([3, 7, 301], 0, 1, 'float32', 2), realTokens);
    const loss = () => tf.sum(tf.mul(model.forward(batch, ctx), weights)) as tf.Scalar;
    const { grads } = tf.variableGrads(loss, [a]);
    const g = grads[a.name].dataSync();
    const index = 5 * 16 + 3;
    const h = 3e-3;
    const at = (delta: number) => {
      const values = a.dataSync().slice();
      values[index] += delta;
      a.assign(tf.tensor2d(values, [16, 16]));
      return tf.tidy(() => loss().dataSync()[0]);
    };
    const plus = at(h);
    const minus = at(-2 * h);
    at(h);
    const fd = (plus - minus) / (2 * h);
    expect(Math.abs(fd - g[index])).toBeLessThan(2e-2 * Math.max(1, Math.abs(fd)));
    tf.dispose([weights, realTokens, a, grads[a.name]] as never);
    model.dispose();
  });

  it('a merge into a tied lm_head updates the input embedding too (shared tensor)', async () => {
    const model = await loadModel(join(FIXTURES, 'gpt2'));
    const head = model.layers.get('lm_head')!;
    const wte = model.layers.get('transformer.wte')!;
    expect(head.weight).toBe(wte.weight);
    const delta = tf.randomNormal<tf.Rank.R2>([297, 16], 0, 0.1, 'float32', 4);
    head.adapters.set('d', {
      adapterName: 'd',
      forward: (_x, base) => base,
      deltaWeight: () => delta.clone(),
      lowRankFactors: () => null,
    });
    const original = wte.weight.float32().slice();
    head.merge('d');
    expect(wte.weight).toBe(head.weight);
    expect(wte.weight.float32()[0]).toBeCloseTo(original[0] + delta.dataSync()[0], 5);
    head.unmerge('d');
    expect(wte.weight).toBe(head.weight);
    expect(wte.weight.float32()[0]).toBeCloseTo(original[0], 5);
    delta.dispose();
    const before = tf.memory().numTensors;
    const weights = new Set([...model.layers.values()].map((l) => l.weight));
    const biases = new Set([...model.layers.values()].flatMap((l) => (l.bias ? [l.bias] : [])));
    // frozen weights are tensors only off the native backend (there they live outside tfjs)
    const weightTensors = tf.getBackend() === 'native' ? 0 : weights.size;
    model.dispose();
    expect(tf.memory().numTensors).toBe(
      before -
        biases.size -
        weightTensors -
        (model as unknown as { params: Map<string, unknown> }).params.size,
    );
    for (const w of weights) expect(w.isDisposed).toBe(true);
  });
});

describe('loading errors and heads', () => {
  it('initialises a missing seq-cls head at random and reports it', async () => {
    const model = await loadModel(join(FIXTURES, 'gpt2'), { task: 'seq-cls', numLabels: 4 });
    expect(model.spec.architecture).toBe('GPT2ForSequenceClassification');
    expect(model.newlyInitialized).toEqual(['score']);
    const logits = tf.tidy(() => model.forward(batchOf([[1, 2, 3]]), ctx));
    expect(logits.shape).toEqual([1, 4]);
    logits.dispose();
    model.dispose();
  });

  it('a head with another label count is an error that says how many labels it has', async () => {
    await expect(loadModel(join(FIXTURES, 'gpt2-cls'), { numLabels: 5 })).rejects.toThrow(
      /model.safetensors: tensor "score.weight" has shape \[3,16\], expected \[5,16\].*numLabels 3/,
    );
  });

  it('lists missing weights and names the file', async () => {
    const dir = await copyFixture('llama');
    const reader = await openCheckpoint(dir);
    const tensors: Record<string, { dtype: 'F32'; shape: number[]; data: Float32Array }> = {};
    for (const key of reader.keys()) {
      if (key.includes('layers.1.mlp') || key === 'lm_head.weight') continue;
      tensors[key] = { dtype: 'F32', shape: reader.info(key).shape, data: await reader.readFloat32(key) };
    }
    await reader.close();
    await writeSafetensors(join(dir, 'model.safetensors'), tensors);
    await expect(loadModel(dir)).rejects.toThrow(
      /model.safetensors: missing 4 weights for LlamaForCausalLM: model.layers.1.mlp.gate_proj.weight, model.layers.1.mlp.up_proj.weight, model.layers.1.mlp.down_proj.weight, lm_head.weight/,
    );
  });

  it('rejects a weight of the wrong shape, an unsupported model_type and a folder without weights', async () => {
    const dir = await copyFixture('qwen2');
    const config = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8'));
    await writeFile(join(dir, 'config.json'), JSON.stringify({ ...config, intermediate_size: 48 }));
    await expect(loadModel(dir)).rejects.toThrow(
      /tensor "model.layers.0.mlp.gate_proj.weight" has shape \[40,16\], expected \[48,16\]/,
    );
    await writeFile(join(dir, 'config.json'), JSON.stringify({ ...config, model_type: 'falcon' }));
    await expect(loadModel(dir)).rejects.toThrow(
      /model_type "falcon" is not supported \(supported: gpt2, llama/,
    );
    await writeFile(join(dir, 'config.json'), JSON.stringify(config));
    await rm(join(dir, 'model.safetensors'));
    await writeFile(join(dir, 'pytorch_model.bin'), '');
    await expect(loadModel(dir)).rejects.toThrow(/no model.safetensors.*pytorch_model.bin/);
    await expect(loadModel(join(dir, 'nope'))).rejects.toThrow(/config.json: file not found/);
  });
});
