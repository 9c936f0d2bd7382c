import { promises as fs } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { useTestBackend } from '../../backends/testing.ts';
import { loadTokenizer } from '../../models/index.ts';
import { f32ToBf16, f32ToF16, openCheckpoint } from '../../safetensors/index.ts';
import { exportAdapter } from '../index.ts';
import { adaptedFixture } from '../testing.ts';
import { permuteRows, transpose2d } from './arch.ts';
import { readGguf } from './format.ts';
import { buildModelfile } from './ollama.ts';
import { dequantize } from './quants.ts';

const MODELS = join(import.meta.dirname, '..', '..', 'models', 'fixtures');
let tmp: string;

beforeAll(async () => {
  await useTestBackend();
  tmp = await fs.mkdtemp(join(tmpdir(), 'export-gguf-'));
});

afterAll(async () => {
  await fs.rm(tmp, { recursive: true, force: true });
});

const adapted = (fixture: string, method: string, config: Record<string, unknown>) =>
  adaptedFixture(fixture, method, config, 3);

/** `{{ if .X }}…{{ end }}` and `{{ .X }}`: the part of Ollama's Go templates the Modelfile uses. */
function renderGo(template: string, vars: Record<string, string>): string {
  const withIfs = template.replace(
    /\{\{ if \.(\w+) \}\}([\s\S]*?)\{\{ end \}\}/g,
    (_, k: string, body: string) => (vars[k] ? body : ''),
  );
  return withIfs.replace(/\{\{ \.(\w+) \}\}/g, (_, k: string) => vars[k] ?? '');
}

describe('gguf export of a merged adapter', () => {
  it('llama LoRA: every GGUF tensor is the merged safetensors tensor (Q/K permuted), exactly for F32/F16/BF16', async () => {
    const { model, instance } = await adapted('llama', 'lora', {
      r: 4,
      loraAlpha: 8,
      targetModules: ['q_proj', 'k_proj', 'v_proj', 'down_proj'],
    });
    try {
      const merged = join(tmp, 'llama-merged');
      await exportAdapter(model, instance, { format: 'merged', out: merged });
      const ckpt = await openCheckpoint(merged);
      const heads = { q: 4, k: 2 };
      for (const quant of ['f32', 'f16', 'bf16', 'q8_0'] as const) {
        const out = join(tmp, `llama-gguf-${quant}`);
        const result = await exportAdapter(model, instance, { format: 'gguf', out, quant });
        expect(result.files).toEqual(['Modelfile', `model-${quant}.gguf`]);
        expect(result.verification.ok).toBe(true);
        expect(result.verification.adapterEffect).toBeGreaterThan(1e-3);
        const file = await readGguf(join(out, `model-${quant}.gguf`));
        try {
          for (const key of ckpt.keys()) {
            const m = /^model\.layers\.(\d+)\.self_attn\.([qk])_proj\.weight$/.exec(key);
            const name = key
              .replace(/^model\.layers\.(\d+)\./, 'blk.$1.')
              .replace('self_attn.q_proj', 'attn_q')
              .replace('self_attn.k_proj', 'attn_k')
              .replace('self_attn.v_proj', 'attn_v')
              .replace('self_attn.o_proj', 'attn_output')
              .replace('mlp.down_proj', 'ffn_down')
              .replace('mlp.up_proj', 'ffn_up')
              .replace('mlp.gate_proj', 'ffn_gate')
              .replace('input_layernorm', 'attn_norm')
              .replace('post_attention_layernorm', 'ffn_norm')
              .replace('model.embed_tokens', 'token_embd')
              .replace('model.norm', 'output_norm')
              .replace('lm_head', 'output');
            const t = file.tensors.find((x) => x.name === name);
            expect(t, name).toBeDefined();
            const shape = ckpt.info(key).shape;
            let expected = await ckpt.readFloat32(key);
            if (m) expected = permuteRows(expected, shape, heads[m[2] as 'q' | 'k']);
            const got = dequantize(t!.type, await file.readRaw(name), expected.length);
            if (t!.type === 'F32') expect(got, name).toEqual(expected);
            else if (t!.type === 'F16')
              expect(Array.from(f32ToF16(got)), name).toEqual(Array.from(f32ToF16(expected)));
            else if (t!.type === 'BF16')
              expect(Array.from(f32ToBf16(got)), name).toEqual(Array.from(f32ToBf16(expected)));
            else {
              const amax = Math.max(...expected.map(Math.abs));
              for (let i = 0; i < expected.length; i++) {
                expect(Math.abs(got[i] - expected[i])).toBeLessThanOrEqual(amax / 127);
              }
            }
          }
        } finally {
          await file.close();
        }
      }
      await ckpt.close();
    } finally {
      model.dispose();
    }
  });

  it('refuses q4_k_m in --format merged terms only by name: an unknown quantisation is a clear error', async () => {
    const { model, instance } = await adapted('llama', 'lora', { r: 2, loraAlpha: 4 });
    try {
      await expect(
        exportAdapter(model, instance, { format: 'gguf', out: join(tmp, 'bad'), quant: 'q3_k' as 'f16' }),
      ).rejects.toThrow(/unknown GGUF quantisation "q3_k"/);
      await expect(fs.stat(join(tmp, 'bad'))).rejects.toThrow();
    } finally {
      model.dispose();
    }
  });
});

