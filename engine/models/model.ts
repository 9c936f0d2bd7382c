import * as tf from '@tensorflow/tfjs-core';
import type { ArchConfig } from './config.ts';
import type { AdaptableLayer, ForwardContext } from './layers.ts';
import {
  activation,
  addShapes,
  applyRope,
  attend,
  attentionBias,
  layerNorm,
  mergeHeads,
  positionsFromMask,
  rmsNorm,
  ropeInvFreq,
  ropeTables,
  splitHeads,
} from './ops.ts';
import type { Batch, LoadedModel, ModelSpec } from './types.ts';

/** Per-layer keys and values of the tokens seen so far, [B, kvHeads, T, headDim] (after RoPE). */
export interface KvCache {
  keys: tf.Tensor4D[];
  values: tf.Tensor4D[];
}

/** A decoder step: logits of the new tokens and the cache extended by them. */
export interface DecodeResult {
  /** [B, Tnew, vocab] */
  logits: tf.Tensor3D;
  cache: KvCache;
}

/**
 * A transformers model on tfjs with frozen base weights. Every Linear/Conv1D/Embedding runs through its
 * `AdaptableLayer`, so attached adapters take part in the forward pass. Dropout of the base model is off.
 */
export class TransformerModel implements LoadedModel {
  private readonly act: (x: tf.Tensor) => tf.Tensor;
  private readonly invFreq: Float32Array | null;

  constructor(
    readonly spec: ModelSpec,
    readonly arch: ArchConfig,
    readonly dir: string,
    readonly layers: Map<string, AdaptableLayer>,
    /** Non-adaptable parameters (norms) by checkpoint-style name, e.g. `model.norm.weight`. */
    readonly params: Map<string, tf.Tensor>,
    readonly newlyInitialized: string[] = [],
  ) {
    this.act = activation(arch.activation);
    this.invFreq =
      arch.family === 'llama' ? ropeInvFreq(arch.headDim, arch.ropeTheta, arch.ropeScaling) : null;
  }

  private layer(name: string): AdaptableLayer {
    const layer = this.layers.get(name);
    if (!layer) throw new Error(`model has no module ${name}`);
    return layer;
  }

  private param<T extends tf.Tensor = tf.Tensor1D>(name: string): T {
    const p = this.params.get(name);
    if (!p) throw new Error(`model has no parameter ${name}`);
    return p as T;
  }

  private linear(name: string, x: tf.Tensor2D, ctx: ForwardContext): tf.Tensor2D {
    return this.layer(name).forward(x, ctx);
  }

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

  /** causal-lm: logits [B, T, vocab]; seq-cls: logits [B, numLabels]. */
  forward(batch: Batch, ctx: ForwardContext): tf.Tensor {
    this.checkBatch(batch);
    return tf.tidy(() => {
      const { inputIds, attentionMask } = batch;
      const [b, t] = inputIds.shape;
      if (this.arch.family === 'bert')
        return this.encoderClassify(inputIds, attentionMask, batch.tokenTypeIds, ctx);
      const { hidden } = this.decoderHidden(inputIds, attentionMask, null, ctx);
      if (this.arch.task === 'causal-lm') {
        return tf.reshape(this.linear('lm_head', hidden, ctx), [b, t, this.arch.vocabSize]);
      }
      const pooled = this.poolLastToken(
        tf.reshape(hidden, [b, t, -1]) as tf.Tensor3D,
        inputIds,
        attentionMask,
      );
      return this.linear('score', pooled, ctx);
    });
  }

  /**
   * Causal-LM step with a key/value cache: `inputIds` [B, Tnew] are the new tokens, `attentionMask` covers
   * past and new tokens [B, Tpast + Tnew]. The returned cache replaces `cache`, whose tensors the caller
   * disposes.
   */
  decode(
    inputIds: tf.Tensor2D,
    attentionMask: tf.Tensor2D,
    cache: KvCache | null,
    ctx: ForwardContext,
  ): DecodeResult {
    if (this.arch.family === 'bert' || this.arch.task !== 'causal-lm') {
      throw new Error(`decode: ${this.spec.architecture} is not a causal language model`);
    }
    const result = tf.tidy(() => {
      const [b, t] = inputIds.shape;
      const out = this.decoderHidden(inputIds, attentionMask, cache, ctx);
      const logits = tf.reshape(this.linear('lm_head', out.hidden, ctx), [b, t, this.arch.vocabSize]);
      return { logits, keys: out.cache.keys, values: out.cache.values };
    });
    return {
      logits: result.logits as tf.Tensor3D,
      cache: { keys: result.keys as tf.Tensor4D[], values: result.values as tf.Tensor4D[] },
    };
  }

