import * as tf from '@tensorflow/tfjs-core';
import type { ArchConfig } from './config.ts';
import type { AdaptableLayer, ForwardContext } from './layers.ts';
import type { BlockInputs, KvCache, Network, NetworkInput } from './network.ts';
import { lastPositionRows } from './ops.ts';
import { checkpointed } from './recompute.ts';
import type { Batch, LinearHead, LoadedModel, ModelSpec, PositionLimit } from './types.ts';

/** Every tensor of a block's shared inputs, in a fixed order (what a checkpointed block must keep). */
function blockTensors(s: BlockInputs): tf.Tensor[] {
  const out: tf.Tensor[] = [s.positions];
  for (const key of Object.keys(s.rope).sort())
    out.push(s.rope[key].cos, s.rope[key].sin, s.rope[key].rotate);
  for (const key of Object.keys(s.bias).sort()) out.push(s.bias[key]);
  return out;
}

/** `s` with its tensors replaced by `tensors` (in `blockTensors` order). */
function withBlockTensors(s: BlockInputs, tensors: tf.Tensor[]): BlockInputs {
  let i = 0;
  const next = () => tensors[i++];
  const positions = next() as tf.Tensor2D;
  const rope: BlockInputs['rope'] = {};
  for (const key of Object.keys(s.rope).sort()) {
    rope[key] = {
      ...s.rope[key],
      cos: next() as tf.Tensor4D,
      sin: next() as tf.Tensor4D,
      rotate: next() as tf.Tensor2D,
    };
  }
  const bias: BlockInputs['bias'] = {};
  for (const key of Object.keys(s.bias).sort()) bias[key] = next() as tf.Tensor4D;
  return { ...s, positions, rope, bias };
}

/** A decoder step: logits of the new tokens and the cache extended by them. */
export interface DecodeResult {
  /** [B, Tnew, vocab], or [B, 1, vocab] with `lastOnly`. */
  logits: tf.Tensor3D;
  cache: KvCache;
}

/**
 * A transformers model on tfjs with frozen base weights. Every Linear/Conv1D/Embedding runs through its
 * `AdaptableLayer`, so attached adapters take part in the forward pass. Dropout of the base model is off.
 * The architecture's `Network` supplies embedding, blocks, final norm and head; the blocks run here, in one
 * loop for every architecture.
 */
export class TransformerModel implements LoadedModel {
  constructor(
    readonly spec: ModelSpec,
    readonly arch: ArchConfig,
    readonly dir: string,
    readonly layers: Map<string, AdaptableLayer>,
    /** Non-adaptable parameters (norms) by checkpoint-style name, e.g. `model.norm.weight`. */
    readonly params: Map<string, tf.Tensor>,
    private readonly network: Network,
    readonly positionLimit: PositionLimit | undefined,
    readonly newlyInitialized: string[] = [],
  ) {}

  private checkBatch(batch: Batch): void {
    const { inputIds, attentionMask } = batch;
    if (inputIds.rank !== 2 || attentionMask.rank !== 2) {
      throw new Error(`forward: inputIds and attentionMask must be [batch, length]`);
    }
    if (inputIds.shape[0] !== attentionMask.shape[0] || inputIds.shape[1] !== attentionMask.shape[1]) {
      throw new Error(
        `forward: inputIds [${inputIds.shape}] and attentionMask [${attentionMask.shape}] differ in shape`,
      );
    }
  }

