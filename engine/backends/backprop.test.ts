import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { useTestBackend } from './testing.ts';

/**
 * The freeing backward pass against tfjs' own (the engine prototype's `gradients`, which the installed pass
 * replaces on the instance): the same gradients on graphs that reuse tensors, pass gradients through unchanged
 * and hand one gradient to two inputs; higher-order gradients; no tensor left behind; and a lower peak.
 */

type Gradients = (f: () => tf.Tensor, xs: tf.Tensor[]) => { value: tf.Tensor; grads: tf.Tensor[] };

const engine = () => tf.engine() as unknown as { gradients: Gradients };
const tfjsGradients = (f: () => tf.Tensor, xs: tf.Tensor[]) =>
  (Object.getPrototypeOf(tf.engine()) as { gradients: Gradients }).gradients.call(tf.engine(), f, xs);

beforeAll(async () => {
  await useTestBackend();
});

/** One gradient for both inputs, and the upstream gradient itself handed back: the cases freeing must respect. */
const sharedGradient = tf.customGrad(((a: tf.Tensor, b: tf.Tensor) => ({
  value: tf.add(a, b),
  gradFunc: (dy: tf.Tensor) => [dy, dy],
})) as unknown as Parameters<typeof tf.customGrad>[0]);

function graph(x: tf.Tensor, w: tf.Tensor): tf.Tensor {
  const h = tf.tanh(tf.matMul(x, w));
  const reused = tf.mul(h, h);
  const both = sharedGradient(reused, tf.sigmoid(h)) as tf.Tensor;
  return tf.sum(tf.mul(both, tf.exp(tf.neg(tf.abs(h)))));
}

describe('the freeing backward pass', () => {
  it('gives tfjs’ gradients and leaves no tensor behind', () => {
    const x = tf.randomNormal([6, 5], 0, 1, 'float32', 1);
    const w = tf.randomNormal([5, 7], 0, 1, 'float32', 2);
    const before = tf.memory().numTensors;
    const ours = engine().gradients(() => graph(x, w), [x, w]);
    expect(tf.memory().numTensors).toBe(before + 3);
    const theirs = tfjsGradients(() => graph(x, w), [x, w]);
    expect(ours.value.dataSync()[0]).toBeCloseTo(theirs.value.dataSync()[0], 5);
    for (let i = 0; i < 2; i++) {
      const a = ours.grads[i].dataSync();
      const b = theirs.grads[i].dataSync();
      for (let j = 0; j < a.length; j++) expect(a[j]).toBeCloseTo(b[j], 5);
    }
    tf.dispose([ours.value, ...ours.grads, theirs.value, ...theirs.grads, x, w]);
  });

  it('keeps higher-order gradients working (a tape still recording around the pass)', () => {
    const x = tf.scalar(0.7);
    const second = tf.grad((v: tf.Tensor) => tf.grad((u: tf.Tensor) => tf.mul(tf.sin(u), tf.mul(u, u)))(v))(
      x,
    );
    const v = 0.7;
    // d²/dx² x²·sin x = 2 sin x + 4x cos x − x² sin x
    expect(second.dataSync()[0]).toBeCloseTo(2 * Math.sin(v) + 4 * v * Math.cos(v) - v * v * Math.sin(v), 4);
    tf.dispose([x, second]);
  });

  it('frees each op’s gradient and saved tensors as it goes: little is left when the last op is reached', () => {
    const x = tf.randomNormal([128, 128], 0, 1, 'float32', 3);
    let liveAtLastOp = 0;
    // the first op of the forward pass is the last of the backward one: it reads what is still alive there
    const probe = tf.customGrad(((v: tf.Tensor) => ({
      value: tf.clone(v),
      gradFunc: (dy: tf.Tensor) => {
        liveAtLastOp = tf.memory().numDataBuffers;
        return tf.clone(dy);
      },
    })) as unknown as Parameters<typeof tf.customGrad>[0]);
    const chain = () => {
      let h = probe(x) as tf.Tensor;
      for (let i = 0; i < 24; i++) h = tf.mul(tf.tanh(h), 1.01);
      return tf.sum(h);
    };
    const liveDuring = (gradients: Gradients) => {
      const before = tf.memory().numDataBuffers;
      const { value, grads } = gradients(chain, [x]);
      tf.dispose([value, ...grads]);
      return liveAtLastOp - before;
    };
    const ours = liveDuring((f, xs) => engine().gradients(f, xs));
    const theirs = liveDuring(tfjsGradients);
    // tfjs keeps each of the 48 ops' output gradient and the 24 saved tanh outputs until the pass ends
    expect(theirs).toBeGreaterThan(60);
    expect(ours).toBeLessThan(8);
    x.dispose();
  });
});
