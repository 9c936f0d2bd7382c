import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { useTestBackend } from '../../backends/testing.ts';
import { loadModel } from '../../models/index.ts';
import { openCheckpoint } from '../../safetensors/index.ts';
import { ExportError } from '../errors.ts';
import { loadPeftAdapter } from '../peft.ts';
import { GgmlType, ggufFileBytes, readGguf } from './format.ts';
import { estimateGgufBytes, GGUF_QUANTS, type GgufQuant, planGgufModel, writeGgufModel } from './index.ts';
import { writeGgufLora } from './lora.ts';
import { sizeLabel } from './model.ts';
import { dequantBound, dequantize, quantize } from './quants.ts';

const HERE = import.meta.dirname;
const FIXTURES = join(HERE, 'fixtures');
const REPO = join(HERE, '..', '..', '..');
const MODEL_DIRS: Record<string, string> = {
  demo: join(REPO, 'assets', 'demo', 'model'),
  gpt2: join(REPO, 'engine', 'models', 'fixtures', 'gpt2'),
  llama: join(REPO, 'engine', 'models', 'fixtures', 'llama'),
  'llama-bf16': join(REPO, 'engine', 'models', 'fixtures', 'llama-bf16'),
  'llama-rope-linear': join(REPO, 'engine', 'models', 'fixtures', 'llama-rope-linear'),
  'llama-sharded': join(REPO, 'engine', 'models', 'fixtures', 'llama-sharded'),
  mistral: join(REPO, 'engine', 'models', 'fixtures', 'mistral'),
  qwen2: join(REPO, 'engine', 'models', 'fixtures', 'qwen2'),
  qwen3: join(FIXTURES, 'models', 'qwen3'),
  smollm3: join(FIXTURES, 'models', 'smollm3'),
  gemma3_text: join(FIXTURES, 'models', 'gemma3_text'),
};

interface Reference {
  sha256: string;
  bytes: number;
  kv: [string, string][];
  tensors: [string, string, number[]][];
}

let tmp: string;
let reference: Record<string, Record<GgufQuant, Reference>>;

beforeAll(async () => {
  await useTestBackend();
  tmp = await fs.mkdtemp(join(tmpdir(), 'gguf-test-'));
  reference = JSON.parse(await fs.readFile(join(FIXTURES, 'reference.json'), 'utf8'));
});

afterAll(async () => {
  await fs.rm(tmp, { recursive: true, force: true });
});

const VALUE_TYPE_NAMES = [
  'UINT8',
  'INT8',
  'UINT16',
  'INT16',
  'UINT32',
  'INT32',
  'FLOAT32',
  'BOOL',
  'STRING',
  'ARRAY',
  'UINT64',
  'INT64',
  'FLOAT64',
];

describe('ggml quantisers', () => {
  it('produce the bytes of ggml_quantize_chunk (Q5_0, Q8_0, Q4_K, Q6_K) bit for bit', async () => {
    const input = new Float32Array((await fs.readFile(join(FIXTURES, 'quants-input.f32'))).buffer.slice(0));
    for (const type of ['Q5_0', 'Q8_0', 'Q4_K', 'Q6_K'] as const) {
      const expected = new Uint8Array(await fs.readFile(join(FIXTURES, `quants-${type.toLowerCase()}.bin`)));
      const ours = quantize(type, input);
      expect(ours.length, type).toBe(expected.length);
      const differing = ours.findIndex((b, i) => b !== expected[i]);
      expect(differing, `${type}: first differing byte`).toBe(-1);
    }
  });

  it('dequantise within half a step (Q8_0) of the input and exactly for F32/F16/BF16 round trips', () => {
    const x = Float32Array.from({ length: 256 }, (_, i) => Math.sin(i * 0.7) * (1 + (i % 5)));
    const q8 = dequantize('Q8_0', quantize('Q8_0', x), x.length);
    for (let b = 0; b < 256; b += 32) {
      const amax = Math.max(...x.subarray(b, b + 32).map(Math.abs));
      for (let i = b; i < b + 32; i++)
        expect(Math.abs(q8[i] - x[i])).toBeLessThanOrEqual((amax / 127) * 0.52);
    }
    expect(dequantize('F32', quantize('F32', x), x.length)).toEqual(x);
    const f16 = dequantize('F16', quantize('F16', x), x.length);
    expect(dequantize('F16', quantize('F16', f16), x.length)).toEqual(f16);
    const q4 = dequantize('Q4_K', quantize('Q4_K', x), x.length);
    expect(Math.max(...q4.map((v, i) => Math.abs(v - x[i])))).toBeLessThan(0.6);
  });

  it('stay within dequantBound, the bound every GGUF read-back check holds a tensor to', () => {
    let seed = 1;
    const rand = () => {
      seed = (seed * 16807) % 2147483647;
      return (seed / 2147483647) * 2 - 1;
    };
    for (const type of ['Q8_0', 'Q5_0', 'Q4_K', 'Q6_K', 'F16', 'BF16'] as const) {
      let worst = 0;
      for (let trial = 0; trial < 200; trial++) {
        const x = Float32Array.from({ length: 256 }, () => rand() * (0.5 + trial / 100));
        const amax = Math.max(...x.map(Math.abs));
        const y = dequantize(type, quantize(type, x), x.length);
        const diff = Math.max(...y.map((v, i) => Math.abs(v - x[i])));
        worst = Math.max(worst, diff / dequantBound(type, amax));
      }
      expect(worst, type).toBeLessThanOrEqual(1);
      // Q8_0's half step plus its f16 scale rounding is reached: a tighter bound (amax/250) fails real adapters
      if (type === 'Q8_0') expect(worst).toBeGreaterThan(250 / 254 - 0.1);
    }
  });

  it('refuse a row that is not a whole number of blocks', () => {
    expect(() => quantize('Q8_0', new Float32Array(33))).toThrow(/multiple of 32/);
  });
});

