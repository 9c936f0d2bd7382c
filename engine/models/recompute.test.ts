import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { randomValues } from '../backends/parity.ts';
import { useTestBackend } from '../backends/testing.ts';
import { type ForwardContext, trainingContext } from './layers.ts';
import { weightedTokenNll } from './ops.ts';
import { checkpointed, chunkedTokenNll } from './recompute.ts';

/** Recomputing ops give the gradients the plain computation gives, and keep less alive in the forward pass. */

beforeAll(async () => {
  await useTestBackend();
});

const values = (shape: number[], seed: number, scale = 1) =>
  randomValues(tf.util.sizeFromShape(shape), seed).map((v) => v * scale);

function maxDiff(a: tf.Tensor, b: tf.Tensor): number {
  return tf.tidy(() => tf.max(tf.abs(tf.sub(a, b))).dataSync()[0]);
}

/** Two dropout-and-tanh layers reading variables and a constant table. */
function block(w1: tf.Variable, w2: tf.Variable) {
  return (x: tf.Tensor2D, [table]: tf.Tensor[], ctx: ForwardContext): tf.Tensor2D =>
    tf.tidy(() => {
      const h = tf.tanh(tf.add(tf.matMul(tf.dropout(x, 0.3, undefined, ctx.nextSeed()), w1), table));
      return tf.matMul(tf.dropout(h, 0.3, undefined, ctx.nextSeed()), w2) as tf.Tensor2D;
    });
}

describe('checkpointed', () => {
  it('gives the gradients of the plain computation, dropout masks included, and keeps less alive', () => {
    const w1 = tf.variable(tf.tensor2d(values([6, 16], 1, 0.5), [6, 16]), true, 'ckpt.w1');
    const w2 = tf.variable(tf.tensor2d(values([16, 6], 2, 0.5), [16, 6]), true, 'ckpt.w2');
    const x = tf.tensor2d(values([32, 6], 3), [32, 6]);
    const table = tf.tensor2d(values([32, 16], 4, 0.1), [32, 16]);
    const f = block(w1, w2);
    const run = (useCheckpoint: boolean) => {
      const ctx = trainingContext(7, 3);
      let liveBytes = 0;
      const { value, grads } = tf.variableGrads(() => {
        let h = x;
        for (let i = 0; i < 3; i++) {
          h = useCheckpoint ? checkpointed(f, h, [table], [w1, w2], ctx) : f(h, [table], ctx);
        }
        const loss = tf.sum(tf.square(h)) as tf.Scalar;
        liveBytes = tf.memory().numBytes;
        return loss;
      }, [w1, w2]);
      return { value, grads, liveBytes };
    };
    const plain = run(false);
    const ckpt = run(true);
    expect(Math.abs(plain.value.dataSync()[0] - ckpt.value.dataSync()[0])).toBeLessThan(1e-5);
    for (const name of ['ckpt.w1', 'ckpt.w2']) {
      expect(maxDiff(plain.grads[name], ckpt.grads[name])).toBeLessThan(1e-5);
      expect(tf.tidy(() => tf.max(tf.abs(plain.grads[name])).dataSync()[0])).toBeGreaterThan(1e-3);
    }
    expect(ckpt.liveBytes).toBeLessThan(plain.liveBytes);
    tf.dispose([plain.value, ckpt.value, ...Object.values(plain.grads), ...Object.values(ckpt.grads)]);
    tf.dispose([w1, w2, x, table]);
  });

  it('differentiates with respect to its input too', () => {
    const w1 = tf.variable(tf.tensor2d(values([4, 8], 5), [4, 8]), true, 'ckpt.in.w1');
    const w2 = tf.variable(tf.tensor2d(values([8, 4], 6), [8, 4]), true, 'ckpt.in.w2');
    const x = tf.tensor2d(values([5, 4], 7), [5, 4]);
    const table = tf.zeros([5, 8]);
    const f = block(w1, w2);
    const eval1 = { training: false, nextSeed: () => 0 };
    const plain = tf.grad((v: tf.Tensor) => tf.sum(tf.square(f(v as tf.Tensor2D, [table], eval1))))(x);
    const ckpt = tf.grad((v: tf.Tensor) =>
      tf.sum(tf.square(checkpointed(f, v as tf.Tensor2D, [table], [w1, w2], eval1))),
    )(x);
    expect(maxDiff(plain, ckpt)).toBeLessThan(1e-5);
    tf.dispose([plain, ckpt, w1, w2, x, table]);
  });
});

describe('chunkedTokenNll', () => {
  it('equals the unchunked loss and gradients for any chunk size, with an adapter variable in the head', () => {
    const n = 11;
    const d = 5;
    const vocab = 23;
    const w = tf.tensor2d(values([vocab, d], 8), [vocab, d]);
    const a = tf.variable(tf.tensor2d(values([vocab, d], 9, 0.1), [vocab, d]), true, 'chunk.a');
    const rowsVar = tf.variable(tf.tensor2d(values([n, d], 10), [n, d]), true, 'chunk.rows');
    const targets = tf.tensor1d(
      Array.from({ length: n }, (_, i) => (i * 7) % vocab),
      'int32',
    );
    const weights = tf.tensor1d(Array.from({ length: n }, (_, i) => (i % 4 === 0 ? 0 : 1)));
    const head = (x: tf.Tensor2D) => tf.matMul(x, tf.add(w, a), false, true) as tf.Tensor2D;
    const reference = tf.variableGrads(() => weightedTokenNll(head(rowsVar), targets, weights), [a, rowsVar]);
    for (const chunk of [1, 3, n, 100]) {
      const chunked = tf.variableGrads(
        () => chunkedTokenNll(rowsVar, head, targets, weights, chunk, [a]),
        [a, rowsVar],
      );
      expect(Math.abs(chunked.value.dataSync()[0] - reference.value.dataSync()[0])).toBeLessThan(1e-4);
      expect(maxDiff(chunked.grads['chunk.a'], reference.grads['chunk.a'])).toBeLessThan(1e-5);
      expect(maxDiff(chunked.grads['chunk.rows'], reference.grads['chunk.rows'])).toBeLessThan(1e-5);
      tf.dispose([chunked.value, ...Object.values(chunked.grads)]);
    }
    tf.dispose([reference.value, ...Object.values(reference.grads), w, a, rowsVar, targets, weights]);
  });
});
