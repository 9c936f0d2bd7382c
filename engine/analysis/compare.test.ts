import type * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { useTestBackend } from '../backends/testing.ts';
import { matmul, matrix, qr, svd } from '../linalg/index.ts';
import { compareAdapters, downsample, subspaceSimilarity } from './compare.ts';
import { fakeLora, fakeModel, seededValues } from './testing.ts';

beforeAll(async () => {
  await useTestBackend();
});

const modules = [
  { name: 'layers.0.q', rows: 20, cols: 14 },
  { name: 'layers.1.q', rows: 20, cols: 14 },
];

function flat(t: tf.Tensor): number[] {
  const d = Array.from(t.dataSync());
  t.dispose();
  return d;
}

function cosine(x: number[], y: number[]): number {
  let xy = 0;
  let xx = 0;
  let yy = 0;
  x.forEach((v, i) => {
    xy += v * y[i];
    xx += v * v;
    yy += y[i] * y[i];
  });
  return xy / Math.sqrt(xx * yy);
}

describe('compareAdapters', () => {
  it('matches direct cosines and difference norms of ΔW and W0 + ΔW', async () => {
    const model = fakeModel(modules, 2, 5000);
    const a = fakeLora(model, 3, 6, 100, 'a');
    const b = fakeLora(model, 2, 4, 200, 'b');
    const cmp = await compareAdapters(
      { instance: a, model, dir: 'runA', step: 10 },
      { instance: b, model, dir: 'runB' },
    );
    expect(cmp.modules.map((m) => m.module)).toEqual(['layers.0.q', 'layers.1.q']);
    for (const m of cmp.modules) {
      const w0 = flat(model.layers.get(m.module)!.weight.toTensor());
      const x = flat(a.layers.get(m.module)!.deltaWeight());
      const y = flat(b.layers.get(m.module)!.deltaWeight());
      expect(m.cosineDelta).toBeCloseTo(cosine(x, y), 5);
      expect(m.cosineAdapted).toBeCloseTo(
        cosine(
          w0.map((w, i) => w + x[i]),
          w0.map((w, i) => w + y[i]),
        ),
        5,
      );
      expect(m.differenceFrobenius).toBeCloseTo(Math.sqrt(x.reduce((s, v, i) => s + (v - y[i]) ** 2, 0)), 5);
      expect(m.subspace!.left.k).toBe(2);
    }
    expect(cmp.a).toMatchObject({ dir: 'runA', step: 10, trainable: 2 * (3 * 14 + 20 * 3), method: 'lora' });
    expect(cmp.budget).toEqual({ a: 2 * (3 * 14 + 20 * 3), b: 2 * (2 * 14 + 20 * 2), fullFineTuning: 5000 });
    expect(cmp.difference).toMatchObject({
      module: 'layers.0.q',
      sourceRows: 20,
      sourceCols: 14,
      rows: 20,
      cols: 14,
    });
    a.dispose();
    b.dispose();
    model.dispose();
  });

  it('gives cosine 1, zero difference and identical subspaces for the same adapter, −1 for its negation', async () => {
    const model = fakeModel(modules.slice(0, 1));
    const a = fakeLora(model, 3, 6, 100, 'a');
    const same = fakeLora(model, 3, 6, 100, 'same');
    const neg = fakeLora(model, 3, 6, 100, 'neg');
    const key = 'layers.0.q.lora_B';
    neg.set(
      key,
      Float32Array.from(neg.tensors.find((t) => t.key === key)!.variable.dataSync(), (v) => -v),
    );
    const s = await compareAdapters({ instance: a, model, dir: 'a' }, { instance: same, model, dir: 's' });
    expect(s.modules[0].cosineDelta).toBeCloseTo(1, 10);
    expect(s.modules[0].differenceFrobenius).toBe(0);
    expect(s.modules[0].subspace!.left.similarity).toBeCloseTo(1, 10);
    s.modules[0].subspace!.right.cosines.forEach((c) => {
      expect(c).toBeCloseTo(1, 10);
    });
    const n = await compareAdapters({ instance: a, model, dir: 'a' }, { instance: neg, model, dir: 'n' });
    expect(n.modules[0].cosineDelta).toBeCloseTo(-1, 10);
    for (const x of [a, same, neg]) x.dispose();
    model.dispose();
  });

  it('refuses runs whose base weights differ, and unknown modules', async () => {
    const m1 = fakeModel(modules, 1);
    const m2 = fakeModel(modules, 2);
    const a = fakeLora(m1, 2);
    const b = fakeLora(m2, 2);
    await expect(
      compareAdapters({ instance: a, model: m1, dir: 'x' }, { instance: b, model: m2, dir: 'y' }),
    ).rejects.toThrow(/do not share a base weight at layers\.0\.q/);
    await expect(
      compareAdapters(
        { instance: a, model: m1, dir: 'x' },
        { instance: a, model: m1, dir: 'x' },
        { module: 'nope' },
      ),
    ).rejects.toThrow(/module "nope" is not adapted in both runs/);
    for (const x of [a, b, m1, m2]) x.dispose();
  });
});

describe('subspaceSimilarity', () => {
  it('equals the singular values of QaᵀQb for orthonormal bases from QR (principal angles)', () => {
    const x = matrix(12, 3, seededValues(36, 1));
    const y = matrix(12, 3, seededValues(36, 2));
    const qa = qr(x).q;
    const qb = qr(y).q;
    const ref = svd(
      matmul(
        {
          rows: 3,
          cols: 12,
          data: Float64Array.from({ length: 36 }, (_, i) => qa.data[(i % 12) * 3 + Math.floor(i / 12)]),
        },
        qb,
      ),
    ).s;
    const got = subspaceSimilarity(qa, qb);
    got.cosines.forEach((c, i) => {
      expect(c).toBeCloseTo(ref[i], 12);
    });
    expect(got.similarity).toBeCloseTo(ref.reduce((s, c) => s + c * c, 0) / 3, 12);
    // the same column space in a different basis: all angles zero
    const mixed = qr(matmul(x, matrix(3, 3, [2, 1, 0, 0, 1, 3, 1, 0, 1]))).q;
    expect(subspaceSimilarity(qa, mixed).similarity).toBeCloseTo(1, 12);
  });
});

describe('downsample', () => {
  it('averages blocks', () => {
    const m = matrix(
      4,
      6,
      Array.from({ length: 24 }, (_, i) => i),
    );
    const d = downsample('m', m, 2);
    // rows {0,1} × cols {0,1,2}: (0+1+2+6+7+8)/6 = 4, and so on
    expect(d.values).toEqual([4, 7, 16, 19]);
    expect([d.rows, d.cols, d.maxAbs]).toEqual([2, 2, 23]);
  });
});