  /** Final hidden states [B·Tnew, d] of a decoder (GPT-2 or Llama family). */
  private decoderHidden(
    inputIds: tf.Tensor2D,
    fullMask: tf.Tensor2D,
    cache: KvCache | null,
    ctx: ForwardContext,
  ): { hidden: tf.Tensor2D; cache: KvCache } {
    const a = this.arch;
    const [b, t] = inputIds.shape;
    const total = fullMask.shape[1];
    const past = total - t;
    if (past < 0 || (cache && cache.keys[0].shape[2] !== past)) {
      throw new Error(`decode: attentionMask covers ${total} tokens, cache and inputs ${past + t}`);
    }
    if (a.family === 'gpt2' && total > a.maxPositions) {
      throw new Error(
        `sequence of ${total} tokens exceeds n_positions ${a.maxPositions} of this GPT-2 model`,
      );
    }
    const positions = tf.slice(positionsFromMask(fullMask), [0, past], [b, t]) as tf.Tensor2D;
    const ids = tf.reshape(inputIds, [-1]) as tf.Tensor1D;
    const bias = attentionBias(fullMask, { causal: true, queryLength: t, slidingWindow: a.slidingWindow });
    const next: KvCache = { keys: [], values: [] };
    const p = a.basePrefix;
    let h: tf.Tensor2D;
    let rope: { cos: tf.Tensor4D; sin: tf.Tensor4D } | null = null;
    if (a.family === 'gpt2') {
      const posIds = tf.reshape(positions, [-1]) as tf.Tensor1D;
      h = addShapes(this.layer(`${p}.wte`).embed(ids, ctx), this.layer(`${p}.wpe`).embed(posIds, ctx));
    } else {
      h = this.layer(`${p}.embed_tokens`).embed(ids, ctx);
      rope = ropeTables(positions, this.invFreq!);
    }
    const withPast = (x: tf.Tensor4D, layerCache: tf.Tensor4D[] | undefined, i: number): tf.Tensor4D =>
      layerCache ? (tf.concat([layerCache[i], x], 2) as tf.Tensor4D) : x;

    for (let i = 0; i < a.numLayers; i++) {
      let q: tf.Tensor4D;
      let k: tf.Tensor4D;
      let v: tf.Tensor4D;
      let normed: tf.Tensor2D;
      let l: string;
      if (a.family === 'gpt2') {
        l = `${p}.h.${i}`;
        normed = layerNorm(h, this.param(`${l}.ln_1.weight`), this.param(`${l}.ln_1.bias`), a.normEps);
        const [q2, k2, v2] = tf.split(this.linear(`${l}.attn.c_attn`, normed, ctx), 3, 1) as tf.Tensor2D[];
        q = splitHeads(q2, b, t, a.numHeads);
        k = withPast(splitHeads(k2, b, t, a.numHeads), cache?.keys, i);
        v = withPast(splitHeads(v2, b, t, a.numHeads), cache?.values, i);
      } else {
        l = `${p}.layers.${i}`;
        normed = rmsNorm(h, this.param(`${l}.input_layernorm.weight`), a.normEps);
        const s = `${l}.self_attn`;
        q = applyRope(
          splitHeads(this.linear(`${s}.q_proj`, normed, ctx), b, t, a.numHeads),
          rope!.cos,
          rope!.sin,
        );
        const k4 = splitHeads(this.linear(`${s}.k_proj`, normed, ctx), b, t, a.numKvHeads);
        k = withPast(applyRope(k4, rope!.cos, rope!.sin), cache?.keys, i);
        v = withPast(
          splitHeads(this.linear(`${s}.v_proj`, normed, ctx), b, t, a.numKvHeads),
          cache?.values,
          i,
        );
      }
      next.keys.push(k);
      next.values.push(v);
      const attended = mergeHeads(attend(q, k, v, bias));
      if (a.family === 'gpt2') {
        h = addShapes(h, this.linear(`${l}.attn.c_proj`, attended, ctx));
        const m = layerNorm(h, this.param(`${l}.ln_2.weight`), this.param(`${l}.ln_2.bias`), a.normEps);
        const inner = this.act(this.linear(`${l}.mlp.c_fc`, m, ctx)) as tf.Tensor2D;
        h = addShapes(h, this.linear(`${l}.mlp.c_proj`, inner, ctx));
      } else {
        h = addShapes(h, this.linear(`${l}.self_attn.o_proj`, attended, ctx));
        const m = rmsNorm(h, this.param(`${l}.post_attention_layernorm.weight`), a.normEps);
        const gate = this.act(this.linear(`${l}.mlp.gate_proj`, m, ctx));
        const inner = tf.mul(gate, this.linear(`${l}.mlp.up_proj`, m, ctx)) as tf.Tensor2D;
        h = addShapes(h, this.linear(`${l}.mlp.down_proj`, inner, ctx));
      }
    }
    const hidden =
      a.family === 'gpt2'
        ? layerNorm(h, this.param(`${p}.ln_f.weight`), this.param(`${p}.ln_f.bias`), a.normEps)
        : rmsNorm(h, this.param(`${p}.norm.weight`), a.normEps);
    return { hidden, cache: next };
  }

