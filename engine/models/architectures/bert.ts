import * as tf from '@tensorflow/tfjs-core';
import {
  type ArchConfig,
  CONFIG_FILE,
  divide,
  type HeadChoice,
  ModelError,
  num,
  optionalId,
  positiveInt,
} from '../config.ts';
import type { ForwardContext } from '../layers.ts';
import type { Architecture, ModelWeights, Network } from '../network.ts';
import { activation, attend, attentionBias, layerNorm, mergeHeads, splitHeads } from '../ops.ts';
import { adaptable, weighted } from '../spec.ts';
import type { ModuleInfo } from '../types.ts';

/** A BERT-style encoder with a sequence-classification head. */
export interface EncoderConfig extends ArchConfig {
  typeVocabSize: number;
}

/** What distinguishes BERT and RoBERTa. */
interface EncoderVariant {
  modelType: 'bert' | 'roberta';
  defaultPadTokenId: number;
  /** RobertaEmbeddings creates `position_embeddings` after `LayerNorm` (named_modules() lists it last). */
  positionEmbeddingsLast: boolean;
  /** Head modules after the encoder. */
  headModules(a: EncoderConfig): ModuleInfo[];
  /** Position ids [B, T] of a batch (checks the length against the position table). */
  positions(a: EncoderConfig, inputIds: tf.Tensor2D): tf.Tensor2D;
  /** The classification head on the first token's rows [B, d]. */
  classify(a: EncoderConfig, w: ModelWeights): (first: tf.Tensor2D, ctx: ForwardContext) => tf.Tensor2D;
  /** Longest sequence. */
  maxTokens(a: EncoderConfig): number;
}

function parseEncoder(
  config: Record<string, unknown>,
  head: HeadChoice,
  variant: EncoderVariant,
): EncoderConfig {
  const hiddenSize = positiveInt(config, 'hidden_size');
  const numHeads = positiveInt(config, 'num_attention_heads');
  const positionType = config.position_embedding_type ?? 'absolute';
  if (positionType !== 'absolute') {
    throw new ModelError(
      CONFIG_FILE,
      `position_embedding_type "${positionType}" is not supported (supported: absolute)`,
    );
  }
  return {
    modelType: variant.modelType,
    ...head,
    basePrefix: variant.modelType,
    vocabSize: positiveInt(config, 'vocab_size'),
    hiddenSize,
    numLayers: positiveInt(config, 'num_hidden_layers'),
    numHeads,
    numKvHeads: numHeads,
    headDim: divide(hiddenSize, numHeads, 'hidden_size', 'num_attention_heads'),
    intermediateSize: positiveInt(config, 'intermediate_size'),
    maxPositions: positiveInt(config, 'max_position_embeddings'),
    normEps: num(config, 'layer_norm_eps', 1e-12),
    activation: String(config.hidden_act ?? 'gelu'),
    tieWordEmbeddings: false,
    typeVocabSize: positiveInt(config, 'type_vocab_size', 2),
    padTokenId: optionalId(config, 'pad_token_id') ?? variant.defaultPadTokenId,
    initializerRange: num(config, 'initializer_range', 0.02),
  };
}

function encoderModules(a: EncoderConfig, variant: EncoderVariant): ModuleInfo[] {
  const d = a.hiddenSize;
  const p = a.basePrefix;
  const e = `${p}.embeddings`;
  const positions = adaptable(`${e}.position_embeddings`, 'Embedding', [a.maxPositions, d], false);
  const mods: ModuleInfo[] = [
    adaptable(`${e}.word_embeddings`, 'Embedding', [a.vocabSize, d], false),
    ...(variant.positionEmbeddingsLast ? [] : [positions]),
    adaptable(`${e}.token_type_embeddings`, 'Embedding', [a.typeVocabSize, d], false),
    weighted(`${e}.LayerNorm`, 'LayerNorm', [d], true),
    ...(variant.positionEmbeddingsLast ? [positions] : []),
  ];
  for (let i = 0; i < a.numLayers; i++) {
    const l = `${p}.encoder.layer.${i}`;
    const at = { layerIndex: i };
    mods.push(
      adaptable(`${l}.attention.self.query`, 'Linear', [d, d], true, at),
      adaptable(`${l}.attention.self.key`, 'Linear', [d, d], true, at),
      adaptable(`${l}.attention.self.value`, 'Linear', [d, d], true, at),
      adaptable(`${l}.attention.output.dense`, 'Linear', [d, d], true, at),
      weighted(`${l}.attention.output.LayerNorm`, 'LayerNorm', [d], true, at),
      adaptable(`${l}.intermediate.dense`, 'Linear', [a.intermediateSize, d], true, at),
      adaptable(`${l}.output.dense`, 'Linear', [d, a.intermediateSize], true, at),
      weighted(`${l}.output.LayerNorm`, 'LayerNorm', [d], true, at),
    );
  }
  return [...mods, ...variant.headModules(a)];
}

