import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { runRecorder } from '../analysis/index.ts';
import { useTestBackend } from '../backends/testing.ts';
import { runCli } from '../cli/testing.ts';
import type { TrainEvent } from '../common/train-events.ts';
import { nodeWriteFs, setWriteFs } from '../io/fs.ts';
import { TestDisk } from '../io/testing.ts';
import { createProject } from '../project/store.ts';
import { listCheckpoints, loadRunAdapter, readRunEvents } from '../runs/index.ts';
import { openSafetensors, type TensorData, writeSafetensors } from '../safetensors/index.ts';
import { resumeRun, startRun } from './run.ts';

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
    const handle = await startRun(dir, { backend: 'current', recorder: runRecorder });
    const seen: string[] = [];
    const tensorsAtStep: number[] = [];
    handle.on('event', (e) => {
      seen.push(e.type);
      if (e.type === 'step') tensorsAtStep.push(tf.memory().numTensors);
    });
    const summary = await handle.done;
    expect(summary.status).toBe('completed');
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
    expect(run.status).toBe('completed');
    expect(run.config.training.maxSteps).toBe(6);

    const restored = await loadRunAdapter(summary.runDir);
    expect(restored.state.step).toBe(6);
    expect(restored.instance.trainable().length).toBeGreaterThan(0);
    restored.instance.dispose();
    restored.model.dispose();
  });

  it('cancel leaves a checkpoint, and resuming reproduces the uninterrupted losses', async () => {
    const settings = { maxSteps: 8, checkpointEvery: 100, evalEvery: 0, exactMatchExamples: 0 };
    const straight = await (await startRun(await project(settings), { backend: 'current' })).done;
    const reference = losses(await readRunEvents(straight.runDir));
    expect(reference.length).toBe(8);

    const before = tf.memory().numTensors;
    const handle = await startRun(await project(settings), { backend: 'current' });
    handle.on('event', (e) => {
      if (e.type === 'step' && e.step === 3) handle.cancel();
    });
    const cancelled = await handle.done;
    expect(cancelled.status).toBe('cancelled');
    expect(cancelled.step).toBe(3);
    expect(await listCheckpoints(cancelled.runDir)).toEqual([3]);
    expect(tf.memory().numTensors).toBe(before);

    const resumed = await (await resumeRun(cancelled.runDir, { backend: 'current' })).done;
    expect(resumed.status).toBe('completed');
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
    const summary = await (await startRun(dir, { backend: 'current' })).done;
    expect(summary.status).toBe('completed');
    expect(summary.reason).toBe('early-stopping');
    expect(summary.step).toBe(3);
    expect(await listCheckpoints(summary.runDir)).toEqual([3]);
  });

  it('pauses and resumes in the same process', async () => {
    const dir = await project({ maxSteps: 4, checkpointEvery: 0, exactMatchExamples: 0 });
    const handle = await startRun(dir, { backend: 'current', recorder: runRecorder });
    let second: Promise<unknown> | null = null;
    handle.on('event', (e) => {
      if (e.type === 'step' && e.step === 1) handle.pause();
      if (e.type === 'paused') {
        second = resumeRun(handle.runDir, { backend: 'current' });
        second.catch(() => undefined).finally(() => handle.resume());
      }
    });
    const summary = await handle.done;
    expect(summary.status).toBe('completed');
    const types = handle.history.map((e) => e.type);
    expect(types).toContain('paused');
    expect(types).toContain('resumed');
    await expect(second).rejects.toThrow(
      `${handle.runDir}: run ${handle.runId} is being trained by process ${process.pid}`,
    );
  });

  it('refuses to resume or load a checkpoint holding NaN, naming the tensor and the file', async () => {
    const dir = await project({ maxSteps: 2, checkpointEvery: 2, evalEvery: 0, exactMatchExamples: 0 });
    const { runDir } = await (await startRun(dir, { backend: 'current' })).done;
    const file = join(runDir, 'checkpoints', 'step-2', 'adapter.safetensors');
    const source = await openSafetensors(file);
    const tensors: Record<string, TensorData> = {};
    for (const key of source.keys())
      tensors[key] = { dtype: 'F32', shape: source.info(key).shape, data: await source.readFloat32(key) };
    await source.close();
    const name = Object.keys(tensors).sort()[1];
    (tensors[name].data as Float32Array)[5] = Number.NaN;
    await writeSafetensors(file, tensors, { format: 'studio-native' });
    const refusal = `${file}: tensor "${name}" holds a non-finite value (NaN at index 5`;
    const before = tf.memory().numTensors;
    await expect(resumeRun(runDir, { backend: 'current', maxSteps: 4 })).rejects.toThrow(refusal);
    await expect(loadRunAdapter(runDir)).rejects.toThrow(refusal);
    expect(tf.memory().numTensors).toBe(before);
  });

  it('a run whose final loss is not finite ends failed, and studio train exits non-zero', async () => {
    // a learning rate this large sends the weights to ~1e30 after one step; the next loss overflows
    const settings = {
      maxSteps: 3,
      learningRate: 1e30,
      checkpointEvery: 0,
      evalEvery: 0,
      exactMatchExamples: 0,
    };
    const summary = await (await startRun(await project(settings), { backend: 'current' })).done;
    expect(summary.status).toBe('failed');
    expect(summary.error).toMatch(/^the training loss of the last step \(3\) is NaN: the run diverged/);
    const record = JSON.parse(readFileSync(join(summary.runDir, 'run.json'), 'utf8'));
    expect(record).toMatchObject({ status: 'failed', error: summary.error });
    const cli = await runCli(['train', await project(settings), '--backend', 'current', '--no-analysis']);
    expect(cli.code).toBe(1);
    expect(cli.err).toMatch(/error @3: the training loss of the last step \(3\) is NaN/);
  });
});