describe('gguf-lora export', () => {
  for (const [fixture, method, config, permute] of [
    ['llama', 'lora', { r: 4, loraAlpha: 8, targetModules: ['q_proj', 'k_proj', 'v_proj'] }, true],
    ['llama', 'lora', { r: 4, loraAlpha: 8, useRslora: true, targetModules: ['q_proj', 'o_proj'] }, true],
    ['llama', 'vera', { r: 8, targetModules: ['q_proj', 'v_proj'] }, true],
    ['gpt2', 'lora', { r: 2, loraAlpha: 4, targetModules: ['c_attn'] }, false],
  ] as const) {
    it(`${fixture} ${method}${'useRslora' in config ? ' (rsLoRA)' : ''}: (α/r)·lora_b·lora_a is the adapter's ΔW`, async () => {
      const { model, instance } = await adapted(fixture, method, config);
      try {
        const out = join(tmp, `lora-${fixture}-${method}-${Object.keys(config).length}`);
        const result = await exportAdapter(model, instance, { format: 'gguf-lora', out, quant: 'f32' });
        expect(result.files).toEqual(['Modelfile', 'adapter-f32.gguf', 'model-f32.gguf']);
        expect(result.verification.ok).toBe(true);
        const file = await readGguf(join(out, 'adapter-f32.gguf'));
        expect(file.metadata.get('general.type')?.value).toBe('adapter');
        expect(file.metadata.get('adapter.type')?.value).toBe('lora');
        expect(file.metadata.has('general.file_type')).toBe(false);
        const alpha = file.metadata.get('adapter.lora.alpha')!.value as number;
        const heads = fixture === 'llama' ? { q_proj: 4, k_proj: 2 } : {};
        try {
          for (const [name, layer] of instance.layers) {
            const base = model.layers.get(name)!;
            const delta = tf.tidy(() => layer.deltaWeight().dataSync() as Float32Array);
            const ggufName = name
              .replace(/^model\.layers\.(\d+)\./, 'blk.$1.')
              .replace(/^transformer\.h\.(\d+)\./, 'blk.$1.')
              .replace('self_attn.q_proj', 'attn_q')
              .replace('self_attn.k_proj', 'attn_k')
              .replace('self_attn.v_proj', 'attn_v')
              .replace('self_attn.o_proj', 'attn_output')
              .replace('attn.c_attn', 'attn_qkv');
            const a = file.tensors.find((t) => t.name === `${ggufName}.weight.lora_a`)!;
            const b = file.tensors.find((t) => t.name === `${ggufName}.weight.lora_b`)!;
            const [r, inF] = a.shape;
            const [outF] = b.shape;
            expect([outF, inF]).toEqual([base.outFeatures, base.inFeatures]);
            const av = dequantize('F32', await file.readRaw(a.name), r * inF);
            let bv = dequantize('F32', await file.readRaw(b.name), outF * r);
            const h = heads[name.split('.').at(-1) as keyof typeof heads];
            if (permute && h) {
              // undo LlamaModel.permute on the rows: apply its inverse by permuting the identity's rows
              const perm = permuteRows(
                Float32Array.from({ length: outF }, (_, i) => i),
                [outF, 1],
                h,
              );
              const unpermuted = new Float32Array(bv.length);
              for (let i = 0; i < outF; i++) unpermuted.set(bv.subarray(i * r, (i + 1) * r), perm[i] * r);
              bv = unpermuted;
            }
            const s = alpha / r;
            // deltaWeight is in logical (out × in) orientation, Conv1D included
            const logical = delta;
            let worst = 0;
            let amax = 0;
            for (let i = 0; i < outF; i++) {
              for (let j = 0; j < inF; j++) {
                let v = 0;
                for (let k = 0; k < r; k++) v += bv[i * r + k] * av[k * inF + j];
                worst = Math.max(worst, Math.abs(s * v - logical[i * inF + j]));
                amax = Math.max(amax, Math.abs(logical[i * inF + j]));
              }
            }
            expect(amax, name).toBeGreaterThan(1e-4);
            expect(worst, name).toBeLessThan(1e-5 * Math.max(1, amax));
          }
        } finally {
          await file.close();
        }
        const modelfile = await fs.readFile(join(out, 'Modelfile'), 'utf8');
        expect(modelfile.split('\n').slice(0, 2)).toEqual([
          'FROM ./model-f32.gguf',
          'ADAPTER ./adapter-f32.gguf',
        ]);
      } finally {
        model.dispose();
      }
    });
  }

  it('refuses an adapter on a tied embedding (llama.cpp would apply it to the input side only)', async () => {
    const { model, instance } = await adapted('gpt2', 'lora', { r: 2, loraAlpha: 4, targetModules: ['wte'] });
    try {
      await expect(
        exportAdapter(model, instance, { format: 'gguf-lora', out: join(tmp, 'tied') }),
      ).rejects.toThrow(/tie_word_embeddings/);
    } finally {
      model.dispose();
    }
  });
});

