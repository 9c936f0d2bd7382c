import type { ModelSpec } from '../models/types.ts';
import { headBlockRows, LOGIT_CHUNK_ELEMENTS } from '../training/logit-blocks.ts';
import type { TargetModule } from './types.ts';

/**
 * Peak memory of a training run, from config.json and the adapter's counts alone (nothing loaded), so a run
 * that cannot fit is refused before it starts and `gradientCheckpointing: auto` can decide.
 *
 * The activation terms count the float32 tensors the engine's forward pass keeps per token and block (every
 * op's output stays alive until the backward pass ends, as tfjs's tape keeps them) and the backward pass's own
 * gradients, which peak at about as much again. Measured against tf.memory()'s peak on Qwen2.5-0.5B and
 * Llama-3.2-1B shapes (engine/adapters/memory.test.ts has the figures the factors come from).
 */

export interface MemoryOptions {
  batchSize: number;
  seqLen: number;
  /** Micro-batches per optimizer step: above 1 the gradients are summed in a second buffer. */
  gradAccumSteps?: number;
  /** Frozen weights held in the checkpoint's dtype (the native CPU backend) or widened to float32 (the rest). */
  weightsHeldAs?: 'checkpoint' | 'float32';
  /**
   * Whether norms, RoPE, activations and attention run as composed tfjs ops (the wasm and cpu backends, or
   * `STUDIO_FUSED=off`), each keeping its intermediates, instead of the native and webgpu backends' fused
   * kernels, which keep their output alone (attention its log-sum-exp, not the probabilities).
   */
  composedOps?: boolean;
}

export interface AdapterCounts {
  targets: TargetModule[];
  /** Adapter values (trainable and frozen) per target module, by name. */
  perModule: Map<string, number>;
  trainable: number;
  frozen: number;
}

/** A training-memory estimate in bytes. */
export interface MemoryEstimate {
  /** Frozen base weights as held in memory. */
  weights: number;
  weightsDtype: 'bf16' | 'f16' | 'f32';
  /** Adapter tensors, trainable and frozen. */
  adapter: number;
  /** One gradient per trainable value (two with gradient accumulation). */
  gradients: number;
  /** AdamW's two moments per trainable value. */
  optimizer: number;
  /** Activations and their gradients at the peak of a step, with the chosen checkpointing. */
  activations: number;
  /** The JavaScript runtime, the engine's code and the tokenizer: measured once, about constant. */
  runtime: number;
  total: number;
  checkpointing: boolean;
  /** The totals either way, so a caller can say which settings fit. */
  totalWithCheckpointing: number;
  totalWithoutCheckpointing: number;
  batchSize: number;
  seqLen: number;
}

const F32 = 4;
/** Node, tfjs, the engine's modules and a tokenizer: peak RSS of a run on a tiny model. */
export const RUNTIME_BYTES = 320 * 2 ** 20;
/**
 * The backward pass frees each op's gradients and saved tensors as soon as the op is done (backends/backprop.ts)
 * and a block's intermediates go when it returns, so the peak is what the forward pass saved plus the loss's
 * working set: no factor on the kept values (tf.profile on Qwen2.5-0.5B at 1 × 128: 412 MB for 358 MB of block
 * values and a 43 MB head; 0.93–1.07 on the llama, qwen2 and gpt2 fixtures).
 *
 * A block recomputed under checkpointing holds all its intermediates until its forward pass returns, next to its
 * gradients (Qwen2.5-0.5B at 1 × 128: 65.6 MB for 14.9 MB of block values and 11 MB of block inputs).
 */
const RECOMPUTE_FACTOR = 3.7;
/**
 * Fused kernels keep fewer values than the composed ops but their gradients are as large: the block values
 * counted undercount a fused block by this much (tf.profile on the llama, qwen2 and gpt2 fixtures: 0.85–0.92 of
 * the measured peak before it).
 */
const FUSED_BACKWARD_FACTOR = 1.15;
/** Logits, their softmax, the per-token loss and their gradients: live copies of one [tokens, vocab] tensor. */
const PLAIN_LOGIT_COPIES = 9;

function numberField(config: Record<string, unknown>, ...names: string[]): number | null {
  for (const name of names) {
    const v = config[name];
    if (typeof v === 'number' && Number.isFinite(v)) return v;
  }
  return null;
}

function checkpointDtype(config: Record<string, unknown>): 'bf16' | 'f16' | 'f32' {
  const dtype = config.torch_dtype ?? config.dtype;
  return dtype === 'bfloat16' ? 'bf16' : dtype === 'float16' ? 'f16' : 'f32';
}

/**
 * Float32 values one block keeps per token in the forward pass: every linear's output (an adapted one also
 * its adapter's rank-r intermediate, before and after scaling), the norms, rotary embedding, the MLP's activation
 * and the residuals; composed, also grouped-query repeats and the attention scores and probabilities over the
 * whole sequence.
 */
