import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { compareRuns, readAnalysis, runRecorder } from '../../analysis/index.ts';
import { useTestBackend } from '../../backends/testing.ts';
import { createProject } from '../../project/store.ts';
import { loadRunAdapter } from '../../runs/index.ts';
import { startRun } from '../../training/index.ts';
import { main } from '../main.ts';

const fixtures = new URL('../../models/fixtures/', import.meta.url).pathname;

beforeAll(async () => {
  await useTestBackend();
});

async function trainedRun(root: string, name: string, r: number, seed: number): Promise<string> {
  const data = join(root, `${name}.jsonl`);
  const lines = Array.from({ length: 8 }, (_, i) =>
    JSON.stringify({ prompt: `count ${i}`, completion: ` to ${i + 1}` }),
  );
  writeFileSync(data, `${lines.join('\n')}\n`);
  await createProject(join(root, name), {
    model: join(fixtures, 'gpt2'),
    task: 'causal-lm',
    data: { train: data, valFraction: 0 },
    method: { name: 'lora', config: { r, loraAlpha: 2 * r, targetModules: ['c_attn', 'attn.c_proj'] } },
    training: {
      batchSize: 2,
      learningRate: 0.05,
      maxSeqLen: 16,
      maxSteps: 4,
      checkpointEvery: 2,
      evalEvery: 0,
      analysisEvery: 1,
      exactMatchExamples: 0,
      seed,
    },
  });
  const summary = await (await startRun(join(root, name), { backend: 'current', recorder: runRecorder }))
    .done;
  expect(summary.status).toBe('completed');
  return summary.runDir;
}

function capture() {
  const out: string[] = [];
  const err: string[] = [];
  return { io: { out: (t: string) => out.push(t), err: (t: string) => err.push(t), isTTY: false }, out, err };
}

describe('studio analyze', () => {
  it('writes a snapshot, a comparison and eigenvalues for a trained run, with a text summary', async () => {
    const root = mkdtempSync(join(tmpdir(), 'studio-analyze-'));
    const runA = await trainedRun(root, 'a', 4, 1);
    const runB = await trainedRun(root, 'b', 2, 2);
    const module = 'transformer.h.1.attn.c_proj';

    const text = capture();
    expect(await main(['analyze', runA, '--module', module, '--backend', 'current'], text.io)).toBe(0);
    const printed = text.out.join('\n');
    expect(printed).toMatch(/Top modules by ‖ΔW‖_F:/);
    expect(printed).toContain(`Module ${module} (16 × 16):`);
    expect(printed).toMatch(/spectrum \(low-rank\)/);

    const json = capture();
    expect(
      await main(
        ['analyze', runA, '--compare', runB, '--module', module, '--eigen', '--json', '--backend', 'current'],
        json.io,
      ),
    ).toBe(0);
    const report = JSON.parse(json.out.join('\n'));
    expect(report.summary.topModules).toHaveLength(4);
    expect(report.summary.method).toBe('lora');
    expect(report.module.module).toBe(module);
    expect(report.module.scaling).toMatchObject({ scale: 2, kind: 'fixed' });
    expect(report.comparison.modules).toHaveLength(4);
    expect(report.comparison.difference).toMatchObject({ module, rows: 16, cols: 16 });
    expect(report.comparison.budget.fullFineTuning).toBeGreaterThan(report.comparison.budget.a);
    expect(report.eigen.map((e: { which: string }) => e.which)).toEqual(['base', 'adapted']);
    expect(json.err.join('\n')).toMatch(/eigenvalues at transformer\.h\.1\.attn\.c_proj: n = 16/);
    for (const f of report.files) expect(existsSync(f)).toBe(true);

    // the library entry point, the other way round: symmetric measures agree
    const { comparison, path } = await compareRuns(runB, runA, { module, write: true });
    expect(path).toBe(join(runB, 'analysis', `compare-${basename(runA)}.json`));
    comparison.modules.forEach((m, i) => {
      expect(m.cosineDelta).toBeCloseTo(report.comparison.modules[i].cosineDelta, 10);
      expect(m.differenceFrobenius).toBeCloseTo(report.comparison.modules[i].differenceFrobenius, 10);
    });
    // a side already in memory is compared as it is and left to its owner; the side loaded here is freed
    const loadedB = await loadRunAdapter(runB);
    const tensors = tf.memory().numTensors;
    const again = await compareRuns(loadedB, runA, { module });
    expect(again.path).toBeNull();
    expect(again.comparison.modules.map((m) => m.cosineDelta)).toEqual(
      comparison.modules.map((m) => m.cosineDelta),
    );
    expect(tf.memory().numTensors).toBe(tensors);
    expect(loadedB.instance.trainable()[0].variable.isDisposed).toBe(false);
    loadedB.instance.dispose();
    loadedB.model.dispose();

    const data = await readAnalysis(runA);
    // the trainer recorded every step (0 is not a step: the first optimizer step is 1)
    expect(data.timeseries.map((r) => r.step)).toEqual(expect.arrayContaining([1, 2, 3, 4]));
    expect(data.snapshots.map((s) => s.step)).toContain(4);
    expect(data.comparisons).toHaveLength(1);
    expect(data.eigen).toHaveLength(2);
    const heat = data.heatmaps.find(
      (h) => h.metric === 'deltaFrobenius' && h.role === 'transformer.h.*.attn.c_attn',
    )!;
    expect(heat.rows).toEqual(['0', '1']);
    expect(JSON.parse(readFileSync(join(runA, 'analysis', 'snapshot-step-4.json'), 'utf8')).version).toBe(1);
  });

  it('names an unknown module', async () => {
    const root = mkdtempSync(join(tmpdir(), 'studio-analyze-'));
    const run = await trainedRun(root, 'c', 2, 3);
    const c = capture();
    expect(await main(['analyze', run, '--module', 'nope', '--backend', 'current'], c.io)).toBe(1);
    expect(c.err.join('\n')).toMatch(
      /module "nope" is not adapted in this run \(modules: transformer\.h\.0\.attn\.c_attn/,
    );
  });
});
