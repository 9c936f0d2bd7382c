import * as tf from '@tensorflow/tfjs-core';
import { fromTensor, type Matrix, matrix } from '../../linalg/index.ts';
import type { AdaptableKind, AdaptableLayer } from '../../models/layers.ts';
import { parseMethodConfig } from '../registry.ts';
import { layerOutput, randomAdaptableLayer, randomInput } from '../testing.ts';
import type { AdapterInstance, MethodDefinition } from '../types.ts';

/** Test helpers shared by the TLoRA, TinyLoRA, VeRA and LoRA-XS tests. */

/** A float64 copy of a tensor as a matrix (1-D tensors become one row). */
export function dense(t: tf.Tensor): Matrix {
  return t.rank === 1 ? matrix(1, t.size, t.dataSync()) : fromTensor(t);
}

/** Mean and standard deviation of a tensor's entries. */
export function moments(t: tf.Tensor): { mean: number; std: number } {
  const d = t.dataSync();
  let mean = 0;
  for (const x of d) mean += x;
  mean /= d.length;
  let variance = 0;
  for (const x of d) variance += (x - mean) ** 2;
  return { mean, std: Math.sqrt(variance / d.length) };
}

/** A fresh layer with the method attached under the name `test` (active). */
export function attached(
  definition: MethodDefinition,
  rawConfig: Record<string, unknown>,
  kind: AdaptableKind,
  inF: number,
  outF: number,
  seed = 7,
): { layer: AdaptableLayer; instance: AdapterInstance; dispose: () => void } {
  const layer = randomAdaptableLayer(kind, inF, outF, { seed: 13 });
  const config = parseMethodConfig(definition.name, rawConfig);
  const instance = definition.create([layer], config, { adapterName: 'test', seed });
  layer.activeAdapters = ['test'];
  return {
    layer,
    instance,
    dispose: () => {
      instance.dispose();
      layer.weight.dispose();
      layer.bias?.dispose();
    },
  };
}

/**
 * Fits the adapter on one module to a random target (base output plus x·ΔW*ᵀ) with Adam and returns the
 * losses of the first and last steps.
 */
export function fitLosses(
  definition: MethodDefinition,
  rawConfig: Record<string, unknown>,
  kind: AdaptableKind,
  steps = 25,
  learningRate = 0.05,
): { first: number; last: number } {
  const { layer, instance, dispose } = attached(definition, rawConfig, kind, 12, 10);
  const input = randomInput(layer, 16, 4);
  const target = tf.tidy(() => {
    const shift = tf.mul(tf.randomNormal([layer.inFeatures, layer.outFeatures], 0, 1, 'float32', 5), 0.3);
    return kind === 'Embedding'
      ? tf.add(layerOutput(layer, input), tf.gather(shift, input as tf.Tensor1D))
      : tf.add(layerOutput(layer, input), tf.matMul(input as tf.Tensor2D, shift));
  });
  const optimizer = tf.train.adam(learningRate);
  const variables = instance.trainable().map((t) => t.variable);
  const losses: number[] = [];
  for (let step = 0; step < steps; step++) {
    const cost = optimizer.minimize(
      () => tf.mean(tf.square(tf.sub(layerOutput(layer, input), target))) as tf.Scalar,
      true,
      variables,
    );
    losses.push(cost!.dataSync()[0]);
    cost!.dispose();
  }
  optimizer.dispose();
  tf.dispose([input, target]);
  dispose();
  return { first: losses[0], last: losses[losses.length - 1] };
}