describe('GGUF files as llama.cpp writes them', () => {
  it('size_label matches gguf-py for the usual magnitudes', () => {
    expect(sizeLabel(1_049_728)).toBe('1.0M');
    expect(sizeLabel(124_439_808)).toBe('124M');
    expect(sizeLabel(7_241_732_096)).toBe('7.2B');
    expect(sizeLabel(16_944)).toBe('17K');
  });

  for (const key of Object.keys(MODEL_DIRS)) {
    it(`${key}: every quantisation is byte-identical to convert_hf_to_gguf.py / llama-quantize`, async () => {
      const model = await loadModel(MODEL_DIRS[key]);
      try {
        for (const quant of GGUF_QUANTS) {
          const ref = reference[key][quant];
          const path = join(tmp, `${key}-${quant}.gguf`);
          const result = await writeGgufModel(model, null, path, quant, { name: 'Model' });
          expect(result.verification.ok, result.verification.method).toBe(true);
          const file = await readGguf(path);
          const kv = [...file.metadata].map(([k, v]) => [k, VALUE_TYPE_NAMES[v.type]]);
          const tensors = file.tensors.map((t) => [t.name, t.type, t.shape]);
          await file.close();
          expect(kv, `${key} ${quant} metadata`).toEqual(ref.kv);
          expect(tensors, `${key} ${quant} tensors`).toEqual(ref.tensors);
          const bytes = await fs.readFile(path);
          expect(bytes.length).toBe(ref.bytes);
          expect(createHash('sha256').update(bytes).digest('hex'), `${key} ${quant} sha256`).toBe(ref.sha256);
          expect(await estimateGgufBytes(MODEL_DIRS[key], quant, { name: 'Model' })).toBe(ref.bytes);
          await fs.rm(path);
        }
      } finally {
        model.dispose();
      }
    });
  }
});

describe('GGUF reader', () => {
  it('reads back what the writer planned and refuses a truncated file by name', async () => {
    const model = await loadModel(MODEL_DIRS.llama);
    const path = join(tmp, 'llama-q8.gguf');
    try {
      const result = await writeGgufModel(model, null, path, 'q8_0');
      const file = await readGguf(path);
      expect(file.tensors.map((t) => t.name)).toEqual(result.plan.tensors.map((t) => t.name));
      expect(file.metadata.get('general.architecture')?.value).toBe('llama');
      expect(file.metadata.get('general.file_type')?.value).toBe(7);
      expect(ggufFileBytes(result.plan.metadata, result.plan.tensors)).toBe(result.bytes);
      await file.close();
    } finally {
      model.dispose();
    }
    const bytes = await fs.readFile(path);
    await fs.writeFile(path, bytes.subarray(0, 100));
    await expect(readGguf(path)).rejects.toThrow(/llama-q8\.gguf: truncated GGUF header/);
    await fs.writeFile(path, bytes.subarray(0, bytes.length - 10));
    await expect(readGguf(path)).rejects.toThrow(/runs past the end of the file/);
    expect(GgmlType.Q4_K).toBe(12);
  });
});

describe('GGUF refusals', () => {
  it('refuses architectures and tokenizers llama.cpp would not load as written, and unknown quantisations', async () => {
    const bert = join(REPO, 'engine', 'models', 'fixtures', 'bert');
    const ckpt = { keys: () => [], info: () => ({ shape: [] }) };
    await expect(planGgufModel(bert, ckpt, 'f16')).rejects.toThrow(
      /GGUF export writes causal language models; this is a seq-cls model/,
    );
    await expect(planGgufModel(MODEL_DIRS.llama, ckpt, 'q2_k' as GgufQuant)).rejects.toThrow(
      /unknown GGUF quantisation "q2_k"/,
    );
    const odd = join(tmp, 'odd-tokenizer');
    await fs.cp(MODEL_DIRS.qwen2, odd, { recursive: true });
    const tok = JSON.parse(await fs.readFile(join(odd, 'tokenizer.json'), 'utf8'));
    tok.pre_tokenizer = { type: 'Whitespace' };
    await fs.writeFile(join(odd, 'tokenizer.json'), JSON.stringify(tok));
    await expect(planGgufModel(odd, ckpt, 'f16')).rejects.toThrow(ExportError);
    await expect(planGgufModel(odd, ckpt, 'f16')).rejects.toThrow(
      /pre-tokenizer is not one llama\.cpp knows/,
    );
  });
});

