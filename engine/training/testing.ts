import * as tf from '@tensorflow/tfjs-core';
import type { AdapterInstance, TrainableParam } from '../adapters/types.ts';
import { FrozenWeight } from '../backends/frozen.ts';
import { AdaptableLayer, type AdapterLayer, dropout, type ForwardContext } from '../models/layers.ts';
import type { Batch, LoadedModel, TaskKind } from '../models/types.ts';

/**
 * A hand-built two-layer model for trainer tests (embedding → tanh → Linear head), with the `LoadedModel`
 * contract: causal LM logits [B, T, vocab] or classification logits of the mean-pooled state [B, labels].
 */
export function tinyModel(
  task: TaskKind,
  opts: { vocab?: number; hidden?: number; labels?: number; seed?: number } = {},
): LoadedModel {
  const vocab = opts.vocab ?? 12;
  const hidden = opts.hidden ?? 8;
  const labels = opts.labels ?? 2;
  const seed = opts.seed ?? 7;
  const outFeatures = task === 'seq-cls' ? labels : vocab;
  const embed = new AdaptableLayer(
    'embed_tokens',
    'Embedding',
    FrozenWeight.adopt(tf.randomNormal([vocab, hidden], 0, 1, 'float32', seed)),
    null,
    'embed_tokens.weight',
  );
  const head = new AdaptableLayer(
    'head',
    'Linear',
    FrozenWeight.adopt(tf.randomNormal([outFeatures, hidden], 0, 0.5, 'float32', seed + 1)),
    tf.zeros([outFeatures]) as tf.Tensor1D,
    'head.weight',
  );
  const hiddenRows = (batch: Batch, ctx: ForwardContext): tf.Tensor2D =>
    tf.tidy(() => {
      const [b, t] = batch.inputIds.shape;
      return tf.tanh(embed.embed(tf.reshape(batch.inputIds, [b * t]) as tf.Tensor1D, ctx));
    });
  const layers = new Map([
    ['embed_tokens', embed],
    ['head', head],
  ]);
  return {
    dir: '(tiny)',
    layers,
    spec: {
      modelType: 'tiny',
      architecture: task === 'seq-cls' ? 'TinyForSequenceClassification' : 'TinyForCausalLM',
      task,
      numLabels: task === 'seq-cls' ? labels : undefined,
      vocabSize: vocab,
      hiddenSize: hidden,
      numLayers: 1,
      numParameters: vocab * hidden + outFeatures * (hidden + 1),
      modules: [],
      config: {},
    },
    hidden: hiddenRows,
    head: (rows: tf.Tensor2D, ctx: ForwardContext) => head.forward(rows, ctx),
    forward(batch: Batch, ctx: ForwardContext): tf.Tensor {
      return tf.tidy(() => {
        const [b, t] = batch.inputIds.shape;
        const h = hiddenRows(batch, ctx);
        if (task === 'seq-cls') {
          const mask = tf.reshape(tf.cast(batch.attentionMask, 'float32'), [b, t, 1]);
          const pooled = tf.div(
            tf.sum(tf.mul(tf.reshape(h, [b, t, hidden]), mask), 1),
            tf.sum(mask, 1),
          ) as tf.Tensor2D;
          return head.forward(pooled, ctx);
        }
        return tf.reshape(head.forward(h, ctx), [b, t, outFeatures]);
      });
    },
    dispose() {
      for (const l of layers.values()) {
        l.weight.dispose();
        l.bias?.dispose();
      }
    },
  };
}

/** A minimal LoRA on the tiny model's head (B·A·dropout(x)·scale) with a trainable scale in group `scaling`. */
export function tinyAdapter(
  model: LoadedModel,
  seed: number,
  opts: { rank?: number; dropout?: number } = {},
): AdapterInstance {
  const rank = opts.rank ?? 2;
  const rate = opts.dropout ?? 0;
  const head = model.layers.get('head')!;
  const owned = (t: tf.Tensor) => {
    const v = tf.variable(t);
    t.dispose();
    return v;
  };
  const a = owned(tf.randomNormal([rank, head.inFeatures], 0, 0.3, 'float32', seed));
  const b = owned(tf.zeros([head.outFeatures, rank]));
  const scale = owned(tf.scalar(1));
  const layer: AdapterLayer = {
    adapterName: 'default',
    forward(x, base, ctx) {
      return tf.tidy(() =>
        tf.add(
          base,
          tf.mul(tf.matMul(tf.matMul(dropout(x, rate, ctx), a, false, true), b, false, true), scale),
        ),
      );
    },
    deltaWeight: () => tf.tidy(() => tf.mul(tf.matMul(b, a), scale) as tf.Tensor2D),
    lowRankFactors: () => ({ left: tf.mul(b, scale) as tf.Tensor2D, right: a.clone() as tf.Tensor2D }),
  };
  head.adapters.set('default', layer);
  head.activeAdapters = ['default'];
  const params: TrainableParam[] = [
    { name: 'head.lora_A', variable: a, group: 'adapter' },
    { name: 'head.lora_B', variable: b, group: 'adapter' },
    { name: 'head.scale', variable: scale, group: 'scaling' },
  ];
  return {
    name: 'default',
    method: 'lora',
    config: { r: rank },
    layers: new Map([['head', layer]]),
    trainable: () => params,
    state: () => Object.fromEntries(params.map((p) => [p.name, p.variable.clone()])),
    loadState(state) {
      for (const p of params) {
        const v = state[p.name];
        if (!v) throw new Error(`missing "${p.name}"`);
        p.variable.assign(v);
      }
    },
    dispose() {
      head.adapters.delete('default');
      head.activeAdapters = [];
      tf.dispose([a, b, scale]);
    },
  };
}
