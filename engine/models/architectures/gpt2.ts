import * as tf from '@tensorflow/tfjs-core';
import { CONFIG_FILE, divide, ModelError, num, optionalId, positiveInt } from '../config.ts';
import { type DecoderConfig, decoderHead, decoderInputs, lastTokenPool, withPast } from '../decoder.ts';
import type { Architecture } from '../network.ts';
import { activation, addShapes, attend, layerNorm, mergeHeads, splitHeads } from '../ops.ts';
import { adaptable, decoderHeadModules, weighted } from '../spec.ts';
import type { ModuleInfo } from '../types.ts';

/** GPT-2 (`GPT2LMHeadModel`): learned positions, fused c_attn, Conv1D weights (in × out). */
export const gpt2: Architecture<DecoderConfig> = {
  classes: { 'causal-lm': 'GPT2LMHeadModel', 'seq-cls': 'GPT2ForSequenceClassification' },
  defaultTargets: ['c_attn'],

  parse(config, head) {
    if (config.scale_attn_weights === false || config.scale_attn_by_inverse_layer_idx === true) {
      throw new ModelError(
        CONFIG_FILE,
        'GPT-2 attention scaling options scale_attn_weights=false / scale_attn_by_inverse_layer_idx=true are not supported',
      );
    }
    const hiddenSize = positiveInt(config, 'n_embd');
    const numHeads = positiveInt(config, 'n_head');
    const numLayers = positiveInt(config, 'n_layer');
    return {
      modelType: 'gpt2',
      ...head,
      basePrefix: 'transformer',
      vocabSize: positiveInt(config, 'vocab_size'),
      hiddenSize,
      numLayers,
      numHeads,
      numKvHeads: numHeads,
      headDim: divide(hiddenSize, numHeads, 'n_embd', 'n_head'),
      intermediateSize: positiveInt(config, 'n_inner', 4 * hiddenSize),
      maxPositions: positiveInt(config, 'n_positions'),
      normEps: num(config, 'layer_norm_epsilon', 1e-5),
      activation: String(config.activation_function ?? 'gelu_new'),
      tieWordEmbeddings: config.tie_word_embeddings !== false,
      padTokenId: optionalId(config, 'pad_token_id'),
      initializerRange: num(config, 'initializer_range', 0.02),
      layerTypes: new Array(numLayers).fill('full_attention'),
      windows: { full_attention: null },
      rope: null,
    };
  },

  modules(a) {
    const d = a.hiddenSize;
    const p = a.basePrefix;
    const mods: ModuleInfo[] = [
      adaptable(`${p}.wte`, 'Embedding', [a.vocabSize, d], false),
      adaptable(`${p}.wpe`, 'Embedding', [a.maxPositions, d], false),
    ];
    for (let i = 0; i < a.numLayers; i++) {
      const l = `${p}.h.${i}`;
      const at = { layerIndex: i };
      mods.push(
        weighted(`${l}.ln_1`, 'LayerNorm', [d], true, at),
        adaptable(`${l}.attn.c_attn`, 'Conv1D', [d, 3 * d], true, at),
        adaptable(`${l}.attn.c_proj`, 'Conv1D', [d, d], true, at),
        weighted(`${l}.ln_2`, 'LayerNorm', [d], true, at),
        adaptable(`${l}.mlp.c_fc`, 'Conv1D', [d, a.intermediateSize], true, at),
        adaptable(`${l}.mlp.c_proj`, 'Conv1D', [a.intermediateSize, d], true, at),
      );
    }
    mods.push(weighted(`${p}.ln_f`, 'LayerNorm', [d], true));
    return [...mods, ...decoderHeadModules(a, `${p}.wte`)];
  },

  positionLimit: (a) => ({ tokens: a.maxPositions, learned: true }),

  network(a, w) {
    const p = a.basePrefix;
    const act = activation(a.activation);
    const wte = w.layer(`${p}.wte`);
    const wpe = w.layer(`${p}.wpe`);
    return {
      numLayers: a.numLayers,
      prepare(input, ctx) {
        const total = input.attentionMask.shape[1];
        if (total > a.maxPositions) {
          throw new Error(
            `sequence of ${total} tokens exceeds n_positions ${a.maxPositions} of this GPT-2 model`,
          );
        }
        const shared = decoderInputs(a, input);
        const ids = tf.reshape(input.inputIds, [-1]) as tf.Tensor1D;
        const posIds = tf.reshape(shared.positions, [-1]) as tf.Tensor1D;
        return { h: addShapes(wte.embed(ids, ctx), wpe.embed(posIds, ctx)), shared };
      },
      block(i, h, shared, ctx) {
        const l = `${p}.h.${i}`;
        const { batch: b, length: t } = shared;
        const normed = layerNorm(h, w.param(`${l}.ln_1.weight`), w.param(`${l}.ln_1.bias`), a.normEps);
        const [q2, k2, v2] = tf.split(
          w.layer(`${l}.attn.c_attn`).forward(normed, ctx),
          3,
          1,
        ) as tf.Tensor2D[];
        const q = splitHeads(q2, b, t, a.numHeads);
        const k = withPast(splitHeads(k2, b, t, a.numHeads), shared, i, 'keys');
        const v = withPast(splitHeads(v2, b, t, a.numHeads), shared, i, 'values');
        const attended = mergeHeads(attend(q, k, v, shared.bias[a.layerTypes[i]]));
        let out = addShapes(h, w.layer(`${l}.attn.c_proj`).forward(attended, ctx));
        const m = layerNorm(out, w.param(`${l}.ln_2.weight`), w.param(`${l}.ln_2.bias`), a.normEps);
        const inner = act(w.layer(`${l}.mlp.c_fc`).forward(m, ctx)) as tf.Tensor2D;
        out = addShapes(out, w.layer(`${l}.mlp.c_proj`).forward(inner, ctx));
        return out;
      },
      finish: (h) => layerNorm(h, w.param(`${p}.ln_f.weight`), w.param(`${p}.ln_f.bias`), a.normEps),
      head: decoderHead(a, w),
      pool: (hidden, batch) => lastTokenPool(hidden, batch, a.padTokenId),
      ...(a.task === 'causal-lm' ? { linearHead: { layer: w.layer('lm_head'), softcap: null } } : {}),
    };
  },
};