describe('Ollama Modelfile', () => {
  for (const [fixture, family, system] of [
    ['llama', 'Llama 3', 'Be brief.'],
    ['qwen2', 'ChatML', 'Be brief.'],
    ['mistral', 'Mistral [INST]', ''],
  ] as const) {
    it(`${fixture}: the TEMPLATE renders the prompt as the model's own chat template does (${family})`, async () => {
      const tokenizer = await loadTokenizer(join(MODELS, fixture));
      const tokens = Array.from({ length: tokenizer.vocabSize }, (_, i) => tokenizer.idToToken(i) ?? '');
      const mf = buildModelfile({
        from: './model-f16.gguf',
        chatTemplate: tokenizer.chatTemplate,
        tokens,
        eosTokenId: tokenizer.eosTokenId,
      });
      expect(mf.family).toBe(family);
      const template = /TEMPLATE """([\s\S]*?)"""/.exec(mf.text)![1];
      const messages = [
        ...(system ? [{ role: 'system', content: system }] : []),
        { role: 'user', content: 'hello there' },
      ];
      const jinja = tokenizer.applyChatTemplate(messages, { addGenerationPrompt: true });
      const bos = tokenizer.specialTokens.bos_token ?? '';
      const prompt = renderGo(template.split('{{ .Response }}')[0], {
        System: system,
        Prompt: 'hello there',
      });
      expect(prompt).toBe(bos && jinja.startsWith(bos) ? jinja.slice(bos.length) : jinja);
      for (const s of mf.stop) expect(mf.text).toContain(`PARAMETER stop ${JSON.stringify(s)}`);
    });
  }

  it('a model without a chat template gets a plain completion template and its EOS token as stop', () => {
    const mf = buildModelfile({
      from: './m.gguf',
      chatTemplate: null,
      tokens: ['<|endoftext|>'],
      eosTokenId: 0,
    });
    expect(mf.text).toBe('FROM ./m.gguf\nTEMPLATE """{{ .Prompt }}"""\nPARAMETER stop "<|endoftext|>"\n');
  });

  it('an unknown chat template family gets no TEMPLATE and says why', () => {
    const mf = buildModelfile({
      from: './m.gguf',
      chatTemplate: '{{ messages }}',
      tokens: [],
      eosTokenId: null,
    });
    expect(mf.family).toBeNull();
    expect(mf.text).not.toContain('TEMPLATE');
    expect(mf.text).toContain('tokenizer.chat_template');
  });
});

describe('layout helpers', () => {
  it('transpose2d and permuteRows are the converter numpy operations', () => {
    expect(Array.from(transpose2d(Float32Array.from([1, 2, 3, 4, 5, 6]), [2, 3]))).toEqual([
      1, 4, 2, 5, 3, 6,
    ]);
    // rows of one head with head_dim 4: [r0 r1 | r2 r3] → r0 r2 r1 r3 (reshape(h, 2, d/2).swapaxes(1, 2))
    expect(Array.from(permuteRows(Float32Array.from([0, 1, 2, 3]), [4, 1], 1))).toEqual([0, 2, 1, 3]);
  });
});
