import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { useTestBackend } from '../backends/testing.ts';
import type { TrainEvent } from '../common/train-events.ts';
import { createProject } from '../project/store.ts';
import { listCheckpoints } from './checkpoint.ts';
import { loadRunAdapter, readRunEvents, resumeRun, startRun } from './run.ts';

const fixtures = new URL('../models/fixtures/', import.meta.url).pathname;

beforeAll(async () => {
  await useTestBackend();
});

function lmData(dir: string): string {
  const lines = Array.from({ length: 8 }, (_, i) =>
    JSON.stringify({ prompt: `count ${i}`, completion: ` to ${i + 1}` }),
  );
  const path = join(dir, 'train.jsonl');
  writeFileSync(path, `${lines.join('\n')}\n`);
  return path;
}

async function project(training: Record<string, unknown>): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), 'studio-run-'));
  await createProject(join(dir, 'p'), {
    model: join(fixtures, 'gpt2'),
    task: 'causal-lm',
    data: { train: lmData(dir), valFraction: 0.25 },
    method: { name: 'lora', config: { r: 4, loraAlpha: 8 } },
    training: {
      batchSize: 2,
      learningRate: 0.01,
      maxSeqLen: 16,
      exactMatchExamples: 2,
      maxNewTokens: 4,
      ...training,
    },
  });
  return join(dir, 'p');
}

const losses = (events: TrainEvent[]) => events.flatMap((e) => (e.type === 'step' ? [e.loss] : []));

describe('startRun / resumeRun', () => {
  it('trains, logs typed events, checkpoints, and reloads the adapter', async () => {
    const dir = await project({ maxSteps: 6, checkpointEvery: 2, keepCheckpoints: 2, evalEvery: 3 });
    const handle = await startRun(dir, { backend: 'current' });
    const seen: string[] = [];
    const tensorsAtStep: number[] = [];
    handle.on('event', (e) => {
      seen.push(e.type);
      if (e.type === 'step') tensorsAtStep.push(tf.memory().numTensors);
    });
    const summary = await handle.done;
    expect(summary.status).toBe('finished');
    expect(summary.step).toBe(6);
    expect(seen[0]).toBe('run-started');
    expect(seen.at(-1)).toBe('finished');
    expect(seen.filter((t) => t === 'eval').length).toBe(2);
    // Steps, evaluations with generation, checkpoints and analysis leave no tensor behind.
    expect(new Set(tensorsAtStep).size).toBe(1);
    expect(await listCheckpoints(summary.runDir)).toEqual([4, 6]);
    const events = await readRunEvents(summary.runDir);
    expect(events.map((e) => e.type)).toEqual(seen);
    const evals = events.filter((e) => e.type === 'eval');
    expect(Object.keys(evals[0].metrics).sort()).toEqual([
      'choiceAccuracy',
      'exactMatch',
      'loss',
      'perplexity',
    ]);
    const run = JSON.parse(readFileSync(join(summary.runDir, 'run.json'), 'utf8'));
    expect(run.status).toBe('finished');
    expect(run.config.training.maxSteps).toBe(6);

    const restored = await loadRunAdapter(summary.runDir);
    expect(restored.state.step).toBe(6);
    expect(restored.instance.trainable().length).toBeGreaterThan(0);
    restored.instance.dispose();
    restored.model.dispose();
  });

  it('cancel leaves a checkpoint, and resuming reproduces the uninterrupted losses', async () => {
    const settings = { maxSteps: 8, checkpointEvery: 100, evalEvery: 0, exactMatchExamples: 0 };
    const straight = await (await startRun(await project(settings), { backend: 'current', analysis: false }))
      .done;
    const reference = losses(await readRunEvents(straight.runDir));
    expect(reference.length).toBe(8);

    const before = tf.memory().numTensors;
    const handle = await startRun(await project(settings), { backend: 'current', analysis: false });
    handle.on('event', (e) => {
      if (e.type === 'step' && e.step === 3) handle.cancel();
    });
    const cancelled = await handle.done;
    expect(cancelled.status).toBe('cancelled');
    expect(cancelled.step).toBe(3);
    expect(await listCheckpoints(cancelled.runDir)).toEqual([3]);
    expect(tf.memory().numTensors).toBe(before);

    const resumed = await (await resumeRun(cancelled.runDir, { backend: 'current', analysis: false })).done;
    expect(resumed.status).toBe('finished');
    const got = losses(await readRunEvents(cancelled.runDir));
    expect(got.length).toBe(8);
    for (let i = 0; i < got.length; i++) expect(Math.abs(got[i] - reference[i])).toBeLessThanOrEqual(1e-6);
  });

  it('stops early when the watched metric stops improving', async () => {
    const dir = await project({
      maxSteps: 20,
      evalEvery: 1,
      exactMatchExamples: 0,
      earlyStoppingPatience: 2,
      earlyStoppingMinDelta: 1e9,
      checkpointEvery: 0,
    });
    const summary = await (await startRun(dir, { backend: 'current', analysis: false })).done;
    expect(summary.status).toBe('finished');
    expect(summary.reason).toBe('early-stopping');
    expect(summary.step).toBe(3);
    expect(await listCheckpoints(summary.runDir)).toEqual([3]);
  });

  it('pauses and resumes in the same process', async () => {
    const dir = await project({ maxSteps: 4, checkpointEvery: 0, exactMatchExamples: 0 });
    const handle = await startRun(dir, { backend: 'current', analysis: false });
    let second: Promise<unknown> | null = null;
    handle.on('event', (e) => {
      if (e.type === 'step' && e.step === 1) handle.pause();
      if (e.type === 'paused') {
        second = resumeRun(handle.runDir, { backend: 'current' });
        second.catch(() => undefined).finally(() => handle.resume());
      }
    });
    const summary = await handle.done;
    expect(summary.status).toBe('finished');
    const types = handle.history.map((e) => e.type);
    expect(types).toContain('paused');
    expect(types).toContain('resumed');
    await expect(second).rejects.toThrow(/the run is being trained by process \d+|no checkpoint/);
  });
});
