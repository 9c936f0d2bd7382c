import * as tf from '@tensorflow/tfjs-core';
import type { AdapterInstance } from '../engine/adapters/index.ts';
import { trainingContext } from '../engine/models/index.ts';
import type { LoadedModel } from '../engine/models/types.ts';
import { AdamW, causalLmLossSum } from '../engine/training/index.ts';
import { syntheticIds } from './synthetic.ts';

export interface TimedStepsOptions {
  batch: number;
  seq: number;
  /** Timed steps; one extra warm-up step (kernels, allocations) runs first and is not counted. */
  steps: number;
  lr: number;
  weightDecay: number;
  onStep?: (step: number, stepMs: number, forwardMs: number) => void;
}

export interface TimedSteps {
  /** Median forward + backward + AdamW time of a step. */
  stepMs: number;
  /** Median time of a forward pass alone. */
  forwardMs: number;
  loss: number;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/**
 * Times causal-LM training steps of an attached adapter on a fixed synthetic batch: a forward pass alone, then
 * forward + backward + AdamW, as the bench drivers (one per process) report them. Import it only after the
 * backend and gradients are registered.
 */
export function timeTrainingSteps(
  model: LoadedModel,
  instance: AdapterInstance,
  o: TimedStepsOptions,
): TimedSteps {
  const params = instance.trainable();
  const optimizer = new AdamW(params, {
    beta1: 0.9,
    beta2: 0.999,
    eps: 1e-8,
    groups: { adapter: { lr: o.lr, weightDecay: o.weightDecay }, scaling: { lr: o.lr, weightDecay: 0 } },
  });
  const vocab = model.spec.vocabSize;
  const inputIds = tf.tensor2d(syntheticIds(o.batch, o.seq, vocab), [o.batch, o.seq], 'int32');
  const attentionMask = tf.ones([o.batch, o.seq], 'int32') as tf.Tensor2D;
  const lossMask = tf.ones([o.batch, o.seq], 'float32') as tf.Tensor2D;
  const byVariable = new Map(params.map((p) => [p.variable.name, p.name]));
  const stepMs: number[] = [];
  const forwardMs: number[] = [];
  let loss = Number.NaN;
  for (let step = 0; step <= o.steps; step++) {
    const t0 = performance.now();
    tf.tidy(() => {
      (model.forward({ inputIds, attentionMask }, trainingContext(0, step)) as tf.Tensor).dataSync();
    });
    const t1 = performance.now();
    const { value, grads } = tf.variableGrads(
      () => {
        const logits = model.forward({ inputIds, attentionMask }, trainingContext(0, step)) as tf.Tensor3D;
        return tf.div(causalLmLossSum(logits, inputIds, lossMask), o.batch * (o.seq - 1)) as tf.Scalar;
      },
      params.map((p) => p.variable),
    );
    const named: Record<string, tf.Tensor> = {};
    for (const [key, g] of Object.entries(grads)) named[byVariable.get(key) ?? key] = g;
    optimizer.step(named, 1);
    loss = value.dataSync()[0];
    tf.dispose([value, ...Object.values(grads)]);
    const t2 = performance.now();
    o.onStep?.(step, t2 - t1, t1 - t0);
    if (step > 0) {
      forwardMs.push(t1 - t0);
      stepMs.push(t2 - t1);
    }
  }
  tf.dispose([inputIds, attentionMask, lossMask]);
  return { stepMs: median(stepMs), forwardMs: median(forwardMs), loss };
}