  /**
   * transformers' sequence-classification pooling for decoders: the rightmost token that is not the pad
   * token (works for left and right padding); without a pad token, the last token of the attention mask.
   */
  private poolLastToken(h: tf.Tensor3D, inputIds: tf.Tensor2D, mask: tf.Tensor2D): tf.Tensor2D {
    const [, t] = inputIds.shape;
    const pad = this.arch.padTokenId;
    const real = pad === null ? tf.cast(mask, 'float32') : tf.cast(tf.notEqual(inputIds, pad), 'float32');
    const index = tf.argMax(tf.mul(real, tf.range(0, t, 1, 'float32')), 1);
    const select = tf.expandDims(tf.cast(tf.oneHot(index, t), 'float32'), 2);
    return tf.sum(tf.mul(h, select), 1) as tf.Tensor2D;
  }

  /** BERT / RoBERTa encoder and classification head: logits [B, numLabels]. */
  private encoderClassify(
    inputIds: tf.Tensor2D,
    mask: tf.Tensor2D,
    tokenTypeIds: tf.Tensor2D | undefined,
    ctx: ForwardContext,
  ): tf.Tensor2D {
    const a = this.arch;
    const p = a.basePrefix;
    const [b, t] = inputIds.shape;
    const e = `${p}.embeddings`;
    let positions: tf.Tensor2D;
    if (a.modelType === 'roberta') {
      // RoBERTa numbers real tokens from padding_idx + 1, found from the ids (as transformers does)
      const pad = a.padTokenId ?? 1;
      const real = tf.cast(tf.notEqual(inputIds, pad), 'int32');
      positions = tf.add(tf.mul(tf.cumsum(real, 1), real), tf.scalar(pad, 'int32')) as tf.Tensor2D;
      if (t + pad >= a.maxPositions) {
        throw new Error(`sequence of ${t} tokens exceeds max_position_embeddings of this RoBERTa model`);
      }
    } else {
      if (t > a.maxPositions) {
        throw new Error(`sequence of ${t} tokens exceeds max_position_embeddings ${a.maxPositions}`);
      }
      positions = tf.tile(tf.reshape(tf.range(0, t, 1, 'int32'), [1, t]), [b, 1]) as tf.Tensor2D;
    }
    const ids = tf.reshape(inputIds, [-1]) as tf.Tensor1D;
    const embedded = tf.add(
      tf.add(
        this.layer(`${e}.word_embeddings`).embed(ids, ctx),
        this.layer(`${e}.token_type_embeddings`).embed(
          (tokenTypeIds ? tf.reshape(tokenTypeIds, [-1]) : tf.zeros([b * t], 'int32')) as tf.Tensor1D,
          ctx,
        ),
      ),
      this.layer(`${e}.position_embeddings`).embed(tf.reshape(positions, [-1]) as tf.Tensor1D, ctx),
    ) as tf.Tensor2D;
    let h = layerNorm(
      embedded,
      this.param(`${e}.LayerNorm.weight`),
      this.param(`${e}.LayerNorm.bias`),
      a.normEps,
    );
    const bias = attentionBias(mask, { causal: false });
    for (let i = 0; i < a.numLayers; i++) {
      const l = `${p}.encoder.layer.${i}`;
      const s = `${l}.attention.self`;
      const q = splitHeads(this.linear(`${s}.query`, h, ctx), b, t, a.numHeads);
      const k = splitHeads(this.linear(`${s}.key`, h, ctx), b, t, a.numHeads);
      const v = splitHeads(this.linear(`${s}.value`, h, ctx), b, t, a.numHeads);
      const attended = this.linear(`${l}.attention.output.dense`, mergeHeads(attend(q, k, v, bias)), ctx);
      const o = `${l}.attention.output.LayerNorm`;
      const x = layerNorm(tf.add(attended, h), this.param(`${o}.weight`), this.param(`${o}.bias`), a.normEps);
      const inner = this.act(this.linear(`${l}.intermediate.dense`, x, ctx)) as tf.Tensor2D;
      const out = `${l}.output.LayerNorm`;
      h = layerNorm(
        tf.add(this.linear(`${l}.output.dense`, inner, ctx), x),
        this.param(`${out}.weight`),
        this.param(`${out}.bias`),
        a.normEps,
      );
    }
    const first = tf.reshape(tf.slice(tf.reshape(h, [b, t, -1]), [0, 0, 0], [b, 1, -1]), [
      b,
      -1,
    ]) as tf.Tensor2D;
    if (a.modelType === 'bert') {
      const pooled = tf.tanh(this.linear(`${p}.pooler.dense`, first, ctx)) as tf.Tensor2D;
      return this.linear('classifier', pooled, ctx);
    }
    const dense = tf.tanh(this.linear('classifier.dense', first, ctx)) as tf.Tensor2D;
    return this.linear('classifier.out_proj', dense, ctx);
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