function encoderNetwork(a: EncoderConfig, w: ModelWeights, variant: EncoderVariant): Network {
  const p = a.basePrefix;
  const e = `${p}.embeddings`;
  const act = activation(a.activation);
  const norm = (x: tf.Tensor2D, name: string) =>
    layerNorm(x, w.param(`${name}.weight`), w.param(`${name}.bias`), a.normEps);
  return {
    numLayers: a.numLayers,
    prepare(input, ctx) {
      const { inputIds, tokenTypeIds } = input;
      const [b, t] = inputIds.shape;
      const positions = variant.positions(a, inputIds);
      const ids = tf.reshape(inputIds, [-1]) as tf.Tensor1D;
      const types = (
        tokenTypeIds ? tf.reshape(tokenTypeIds, [-1]) : tf.zeros([b * t], 'int32')
      ) as tf.Tensor1D;
      const embedded = tf.add(
        tf.add(
          w.layer(`${e}.word_embeddings`).embed(ids, ctx),
          w.layer(`${e}.token_type_embeddings`).embed(types, ctx),
        ),
        w.layer(`${e}.position_embeddings`).embed(tf.reshape(positions, [-1]) as tf.Tensor1D, ctx),
      ) as tf.Tensor2D;
      const bias = attentionBias(input.attentionMask, { causal: false });
      return {
        h: norm(embedded, `${e}.LayerNorm`),
        shared: { batch: b, length: t, positions, rope: {}, bias: { full_attention: bias }, cache: null },
      };
    },
    block(i, h, shared, ctx) {
      const l = `${p}.encoder.layer.${i}`;
      const s = `${l}.attention.self`;
      const { batch: b, length: t } = shared;
      const q = splitHeads(w.layer(`${s}.query`).forward(h, ctx), b, t, a.numHeads);
      const k = splitHeads(w.layer(`${s}.key`).forward(h, ctx), b, t, a.numHeads);
      const v = splitHeads(w.layer(`${s}.value`).forward(h, ctx), b, t, a.numHeads);
      const attended = w
        .layer(`${l}.attention.output.dense`)
        .forward(mergeHeads(attend(q, k, v, shared.bias.full_attention)), ctx);
      const x = norm(tf.add(attended, h) as tf.Tensor2D, `${l}.attention.output.LayerNorm`);
      const inner = act(w.layer(`${l}.intermediate.dense`).forward(x, ctx)) as tf.Tensor2D;
      return norm(
        tf.add(w.layer(`${l}.output.dense`).forward(inner, ctx), x) as tf.Tensor2D,
        `${l}.output.LayerNorm`,
      );
    },
    finish: (h) => h,
    head: variant.classify(a, w),
    pool(hidden, batch) {
      const [b, t] = batch.inputIds.shape;
      return tf.reshape(tf.slice(tf.reshape(hidden, [b, t, -1]), [0, 0, 0], [b, 1, -1]), [
        b,
        -1,
      ]) as tf.Tensor2D;
    },
  };
}

export function encoderLike(classPrefix: string, variant: EncoderVariant): Architecture<EncoderConfig> {
  return {
    classes: { 'seq-cls': `${classPrefix}ForSequenceClassification` },
    defaultTargets: ['query', 'value'],
    parse: (config, head) => parseEncoder(config, head, variant),
    modules: (a) => encoderModules(a, variant),
    positionLimit: (a) => ({ tokens: variant.maxTokens(a), learned: true }),
    network: (a, w) => encoderNetwork(a, w, variant),
  };
}

/** BERT (`BertForSequenceClassification`): pooler (dense + tanh) on [CLS], then `classifier`. */
export const bert = encoderLike('Bert', {
  modelType: 'bert',
  defaultPadTokenId: 0,
  positionEmbeddingsLast: false,
  headModules(a) {
    const d = a.hiddenSize;
    return [
      adaptable(`${a.basePrefix}.pooler.dense`, 'Linear', [d, d], true),
      adaptable('classifier', 'Linear', [a.numLabels ?? 2, d], true, { isOutputHead: true }),
    ];
  },
  positions(a, inputIds) {
    const [b, t] = inputIds.shape;
    if (t > a.maxPositions) {
      throw new Error(`sequence of ${t} tokens exceeds max_position_embeddings ${a.maxPositions}`);
    }
    return tf.tile(tf.reshape(tf.range(0, t, 1, 'int32'), [1, t]), [b, 1]) as tf.Tensor2D;
  },
  classify(a, w) {
    const pooler = w.layer(`${a.basePrefix}.pooler.dense`);
    const classifier = w.layer('classifier');
    return (first, ctx) => classifier.forward(tf.tanh(pooler.forward(first, ctx)) as tf.Tensor2D, ctx);
  },
  maxTokens: (a) => a.maxPositions,
});