describe('runs on a full or filling disk, and the durable log', () => {
  let restore: (() => void) | null = null;
  afterEach(() => {
    restore?.();
    restore = null;
  });
  const settings = { maxSteps: 6, checkpointEvery: 2, evalEvery: 0, exactMatchExamples: 0 };

  /** Every line of the run's metrics.jsonl parsed strictly: a torn line fails here. */
  const strictEvents = (runDir: string) =>
    readFileSync(join(runDir, 'metrics.jsonl'), 'utf8')
      .split('\n')
      .filter((l) => l !== '')
      .map((l) => JSON.parse(l) as TrainEvent);

  it('each step is on disk, flushed, before its listeners hear of it and before the next step', async () => {
    const dir = await project(settings);
    const synced: string[] = [];
    restore = setWriteFs({
      ...nodeWriteFs,
      async open(path, flags) {
        const handle = await nodeWriteFs.open(path, flags);
        if (!path.endsWith('metrics.jsonl')) return handle;
        return new Proxy(handle, {
          get(target, prop) {
            const value = Reflect.get(target, prop, target);
            if (typeof value !== 'function') return value;
            return (...args: unknown[]) => {
              if (prop === 'write' || prop === 'datasync' || prop === 'sync') synced.push(String(prop));
              return value.apply(target, args);
            };
          },
        });
      },
    });
    const handle = await startRun(dir, { backend: 'current' });
    const seen: number[] = [];
    handle.on('event', (e) => {
      if (e.type !== 'step') return;
      const logged = strictEvents(handle.runDir).at(-1);
      expect(logged).toMatchObject({ type: 'step', step: e.step });
      expect(synced.at(-1)).toMatch(/sync/);
      seen.push(e.step);
    });
    expect((await handle.done).status).toBe('completed');
    expect(seen).toEqual([1, 2, 3, 4, 5, 6]);
  });

  /** A run on a disk that has `free` bytes left once step `step` is logged. */
  async function fillingDisk(step: number, free: number) {
    const dir = await project(settings);
    const disk = new TestDisk(10_000_000);
    restore = setWriteFs(disk);
    const handle = await startRun(dir, { backend: 'current' });
    handle.on('event', (e) => {
      if (e.type === 'step' && e.step === step) disk.free = free;
    });
    return handle.done;
  }

  it('a disk that fills mid-run: run.json says failed with the reason, metrics.jsonl has no torn line', async () => {
    const summary = await fillingDisk(3, 40);
    expect(summary.status).toBe('failed');
    const metrics = join(summary.runDir, 'metrics.jsonl');
    expect(summary.error).toMatch(
      new RegExp(`^${metrics}: no space left on device: writing it needs \\d+ B, 40 B free`),
    );
    const record = JSON.parse(readFileSync(join(summary.runDir, 'run.json'), 'utf8'));
    expect(record).toMatchObject({ status: 'failed', error: summary.error, step: 4 });
    const events = strictEvents(summary.runDir);
    expect(events.filter((e) => e.type === 'step').map((e) => e.step)).toEqual([1, 2, 3]);
    expect(events.at(-1)).toMatchObject({ type: 'error', message: summary.error });
    expect(readdirSync(summary.runDir).sort()).toEqual([
      'analysis',
      'checkpoints',
      'exports',
      'metrics.jsonl',
      'run.json',
    ]);
  });

  it('a disk that fills while a checkpoint is written names the checkpoint file and leaves no half folder', async () => {
    const summary = await fillingDisk(4, 2000);
    const file = join(summary.runDir, 'checkpoints', 'step-4', 'adapter.safetensors');
    expect(summary.error).toMatch(
      new RegExp(`^${file}: no space left on device: writing it needs [\\d.]+ KiB`),
    );
    expect(JSON.parse(readFileSync(join(summary.runDir, 'run.json'), 'utf8')).status).toBe('failed');
    expect(readdirSync(join(summary.runDir, 'checkpoints'))).toEqual(['step-2']);
  });

  it('a disk full at start leaves no half run folder', async () => {
    const dir = await project(settings);
    // nothing fits; the lock fits; the lock and the held-back space fit, run.json does not
    for (const free of [0, 100, 66_000]) {
      restore = setWriteFs(new TestDisk(free));
      await expect(startRun(dir, { backend: 'current' }), `${free} B free`).rejects.toThrow(
        /: no space left on device/,
      );
      restore();
      restore = null;
      expect(readdirSync(join(dir, 'runs')), `${free} B free`).toEqual([]);
    }
  });
});