describe('GGUF refusals of what llama.cpp would read or run differently', () => {
  const ckpt = { keys: () => [], info: () => ({ shape: [] }) };
  /** A copy of a fixture model folder with config.json edited (and files added). */
  async function variant(
    from: string,
    name: string,
    patch: Record<string, unknown>,
    extra: Record<string, string> = {},
  ): Promise<string> {
    const dir = join(tmp, name);
    await fs.cp(from, dir, { recursive: true });
    const config = JSON.parse(await fs.readFile(join(dir, 'config.json'), 'utf8'));
    await fs.writeFile(join(dir, 'config.json'), JSON.stringify({ ...config, ...patch }));
    for (const [file, text] of Object.entries(extra)) await fs.writeFile(join(dir, file), text);
    return dir;
  }
  const transformers = join(REPO, 'engine', 'models', 'fixtures', 'transformers');

  it('gemma2 and phi3: refused naming what the converter needs', async () => {
    await expect(planGgufModel(join(transformers, 'gemma2'), ckpt, 'f16')).rejects.toThrow(
      /model_type "gemma2": .*tokenizer\.model \(SentencePiece\) only/,
    );
    await expect(planGgufModel(join(transformers, 'phi3'), ckpt, 'f16')).rejects.toThrow(
      /model_type "phi3": .*SentencePiece tokenizer\.model/,
    );
  });

  it('a tokenizer.model beside tokenizer.json (the converter would read it instead)', async () => {
    const dir = await variant(MODEL_DIRS.qwen3, 'spm', {}, { 'tokenizer.model': 'x' });
    await expect(planGgufModel(dir, ckpt, 'f16')).rejects.toThrow(/tokenizer\.model: .*SentencePiece/);
  });

  it("settings llama.cpp's runtime fixes instead of reading them", async () => {
    const cases: [string, string, Record<string, unknown>, RegExp][] = [
      ['smollm3', 'smol-rope', { no_rope_layers: [1, 0, 1, 0] }, /no_rope_layers \[1, 0, 1, 0\]/],
      ['qwen3', 'qwen-swa', { use_sliding_window: true }, /use_sliding_window is true/],
      ['gemma3_text', 'gemma-scalar', { query_pre_attn_scalar: 12 }, /query_pre_attn_scalar is 12/],
      [
        'gemma3_text',
        'gemma-layers',
        {
          layer_types: Array.from({ length: 6 }, (_, i) => (i % 2 ? 'full_attention' : 'sliding_attention')),
        },
        /layer_types \[.*\] is not llama\.cpp.s gemma3 pattern \(every 6th layer global\)/,
      ],
    ];
    for (const [model, name, patch, message] of cases) {
      const dir = await variant(MODEL_DIRS[model], name, patch);
      await expect(planGgufModel(dir, ckpt, 'f16'), name).rejects.toThrow(message);
    }
  });

  it('gemma3: norms are written as 1 + w, as Gemma3RMSNorm applies them', async () => {
    const model = await loadModel(MODEL_DIRS.gemma3_text);
    const path = join(tmp, 'gemma3-f32.gguf');
    try {
      await writeGgufModel(model, null, path, 'f32');
    } finally {
      model.dispose();
    }
    const file = await readGguf(path);
    const ckptValues = await openCheckpoint(MODEL_DIRS.gemma3_text);
    try {
      const stored = dequantize('F32', await file.readRaw('blk.0.attn_q_norm.weight'), 8);
      const hf = await ckptValues.readFloat32('model.layers.0.self_attn.q_norm.weight');
      expect(Array.from(stored)).toEqual(Array.from(hf, (v) => Math.fround(v + 1)));
    } finally {
      await file.close();
      await ckptValues.close();
    }
  });
});

describe('GGUF LoRA as convert_lora_to_gguf.py writes it', () => {
  it('a PEFT LoRA made by PEFT is byte-identical in f32, f16 and q8_0 (Q/K rows of lora_b permuted)', async () => {
    const refs = JSON.parse(await fs.readFile(join(FIXTURES, 'reference-lora.json'), 'utf8')) as Record<
      string,
      Record<string, Reference & { name: string }>
    >;
    const model = await loadModel(MODEL_DIRS.llama);
    try {
      const instance = await loadPeftAdapter(model, join(FIXTURES, 'llama-lora'));
      for (const quant of ['f32', 'f16', 'q8_0'] as const) {
        const ref = refs['llama-lora'][quant];
        const path = join(tmp, `llama-lora-${quant}.gguf`);
        const result = await writeGgufLora(model, instance, path, quant, { name: ref.name });
        expect(result.verification.ok, result.verification.method).toBe(true);
        const file = await readGguf(path);
        const tensors = file.tensors.map((t) => [t.name, t.type, t.shape]);
        await file.close();
        expect(tensors, quant).toEqual(ref.tensors);
        const bytes = await fs.readFile(path);
        expect(createHash('sha256').update(bytes).digest('hex'), `llama-lora ${quant} sha256`).toBe(
          ref.sha256,
        );
      }
    } finally {
      model.dispose();
    }
  });
});
