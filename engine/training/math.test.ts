import { readFileSync } from 'node:fs';
import * as tf from '@tensorflow/tfjs-core';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { useTestBackend } from '../backends/testing.ts';
import { causalLmLossSum, classificationLossSum } from './loss.ts';
import { accuracy, binaryF1, exactMatch } from './metrics.ts';
import { AdamW, clipFactor, gradSquaredSum } from './optimizer.ts';
import { lrFactor } from './schedule.ts';

const ref = JSON.parse(readFileSync(new URL('./fixtures/reference.json', import.meta.url), 'utf8'));

beforeAll(async () => {
  await useTestBackend();
});

function close(actual: ArrayLike<number>, expected: number[], tol: number): void {
  expect(actual.length).toBe(expected.length);
  for (let i = 0; i < expected.length; i++) expect(Math.abs(actual[i] - expected[i])).toBeLessThan(tol);
}

describe('AdamW against the numpy reference (torch.optim.AdamW algorithm)', () => {
  afterEach(() => {
    delete process.env.STUDIO_FUSED;
  });

  it('matches parameters and moments after 5 steps with per-group lr, weight decay and schedule factors', () => {
    const a = tf.variable(tf.tensor(ref.adamw.params.a));
    const s = tf.variable(tf.tensor(ref.adamw.params.s));
    const opt = new AdamW(
      [
        { name: 'a', variable: a, group: 'adapter' },
        { name: 's', variable: s, group: 'scaling' },
      ],
      {
        beta1: 0.9,
        beta2: 0.999,
        eps: 1e-8,
        groups: {
          adapter: { lr: ref.adamw.lr.a, weightDecay: ref.adamw.weightDecay.a },
          scaling: { lr: ref.adamw.lr.s, weightDecay: ref.adamw.weightDecay.s },
        },
      },
    );
    ref.adamw.grads.forEach((g: { a: number[][]; s: number[] }, i: number) => {
      const grads = { a: tf.tensor(g.a), s: tf.tensor(g.s) };
      opt.step(grads, ref.adamw.lrFactors[i]);
      tf.dispose(Object.values(grads));
    });
    close(a.dataSync(), ref.adamw.expected.a.flat(), 2e-5);
    close(s.dataSync(), ref.adamw.expected.s, 2e-5);
    const state = opt.state();
    expect(state.step).toBe(5);
    close(state.tensors['a.exp_avg'].dataSync(), ref.adamw.expAvg.a.flat(), 1e-6);
    close(state.tensors['s.exp_avg_sq'].dataSync(), ref.adamw.expAvgSq.s, 1e-6);

    // Restoring the state into a fresh optimizer continues identically.
    const b = tf.variable(a.clone());
    const opt2 = new AdamW([{ name: 'a', variable: b, group: 'adapter' }], opt.options);
    opt2.loadState({
      step: state.step,
      tensors: { 'a.exp_avg': state.tensors['a.exp_avg'], 'a.exp_avg_sq': state.tensors['a.exp_avg_sq'] },
    });
    const g = tf.ones([3, 4]);
    opt.step({ a: g }, 1);
    opt2.step({ a: g }, 1);
    expect(b.dataSync()).toEqual(a.dataSync());
    expect(() => opt2.loadState({ step: 1, tensors: {} })).toThrow('optimizer state has no "a.exp_avg"');
    tf.dispose([a, s, b, g]);
    opt.dispose();
    opt2.dispose();
  });

  it('clips by global norm like clip_grad_norm_', () => {
    const g = [tf.tensor([3, 0]), tf.tensor([[4]])];
    const squared = gradSquaredSum(g);
    expect(squared.dataSync()[0]).toBeCloseTo(25, 5);
    squared.dispose();
    expect(clipFactor(5, 1)).toBeCloseTo(1 / (5 + 1e-6), 9);
    expect(clipFactor(0.5, 1)).toBe(1);
    expect(clipFactor(5, 0)).toBe(1);
    tf.dispose(g);
  });

  it('sums squares of large and small gradients, on the fused kernel and the composed ops alike', () => {
    const grads = [
      tf.randomNormal([300, 700], 0, 1, 'float32', 1),
      tf.randomNormal([5, 3], 0, 2, 'float32', 2),
    ];
    const composed = tf.tidy(() => tf.addN(grads.map((x) => tf.sum(tf.square(x)))).dataSync()[0]);
    const squared = gradSquaredSum(grads);
    expect(Math.abs(squared.dataSync()[0] - composed) / composed).toBeLessThan(1e-5);
    tf.dispose([squared, ...grads]);
  });

  it.each([
    'fused',
    'composed',
  ])('uses each gradient times gradScale (%s update), as if it had been scaled first', (route) => {
    if (route === 'composed') process.env.STUDIO_FUSED = 'off';
    const make = () => tf.variable(tf.tensor([[0.5, -1, 2]]));
    const [scaledInside, scaledBefore] = [make(), make()];
    const options = {
      beta1: 0.9,
      beta2: 0.999,
      eps: 1e-8,
      groups: {
        adapter: { lr: 0.01, weightDecay: 0.1 },
        scaling: { lr: 0.01, weightDecay: 0 },
      },
    };
    const inside = new AdamW([{ name: 'p', variable: scaledInside, group: 'adapter' }], options);
    const before = new AdamW([{ name: 'p', variable: scaledBefore, group: 'adapter' }], options);
    const g = tf.tensor([[3, -0.25, 40]]);
    const gScaled = tf.mul(g, 0.03);
    for (let i = 0; i < 3; i++) {
      inside.step({ p: g }, 1, 0.03);
      before.step({ p: gScaled }, 1);
    }
    close(scaledInside.dataSync(), Array.from(scaledBefore.dataSync()), 1e-7);
    tf.dispose([scaledInside, scaledBefore, g, gScaled]);
    inside.dispose();
    before.dispose();
  });
});

