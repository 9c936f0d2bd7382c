import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { useTestBackend } from '../backends/testing.ts';
import { eigenvalues } from '../linalg/eig.ts';
import { matrix } from '../linalg/index.ts';
import {
  EigCancelledError,
  type EigenJob,
  eigenMatrices,
  estimateEigenCost,
  startEigenJob,
} from './eigen.ts';
import { fakeLora, fakeModel, seededValues } from './testing.ts';

let dir: string;
beforeAll(async () => {
  await useTestBackend();
  dir = await mkdtemp(join(tmpdir(), 'eigen-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

function randomSquare(n: number, seed: number) {
  return matrix(n, n, seededValues(n * n, seed));
}

describe('eigenvalue jobs', () => {
  it('estimates the cost before starting', () => {
    const cost = estimateEigenCost(1000);
    expect(cost.n).toBe(1000);
    expect(cost.flops).toBe(1e10);
    expect(cost.seconds).toBeGreaterThan(0);
  });

  it('computes in a worker thread with progress, then serves identical content from the cache', async () => {
    const m = randomSquare(60, 4);
    const seen: number[] = [];
    const job = startEigenJob(
      { module: 'q', which: 'adapted', matrix: m },
      { cacheDir: dir, onProgress: (f) => seen.push(f) },
    );
    expect(job.cost.n).toBe(60);
    const result = await job.done;
    const direct = eigenvalues(m);
    expect(result.re).toEqual(Array.from(direct.re));
    expect(result.im).toEqual(Array.from(direct.im));
    expect(seen.at(-1)).toBe(1);
    expect(job.progress).toBe(1);
    expect(result.summary.positiveReal + result.summary.negativeReal).toBe(60);
    expect(result.summary.spectralRadius).toBeCloseTo(
      Math.max(...result.re.map((r, i) => Math.hypot(r, result.im[i]))),
      14,
    );
    expect(await readdir(dir)).toEqual([`${result.hash}.json`]);
    const again = startEigenJob(
      { module: 'other', which: 'base', matrix: matrix(60, 60, m.data) },
      { cacheDir: dir },
    );
    const cached = await again.done;
    expect(cached).toMatchObject({ module: 'other', which: 'base', hash: result.hash, re: result.re });
  });

  it('cancels a running job', async () => {
    // cancelled on its first progress message: the worker's messages arrive in order, so the cancel settles
    // the job before its result could, however fast the machine
    let job: EigenJob | null = null;
    job = startEigenJob(
      { module: 'big', which: 'base', matrix: randomSquare(200, 9) },
      { onProgress: (fraction) => fraction < 1 && job?.cancel() },
    );
    await expect(job.done).rejects.toBeInstanceOf(EigCancelledError);
  });

  it('builds W0 and W0 + ΔW of a square module and refuses non-square ones', async () => {
    const model = fakeModel([
      { name: 'q', rows: 12, cols: 12 },
      { name: 'up', rows: 20, cols: 12 },
    ]);
    const instance = fakeLora(model, 2);
    const { base, adapted } = await eigenMatrices(instance, model, 'q');
    const w0 = model.layers.get('q')!.weight.float32();
    const delta = instance.layers.get('q')!.deltaWeight();
    const d = delta.dataSync();
    delta.dispose();
    for (let i = 0; i < 144; i++) {
      expect(base.data[i]).toBe(w0[i]);
      expect(adapted.data[i]).toBeCloseTo(w0[i] + d[i], 6);
    }
    await expect(eigenMatrices(instance, model, 'up')).rejects.toThrow(/square weight; up is 20 × 12/);
    instance.dispose();
    model.dispose();
  });
});
