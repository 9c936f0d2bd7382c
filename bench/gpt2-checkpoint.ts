import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import { mulberry32 } from '../engine/random.ts';
import { type TensorEntry, writeSafetensorsStreaming } from '../engine/safetensors/index.ts';
import { shapeSize } from '../engine/shape.ts';

/** GPT-2 small: 12 layers, d = 768, 12 heads, 50257 tokens, 1024 positions (124M parameters). */
export interface Gpt2Shape {
  layers: number;
  hidden: number;
  heads: number;
  vocab: number;
  positions: number;
}

export const gpt2Small: Gpt2Shape = { layers: 12, hidden: 768, heads: 12, vocab: 50257, positions: 1024 };

/** The tensors of a Hugging Face GPT-2 checkpoint (Conv1D weights stored in × out, tied lm_head omitted). */
export function gpt2Entries(s: Gpt2Shape): TensorEntry[] {
  const d = s.hidden;
  const entries: TensorEntry[] = [
    { name: 'wte.weight', dtype: 'F32', shape: [s.vocab, d] },
    { name: 'wpe.weight', dtype: 'F32', shape: [s.positions, d] },
    { name: 'ln_f.weight', dtype: 'F32', shape: [d] },
    { name: 'ln_f.bias', dtype: 'F32', shape: [d] },
  ];
  for (let i = 0; i < s.layers; i++) {
    const p = `h.${i}`;
    entries.push(
      { name: `${p}.ln_1.weight`, dtype: 'F32', shape: [d] },
      { name: `${p}.ln_1.bias`, dtype: 'F32', shape: [d] },
      { name: `${p}.attn.c_attn.weight`, dtype: 'F32', shape: [d, 3 * d] },
      { name: `${p}.attn.c_attn.bias`, dtype: 'F32', shape: [3 * d] },
      { name: `${p}.attn.c_proj.weight`, dtype: 'F32', shape: [d, d] },
      { name: `${p}.attn.c_proj.bias`, dtype: 'F32', shape: [d] },
      { name: `${p}.ln_2.weight`, dtype: 'F32', shape: [d] },
      { name: `${p}.ln_2.bias`, dtype: 'F32', shape: [d] },
      { name: `${p}.mlp.c_fc.weight`, dtype: 'F32', shape: [d, 4 * d] },
      { name: `${p}.mlp.c_fc.bias`, dtype: 'F32', shape: [4 * d] },
      { name: `${p}.mlp.c_proj.weight`, dtype: 'F32', shape: [4 * d, d] },
      { name: `${p}.mlp.c_proj.bias`, dtype: 'F32', shape: [d] },
    );
  }
  return entries;
}

export function parameterCount(s: Gpt2Shape): number {
  return gpt2Entries(s).reduce((n, e) => n + shapeSize(e.shape), 0);
}

/** Uniform values of GPT-2's init scale (std ≈ 0.02); layer-norm gains are 1. */
function values(entry: TensorEntry, seed: number): Float32Array {
  const size = shapeSize(entry.shape);
  const out = new Float32Array(size);
  if (
    entry.name.endsWith('ln_1.weight') ||
    entry.name.endsWith('ln_2.weight') ||
    entry.name === 'ln_f.weight'
  ) {
    return out.fill(1);
  }
  if (entry.name.endsWith('.bias')) return out;
  const random = mulberry32(seed);
  for (let i = 0; i < size; i++) out[i] = (random() - 0.5) * 0.07;
  return out;
}

/** Writes `config.json` and a streamed `model.safetensors` with random weights; returns the weight bytes. */
export async function writeGpt2Checkpoint(dir: string, s: Gpt2Shape): Promise<number> {
  await fs.mkdir(dir, { recursive: true });
  const config = {
    architectures: ['GPT2LMHeadModel'],
    model_type: 'gpt2',
    vocab_size: s.vocab,
    n_positions: s.positions,
    n_embd: s.hidden,
    n_layer: s.layers,
    n_head: s.heads,
    n_inner: null,
    activation_function: 'gelu_new',
    resid_pdrop: 0.1,
    embd_pdrop: 0.1,
    attn_pdrop: 0.1,
    layer_norm_epsilon: 1e-5,
    initializer_range: 0.02,
    bos_token_id: 50256,
    eos_token_id: 50256,
    tie_word_embeddings: true,
    torch_dtype: 'float32',
  };
  await fs.writeFile(join(dir, 'config.json'), JSON.stringify(config, null, 2));
  let seed = 1;
  const { bytes } = await writeSafetensorsStreaming(join(dir, 'model.safetensors'), gpt2Entries(s), (entry) =>
    values(entry, seed++ * 2654435761),
  );
  return bytes;
}