describe('schedules against the transformers lambdas', () => {
  it.each(['constant', 'linear', 'cosine'] as const)('%s with warmup', (kind) => {
    const { total, warmup } = ref.schedules;
    const got = Array.from({ length: total + 1 }, (_, s) =>
      lrFactor({ kind, warmupSteps: warmup, totalSteps: total }, s),
    );
    close(got, ref.schedules[kind], 1e-12);
  });
});

describe('losses against the numpy reference', () => {
  it('causal LM: shifted targets under the loss mask', () => {
    const logits = tf.tensor3d(ref.loss.logits);
    const ids = tf.tensor2d(ref.loss.ids, undefined, 'int32');
    const mask = tf.tensor2d(ref.loss.mask);
    const loss = causalLmLossSum(logits, ids, mask);
    expect(loss.dataSync()[0]).toBeCloseTo(ref.loss.sum, 4);
    tf.dispose([logits, ids, mask, loss]);
  });

  it('classification', () => {
    const logits = tf.tensor2d(ref.loss.clsLogits);
    const labels = tf.tensor1d(ref.loss.clsLabels, 'int32');
    const loss = classificationLossSum(logits, labels);
    expect(loss.dataSync()[0]).toBeCloseTo(ref.loss.clsSum, 4);
    tf.dispose([logits, labels, loss]);
  });

  it('has the softmax-minus-onehot gradient', () => {
    const logits = tf.tensor2d(ref.loss.clsLogits);
    const labels = tf.tensor1d(ref.loss.clsLabels, 'int32');
    const grad = tf.grad((x: tf.Tensor) => classificationLossSum(x as tf.Tensor2D, labels))(logits);
    const expected = tf.sub(tf.softmax(logits), tf.oneHot(labels, 3));
    close(grad.dataSync(), Array.from(expected.dataSync()), 1e-6);
    tf.dispose([logits, labels, grad, expected]);
  });
});

describe('metrics', () => {
  it('accuracy and binary F1 match the reference', () => {
    expect(accuracy(ref.f1.pred, ref.f1.gold)).toBeCloseTo(ref.f1.accuracy, 12);
    expect(binaryF1(ref.f1.pred, ref.f1.gold)).toBeCloseTo(ref.f1.f1, 12);
  });

  it('exact match allows a continuation after a word boundary only', () => {
    expect(exactMatch(' 42\n', '42')).toBe(true);
    expect(exactMatch(' 42\nQuestion: next', '42')).toBe(true);
    expect(exactMatch('420', '42')).toBe(false);
    expect(exactMatch('41', '42')).toBe(false);
  });
});
