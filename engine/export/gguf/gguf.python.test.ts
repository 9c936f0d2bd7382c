import { spawnSync } from 'node:child_process';
import { promises as fs } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { useTestBackend } from '../../backends/testing.ts';
import { openCheckpoint } from '../../safetensors/index.ts';
import { pythonOrSkip } from '../../testing/python.ts';
import { exportAdapter } from '../index.ts';
import { adaptedModel } from '../testing.ts';
import { readGguf, str, writeGguf } from './format.ts';
import { planGgufModel } from './model.ts';
import { dequantize, quantize } from './quants.ts';

const REPO = join(import.meta.dirname, '..', '..', '..');
const MODELS = join(REPO, 'engine', 'models', 'fixtures');
const GGUF_MODELS = join(import.meta.dirname, 'fixtures', 'models');
const CHECK = join(import.meta.dirname, 'check_gguf.py');
let tmp: string;

beforeAll(async () => {
  await useTestBackend();
  tmp = await fs.mkdtemp(join(tmpdir(), 'gguf-py-'));
});

afterAll(async () => {
  await fs.rm(tmp, { recursive: true, force: true });
});

interface Case {
  dir: string;
  method: string;
  config: Record<string, unknown>;
  quants: ('f32' | 'f16' | 'bf16' | 'q8_0' | 'q4_k_m')[];
  lora: boolean;
}

const CASES: Record<string, Case> = {
  demo: {
    dir: join(REPO, 'assets', 'demo', 'model'),
    method: 'lora',
    config: { r: 4, loraAlpha: 8, targetModules: ['q_proj', 'v_proj', 'down_proj'] },
    quants: ['f32', 'f16', 'bf16', 'q8_0', 'q4_k_m'],
    lora: true,
  },
  gpt2: {
    dir: join(MODELS, 'gpt2'),
    method: 'lora',
    config: { r: 2, loraAlpha: 4, targetModules: ['c_attn', 'c_fc'] },
    quants: ['f32', 'f16', 'q8_0'],
    lora: true,
  },
  mistral: {
    dir: join(MODELS, 'mistral'),
    method: 'lora',
    config: { r: 2, loraAlpha: 4 },
    quants: ['bf16', 'q4_k_m'],
    lora: true,
  },
  qwen2: {
    dir: join(MODELS, 'qwen2'),
    method: 'vera',
    config: { r: 8, targetModules: ['q_proj', 'v_proj'] },
    quants: ['f16', 'q8_0'],
    lora: true,
  },
  qwen3: {
    dir: join(GGUF_MODELS, 'qwen3'),
    method: 'lora',
    config: { r: 2, loraAlpha: 4, targetModules: ['q_proj', 'k_proj', 'down_proj'] },
    quants: ['f16', 'q4_k_m'],
    lora: true,
  },
  smollm3: {
    dir: join(GGUF_MODELS, 'smollm3'),
    method: 'lora',
    config: { r: 2, loraAlpha: 4, targetModules: ['q_proj', 'v_proj'] },
    quants: ['bf16', 'q8_0'],
    lora: true,
  },
  gemma3_text: {
    dir: join(GGUF_MODELS, 'gemma3_text'),
    method: 'lora',
    config: { r: 2, loraAlpha: 4, targetModules: ['q_proj', 'o_proj', 'up_proj'] },
    quants: ['f32', 'q4_k_m'],
    lora: true,
  },
};

const GGUF_NAMES: [RegExp, string][] = [
  [/^model\.layers\.(\d+)\.self_attn\.([qkvo])_proj$/, 'blk.$1.attn_$2'],
  [/^model\.layers\.(\d+)\.mlp\.(gate|up|down)_proj$/, 'blk.$1.ffn_$2'],
  [/^transformer\.h\.(\d+)\.attn\.c_attn$/, 'blk.$1.attn_qkv'],
  [/^transformer\.h\.(\d+)\.mlp\.c_fc$/, 'blk.$1.ffn_up'],
];

function ggufModuleName(module: string): string {
  for (const [re, to] of GGUF_NAMES)
    if (re.test(module)) return module.replace(re, to).replace('attn_o', 'attn_output');
  throw new Error(`no GGUF name for ${module} in this test`);
}