export function blockValuesPerToken(
  spec: ModelSpec,
  adapter: AdapterCounts,
  seqLen: number,
  composedOps = false,
): number {
  const c = spec.config;
  const h = spec.hiddenSize;
  const heads = numberField(c, 'num_attention_heads', 'n_head') ?? Math.max(1, Math.round(h / 64));
  const headDim = numberField(c, 'head_dim') ?? h / heads;
  const kvHeads = numberField(c, 'num_key_value_heads') ?? heads;
  const q = heads * headDim;
  const kv = kvHeads * headDim;
  const inner = numberField(c, 'intermediate_size', 'n_inner') ?? 4 * h;
  const rotary = c.rope_parameters !== undefined || c.rope_theta !== undefined || kvHeads !== heads;
  const linears = spec.modules.filter(
    (m) => m.layerIndex === 0 && m.adaptable && m.adaptable !== 'Embedding',
  );
  const adapted = new Map(
    adapter.targets.filter((t) => linears.some((m) => m.name === t.name)).map((t) => [t.name, t]),
  );
  let values = 0;
  for (const m of linears) {
    const out = m.outFeatures ?? 0;
    values += out;
    const t = adapted.get(m.name);
    if (t) {
      const width = Math.max(
        1,
        Math.round((adapter.perModule.get(t.name) ?? 0) / (t.inFeatures + t.outFeatures)),
      );
      values += 2 * width;
    }
  }
  values += 2 * q; // attention output and its transpose back
  values += 2 * h; // residual sums
  if (!composedOps) {
    // fused: q, k, v laid out by head, each norm, rotation and activation's output, attention's log-sum-exp
    values += q + 2 * kv + 2 * h + (rotary ? q + kv : 0) + inner + heads;
    return values;
  }
  values += 2 * 5 * h; // two norms: square, mean, rsqrt, product, scale
  if (rotary) values += 5 * (q + kv) + (kvHeads !== heads ? 2 * q : 0);
  values += 3 * heads * seqLen; // scores, masked, probabilities
  values += 3 * inner; // the activation (and, gated, its product with the up projection)
  return values;
}

/**
 * Bytes of the head's loss at its peak: the whole logits when small; else the streamed head's block of vocabulary
 * rows (widened) with that block's logits and exponentials (training/loss.ts `streamedHeadNll`).
 */
function lossBytes(spec: ModelSpec, tokens: number): number {
  if (spec.task !== 'causal-lm') return tokens * spec.hiddenSize * F32 * 4;
  const logits = tokens * spec.vocabSize;
  if (logits <= LOGIT_CHUNK_ELEMENTS) return PLAIN_LOGIT_COPIES * logits * F32;
  const rows = headBlockRows(tokens, spec.hiddenSize, spec.vocabSize);
  return (rows * spec.hiddenSize + 2 * tokens * rows) * F32;
}

function activationBytes(
  spec: ModelSpec,
  adapter: AdapterCounts,
  options: MemoryOptions,
  checkpointing: boolean,
): number {
  const tokens = options.batchSize * options.seqLen;
  const block =
    blockValuesPerToken(spec, adapter, options.seqLen, options.composedOps) *
    tokens *
    F32 *
    (options.composedOps ? 1 : FUSED_BACKWARD_FACTOR);
  const layers = spec.numLayers;
  const loss = lossBytes(spec, tokens);
  if (checkpointing) {
    // each block's input stays; one block at a time is recomputed and differentiated, and the loss's working set
    // comes and goes in the forward pass (a small loss's tensors wait for the end of the backward pass)
    const inputs = layers * tokens * spec.hiddenSize * F32;
    const plain = spec.task === 'causal-lm' && tokens * spec.vocabSize <= LOGIT_CHUNK_ELEMENTS;
    return Math.round(inputs + (plain ? block + loss : Math.max(RECOMPUTE_FACTOR * block, loss)));
  }
  return Math.round(layers * block + loss);
}

export function estimateMemory(
  spec: ModelSpec,
  adapter: AdapterCounts,
  options: MemoryOptions,
  checkpointing = false,
): MemoryEstimate {
  for (const [name, value] of [
    ['batchSize', options.batchSize],
    ['seqLen', options.seqLen],
    ['gradAccumSteps', options.gradAccumSteps ?? 1],
  ] as const) {
    if (!Number.isInteger(value) || value < 1)
      throw new Error(`memory estimate: ${name} must be a positive integer, got ${value}`);
  }
  const weightsDtype = options.weightsHeldAs === 'float32' ? 'f32' : checkpointDtype(spec.config);
  const weights = spec.numParameters * (weightsDtype === 'f32' ? 4 : 2);
  const adapterBytes = (adapter.trainable + adapter.frozen) * F32;
  const gradients = adapter.trainable * F32 * ((options.gradAccumSteps ?? 1) > 1 ? 2 : 1);
  const optimizer = 2 * adapter.trainable * F32;
  const fixed = RUNTIME_BYTES + weights + adapterBytes + gradients + optimizer;
  const totalWithCheckpointing = fixed + activationBytes(spec, adapter, options, true);
  const totalWithoutCheckpointing = fixed + activationBytes(spec, adapter, options, false);
  const total = checkpointing ? totalWithCheckpointing : totalWithoutCheckpointing;
  return {
    weights,
    weightsDtype,
    adapter: adapterBytes,
    gradients,
    optimizer,
    activations: total - fixed,
    runtime: RUNTIME_BYTES,
    total,
    checkpointing,
    totalWithCheckpointing,
    totalWithoutCheckpointing,
    batchSize: options.batchSize,
    seqLen: options.seqLen,
  };
}
