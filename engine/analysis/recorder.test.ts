import { appendFile, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { useTestBackend } from '../backends/testing.ts';
import { AnalysisRecorder } from './recorder.ts';
import { readAnalysis } from './store.ts';
import { fakeModel, fakeTlora } from './testing.ts';

let root: string;
beforeAll(async () => {
  await useTestBackend();
  root = await mkdtemp(join(tmpdir(), 'recorder-'));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

const modules = [
  { name: 'roberta.encoder.layer.0.attention.self.query', rows: 16, cols: 16 },
  { name: 'roberta.encoder.layer.0.attention.self.value', rows: 16, cols: 16 },
  { name: 'roberta.encoder.layer.1.attention.self.query', rows: 16, cols: 16 },
  { name: 'roberta.encoder.layer.1.attention.self.value', rows: 16, cols: 16 },
];

describe('AnalysisRecorder', () => {
  it('records rows every N steps and snapshots at checkpoints; readAnalysis builds layer × step heatmaps', async () => {
    const runDir = join(root, 'run-1');
    const model = fakeModel(modules);
    const instance = fakeTlora(model, 2, [1, 1, 1, 1]);
    const recorder = new AnalysisRecorder({ runDir, model, every: 5 });
    expect([0, 3, 5, 10].map((s) => recorder.shouldRecord(s))).toEqual([true, false, true, true]);
    // the trainer writes checkpoints/step-10 before recording: the recorder takes it as a checkpoint
    await mkdir(join(runDir, 'checkpoints', 'step-10'), { recursive: true });
    const before = tf.memory().numTensors;
    const written: string[] = [];
    for (const step of [0, 5, 10]) {
      // "training": α of layer 1's query grows with the step
      instance.set(`${modules[2].name}.lora_scaling`, Float32Array.of(1 + step / 10));
      written.push(await recorder.record(step, instance));
    }
    expect(written.map((p) => p.slice(runDir.length + 1))).toEqual([
      'analysis/timeseries.jsonl',
      'analysis/timeseries.jsonl',
      'analysis/snapshot-step-10.json',
    ]);
    expect(tf.memory().numTensors).toBe(before);
    expect(recorder.records).toBe(3);
    expect(recorder.elapsedMs).toBeGreaterThan(0);

    const data = await readAnalysis(runDir);
    expect(data.timeseries.map((r) => [r.step, r.trigger])).toEqual([
      [0, 'interval'],
      [5, 'interval'],
      [10, 'checkpoint'],
    ]);
    expect(data.snapshots).toEqual([{ step: 10, file: join(runDir, 'analysis', 'snapshot-step-10.json') }]);
    expect(data.latestSnapshot?.step).toBe(10);
    const scale = data.heatmaps.find(
      (h) => h.metric === 'scale' && h.role === 'roberta.encoder.layer.*.attention.self.query',
    )!;
    expect(scale.rows).toEqual(['0', '1']);
    expect(scale.steps).toEqual([0, 5, 10]);
    expect(scale.values).toEqual([
      [1, 1, 1],
      [1, 1.5, 2],
    ]);
    const norms = data.heatmaps.find((h) => h.metric === 'deltaFrobenius' && h.role.endsWith('value'))!;
    expect(norms.values[0][0]).toBeCloseTo(data.timeseries[0].modules[1].deltaFrobenius, 12);
    // TLoRA has no scaling vectors: that heatmap is left out rather than all-null
    expect(data.heatmaps.some((h) => h.metric === 'scalingVectors')).toBe(false);
    const maxScale = data.series.find((s) => s.metric === 'scale' && s.aggregate === 'max')!;
    expect(maxScale.values).toEqual([1, 1.5, 2]);
    instance.dispose();
    model.dispose();
  });

  it('skips a torn last line and names the file and line of a corrupt one', async () => {
    const runDir = join(root, 'run-2');
    const model = fakeModel(modules.slice(0, 1));
    const instance = fakeTlora(model, 2, [1]);
    const recorder = new AnalysisRecorder({ runDir, model, every: 1 });
    await recorder.record(1, instance);
    const file = join(runDir, 'analysis', 'timeseries.jsonl');
    await appendFile(file, '{"version":1,"kind":"times');
    expect((await readAnalysis(runDir)).timeseries).toHaveLength(1);
    const text = await readFile(file, 'utf8');
    await writeFile(file, `garbage\n${text}`);
    await expect(readAnalysis(runDir)).rejects.toThrow(/timeseries\.jsonl:1: invalid JSON/);
    await writeFile(file, `${JSON.stringify({ version: 99, kind: 'timeseries' })}\n`);
    await expect(readAnalysis(runDir)).rejects.toThrow(/timeseries\.jsonl:1: analysis format version 99/);
    instance.dispose();
    model.dispose();
  });

  it('gives empty data for a run without analysis', async () => {
    const data = await readAnalysis(join(root, 'nothing'));
    expect(data).toMatchObject({
      timeseries: [],
      heatmaps: [],
      snapshots: [],
      latestSnapshot: null,
      eigen: [],
    });
  });
});