describe('GGUF files read by llama.cpp gguf-py', () => {
  it('names, shapes, types, metadata and dequantised weights match the merged safetensors; Q8_0 bytes are gguf-py’s', async () => {
    const python = pythonOrSkip(['gguf', 'numpy', 'safetensors']);
    if (!python) return;
    const manifest: { models: unknown[]; loras: unknown[]; raw: unknown[] } = {
      models: [],
      loras: [],
      raw: [],
    };
    // Q4_K/Q6_K need rows of 256: one synthetic file with every block type, checked against our dequantisation
    const x = Float32Array.from(
      { length: 4 * 512 },
      (_, i) => Math.sin(i * 0.37) * (1 + ((i * 7) % 13)) * 0.1,
    );
    const types = ['Q4_K', 'Q6_K', 'Q5_0', 'Q8_0'] as const;
    const rawPath = join(tmp, 'raw.gguf');
    const handle = await fs.open(rawPath, 'w');
    await writeGguf(
      handle,
      [['general.architecture', str('llama')]],
      types.map((type) => ({ name: `t.${type}`, shape: [4, 512], type })),
      async (t) => quantize(t.type, x),
    );
    await handle.close();
    const raw = [];
    for (const type of types) {
      const ours = join(tmp, `raw-${type}.f32`);
      await fs.writeFile(ours, new Uint8Array(dequantize(type, quantize(type, x), x.length).buffer));
      raw.push({ name: `t.${type}`, type, ours });
    }
    manifest.raw.push({ path: rawPath, tensors: raw });
    for (const [key, c] of Object.entries(CASES)) {
      const { model, instance } = await adaptedModel(c.dir, c.method, c.config, { seed: 5, std: 0.1 });
      try {
        const merged = join(tmp, `${key}-merged`);
        await exportAdapter(model, instance, { format: 'merged', out: merged });
        for (const quant of c.quants) {
          const out = join(tmp, `${key}-${quant}`);
          await exportAdapter(model, instance, { format: 'gguf', out, quant });
          const ckpt = await openCheckpoint(c.dir);
          const plan = await planGgufModel(c.dir, ckpt, quant);
          await ckpt.close();
          const file = await readGguf(join(out, `model-${quant}.gguf`));
          const metadata: Record<string, unknown> = {};
          for (const [k, v] of file.metadata) if (v.type !== 9) metadata[k] = v.value;
          await file.close();
          manifest.models.push({
            path: join(out, `model-${quant}.gguf`),
            merged,
            metadata,
            tensors: plan.tensors.map((t) => ({
              name: t.name,
              type: t.type,
              shape: t.shape,
              source: t.source,
              rewrite: t.rewrite,
            })),
          });
        }
        if (c.lora) {
          const out = join(tmp, `${key}-lora`);
          await exportAdapter(model, instance, { format: 'gguf-lora', out, quant: 'f32' });
          manifest.loras.push({
            path: join(out, 'adapter-f32.gguf'),
            merged,
            base: c.dir,
            modules: [...instance.layers.keys()].map((m) => {
              const role = m.split('.').at(-1)!;
              const config = model.spec.config;
              // LlamaModel and its subclasses permute Q/K; Qwen2/Qwen3/Gemma3 (NeoX RoPE) and GPT-2 do not
              const heads = !['llama', 'mistral', 'smollm3'].includes(model.spec.modelType)
                ? null
                : role === 'q_proj'
                  ? config.num_attention_heads
                  : role === 'k_proj'
                    ? config.num_key_value_heads
                    : null;
              return {
                gguf: `${ggufModuleName(m)}.weight`,
                source: model.layers.get(m)!.weightKey,
                heads,
                conv1d: model.layers.get(m)!.kind === 'Conv1D',
              };
            }),
          });
        }
      } finally {
        model.dispose();
      }
    }
    const run = spawnSync(python, [CHECK], {
      input: JSON.stringify(manifest),
      encoding: 'utf8',
      timeout: 300_000,
    });
    expect(run.status, run.stderr).toBe(0);
    const report = JSON.parse(run.stdout) as {
      ok: boolean;
      problems: string[];
      worst: Record<string, number>;
    };
    expect(report.problems).toEqual([]);
    expect(report.ok).toBe(true);
    expect(report.worst.F32).toBe(0);
    expect(Object.keys(report.worst).sort()).toEqual(['BF16', 'F16', 'F32', 'Q5_0', 'Q8_0', 'lora']);
  }, 600_000);
});