  /** Embedding, every block in order, final norm: hidden rows [B·T, d] and, when decoding, the new cache. */
  private run(
    input: NetworkInput,
    ctx: ForwardContext,
    decoding: boolean,
  ): { rows: tf.Tensor2D; next: KvCache } {
    const [, t] = input.inputIds.shape;
    const total = input.attentionMask.shape[1];
    const past = total - t;
    if (past < 0 || (input.past && input.past.keys[0].shape[2] !== past)) {
      throw new Error(`decode: attentionMask covers ${total} tokens, cache and inputs ${past + t}`);
    }
    const { h: embedded, shared } = this.network.prepare(input, ctx);
    const next: KvCache = { keys: [], values: [] };
    if (decoding) shared.cache = { past: input.past, next };
    let h = embedded;
    const checkpoint = decoding ? undefined : ctx.checkpoint;
    for (let i = 0; i < this.network.numLayers; i++) {
      if (!checkpoint) {
        const x = h;
        // a block's intermediates go when it returns (what its backward pass needs, its ops saved); a decoding
        // block's cache entries must outlive it
        h = decoding
          ? this.network.block(i, x, shared, ctx)
          : tf.tidy(() => this.network.block(i, x, shared, ctx));
        continue;
      }
      const tensors = blockTensors(shared);
      h = checkpointed(
        (x, saved, c) => this.network.block(i, x, withBlockTensors(shared, saved), c),
        h,
        tensors,
        checkpoint.params(i),
        ctx,
      );
    }
    return { rows: this.network.finish(h), next };
  }

  /** The causal-LM head as one adapter-free module (+ soft-cap), when it is one; null otherwise. */
  linearHead(): LinearHead | null {
    const head = this.network.linearHead;
    return head && !head.layer.hasLiveAdapters() ? head : null;
  }

  hidden(batch: Batch, ctx: ForwardContext): tf.Tensor2D {
    this.checkBatch(batch);
    return tf.tidy(() => this.run({ ...batch, past: null }, ctx, false).rows);
  }

  head(rows: tf.Tensor2D, ctx: ForwardContext): tf.Tensor2D {
    return tf.tidy(() => this.network.head(rows, ctx));
  }

  /** causal-lm: logits [B, T, vocab]; seq-cls: logits [B, numLabels]. */
  forward(batch: Batch, ctx: ForwardContext): tf.Tensor {
    this.checkBatch(batch);
    return tf.tidy(() => {
      const [b, t] = batch.inputIds.shape;
      const { rows } = this.run({ ...batch, past: null }, ctx, false);
      if (this.arch.task === 'causal-lm') {
        return tf.reshape(this.network.head(rows, ctx), [b, t, this.arch.vocabSize]);
      }
      return this.network.head(this.network.pool(rows, batch), ctx);
    });
  }

  /**
   * Causal-LM step with a key/value cache: `inputIds` [B, Tnew] are the new tokens, `attentionMask` covers
   * past and new tokens [B, Tpast + Tnew]. The returned cache replaces `cache`, whose tensors the caller
   * disposes. `lastOnly` runs the head on each sequence's last position only (what sampling the next
   * token needs).
   */
  decode(
    inputIds: tf.Tensor2D,
    attentionMask: tf.Tensor2D,
    cache: KvCache | null,
    ctx: ForwardContext,
    opts: { lastOnly?: boolean } = {},
  ): DecodeResult {
    if (this.arch.task !== 'causal-lm') {
      throw new Error(`decode: ${this.spec.architecture} is not a causal language model`);
    }
    const result = tf.tidy(() => {
      const [b, t] = inputIds.shape;
      const { rows, next } = this.run({ inputIds, attentionMask, past: cache }, ctx, true);
      const read = opts.lastOnly ? lastPositionRows(rows, b, t) : rows;
      const logits = tf.reshape(this.network.head(read, ctx), [
        b,
        opts.lastOnly ? 1 : t,
        this.arch.vocabSize,
      ]);
      return { logits, keys: next.keys, values: next.values };
    });
    return {
      logits: result.logits as tf.Tensor3D,
      cache: { keys: result.keys as tf.Tensor4D[], values: result.values as tf.Tensor4D[] },
    };
  }

  dispose(): void {
    const seen = new Set<tf.Tensor>();
    for (const layer of this.layers.values()) {
      // a tied lm_head shares its embedding's weight
      if (!layer.weight.isDisposed) layer.weight.dispose();
      if (layer.bias) seen.add(layer.bias);
    }
    for (const p of this.params.values()) seen.add(p);
    for (const t of seen) if (!t.isDisposed) t.dispose();
  }
}
