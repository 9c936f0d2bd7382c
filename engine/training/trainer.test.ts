import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { useTestBackend } from '../backends/testing.ts';
import { TrainingSettings } from '../common/project-schema.ts';
import type { EncodedExample } from '../data/tokenize.ts';
import { tinyAdapter, tinyModel } from './testing.ts';
import { Trainer, type TrainerSetup } from './trainer.ts';

beforeAll(async () => {
  await useTestBackend();
});

/** Sequences "a b a b …" (trained on everything after the first token). */
function lmData(n: number): EncodedExample[] {
  return Array.from({ length: n }, (_, i) => {
    const start = 3 + (i % 4);
    const ids = Array.from({ length: 4 + (i % 3) }, (_, t) => (t % 2 ? start + 4 : start));
    return {
      inputIds: ids,
      lossMask: ids.map((_, t) => (t === 0 ? 0 : 1)),
      file: 'f',
      line: i + 1,
      truncated: false,
    };
  });
}

function clsData(n: number): EncodedExample[] {
  return Array.from({ length: n }, (_, i) => {
    const label = i % 2;
    const ids = label ? [3, 4, 5] : [6, 7];
    return { inputIds: ids, lossMask: ids.map(() => 0), label, file: 'f', line: i + 1, truncated: false };
  });
}

function setup(task: 'causal-lm' | 'seq-cls', training: Record<string, unknown>, seed = 1): TrainerSetup {
  const model = tinyModel(task);
  const instance = tinyAdapter(model, seed, { dropout: 0.1 });
  const data = task === 'seq-cls' ? clsData(12) : lmData(12);
  return {
    model,
    instance,
    task,
    train: data,
    validation: data.slice(0, 4),
    settings: TrainingSettings.parse({ learningRate: 0.05, batchSize: 4, seed, ...training }),
    padTokenId: 0,
  };
}

function dispose(s: TrainerSetup, t: Trainer): void {
  t.dispose();
  s.instance.dispose();
  s.model.dispose();
}

describe('Trainer', () => {
  it.each(['causal-lm', 'seq-cls'] as const)('%s: loss goes down on a tiny overfit set', async (task) => {
    const s = setup(task, { maxSteps: 40, schedule: 'constant' });
    const t = new Trainer(s);
    const before = (await t.evaluate(s.train)).loss;
    for (let i = 0; i < 40; i++) await t.step();
    const after = await t.evaluate(s.train);
    expect(after.loss).toBeLessThan(before * 0.7);
    if (task === 'seq-cls') {
      expect(after.accuracy).toBe(1);
      expect(after.f1).toBe(1);
    } else {
      expect(after.perplexity).toBeCloseTo(Math.exp(after.loss), 6);
    }
    dispose(s, t);
  });

  it('keeps tf.memory().numTensors flat over many steps and evaluations', async () => {
    const s = setup('causal-lm', { maxSteps: 60, gradAccumSteps: 2 });
    const t = new Trainer(s);
    await t.step();
    await t.evaluate();
    const base = tf.memory().numTensors;
    for (let i = 0; i < 30; i++) {
      await t.step();
      if (i % 10 === 0) await t.evaluate();
    }
    expect(tf.memory().numTensors).toBe(base);
    dispose(s, t);
  });

  it('accumulating 2 micro-batches of 2 equals one batch of 4 (token-weighted mean)', async () => {
    const a = setup('causal-lm', { batchSize: 4, shuffle: false, maxSteps: 3, learningRate: 0.01 });
    const b = setup('causal-lm', {
      batchSize: 2,
      gradAccumSteps: 2,
      shuffle: false,
      maxSteps: 3,
      learningRate: 0.01,
    });
    a.instance.dispose();
    b.instance.dispose();
    a.instance = tinyAdapter(a.model, 1);
    b.instance = tinyAdapter(b.model, 1);
    const ta = new Trainer(a);
    const tb = new Trainer(b);
    for (let i = 0; i < 3; i++) {
      const ra = await ta.step();
      const rb = await tb.step();
      expect(rb.loss).toBeCloseTo(ra.loss, 5);
      expect(rb.gradNorm).toBeCloseTo(ra.gradNorm, 5);
    }
    const pa = a.instance.trainable()[1].variable.dataSync();
    const pb = b.instance.trainable()[1].variable.dataSync();
    for (let i = 0; i < pa.length; i++) expect(pb[i]).toBeCloseTo(pa[i], 5);
    dispose(a, ta);
    dispose(b, tb);
  });

  it('reproduces the same losses after restoring state, adapter and optimizer', async () => {
    const run = async (stopAt: number | null) => {
      const s = setup('causal-lm', { maxSteps: 10 });
      const t = new Trainer(s);
      const losses: number[] = [];
      for (let i = 0; i < 10; i++) {
        if (stopAt !== null && i === stopAt) {
          const adapter = s.instance.state();
          const opt = t.optimizer.state();
          const optTensors = Object.fromEntries(Object.entries(opt.tensors).map(([k, v]) => [k, v.clone()]));
          const state = structuredClone(t.state);
          dispose(s, t);
          const s2 = setup('causal-lm', { maxSteps: 10 });
          s2.instance.loadState(adapter);
          const t2 = new Trainer(s2);
          t2.optimizer.loadState({ step: opt.step, tensors: optTensors });
          t2.restore(state);
          tf.dispose([...Object.values(adapter), ...Object.values(optTensors)]);
          for (let j = i; j < 10; j++) losses.push((await t2.step()).loss);
          dispose(s2, t2);
          return losses;
        }
        losses.push((await t.step()).loss);
      }
      dispose(s, t);
      return losses;
    };
    const straight = await run(null);
    expect(await run(4)).toEqual(straight);
  });

  it('skips a non-finite step, counts it, and recovers', async () => {
    const s = setup('causal-lm', { maxSteps: 5 });
    const t = new Trainer(s);
    const forward = s.model.forward;
    let poison = true;
    (s.model as { forward: typeof forward }).forward = (batch, ctx) =>
      tf.tidy(() => {
        const out = forward(batch, ctx);
        return poison ? tf.mul(out, Number.NaN) : out;
      });
    const before = s.instance.trainable()[0].variable.dataSync().slice();
    const r = await t.step();
    expect(r.skipped).toBe(true);
    expect(t.state.nonFiniteInARow).toBe(1);
    expect(s.instance.trainable()[0].variable.dataSync()).toEqual(before);
    poison = false;
    expect((await t.step()).skipped).toBe(false);
    expect(t.state.nonFiniteInARow).toBe(0);
    dispose(s, t);
  });

  it('signals early stopping after `patience` evaluations without improvement', () => {
    const s = setup('seq-cls', { earlyStoppingPatience: 2, earlyStoppingMetric: 'accuracy' });
    const t = new Trainer(s);
    expect(t.observeEval({ accuracy: 0.5 })).toBe(false);
    expect(t.observeEval({ accuracy: 0.5 })).toBe(false);
    expect(t.observeEval({ accuracy: 0.7 })).toBe(false);
    expect(t.observeEval({ accuracy: 0.6 })).toBe(false);
    expect(t.observeEval({ accuracy: 0.7 })).toBe(true);
    dispose(s, t);
  });
});
