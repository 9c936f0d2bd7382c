import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { TrainEvent } from '../../common/train-events.ts';
import { createProject } from '../../project/store.ts';
import { readRunEvents } from '../../runs/index.ts';
import { startRun } from '../../training/run.ts';
import { gpuProbe } from './testing.ts';

const demo = new URL('../../../assets/demo/', import.meta.url).pathname;

/** The demo project on a slice of its data: LoRA on every linear module of the demo Llama (GQA, RoPE, SwiGLU). */
async function demoProject(): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), 'studio-webgpu-train-'));
  const slice = (file: string, n: number) => {
    const path = join(dir, file);
    const lines = readFileSync(join(demo, 'data', file), 'utf8')
      .split('\n')
      .filter(Boolean)
      .slice(0, n);
    writeFileSync(path, `${lines.join('\n')}\n`);
    return path;
  };
  await createProject(join(dir, 'p'), {
    model: join(demo, 'model'),
    task: 'causal-lm',
    data: { train: slice('train.jsonl', 24), validation: slice('validation.jsonl', 4) },
    method: { name: 'lora', config: { r: 8, loraAlpha: 16, targetModules: 'all-linear' } },
    training: {
      maxSteps: 4,
      batchSize: 4,
      maxSeqLen: 48,
      learningRate: 5e-3,
      evalEvery: 0,
      checkpointEvery: 0,
      exactMatchExamples: 0,
    },
  });
  return join(dir, 'p');
}

async function train(dir: string, backend: string): Promise<TrainEvent[]> {
  const handle = await startRun(dir, { backend });
  const summary = await handle.done;
  expect(summary.status).toBe('completed');
  return readRunEvents(summary.runDir);
}

const steps = (events: TrainEvent[]) => events.flatMap((e) => (e.type === 'step' ? [e] : []));

describe.skipIf(!gpuProbe.available)(`training on webgpu (${gpuProbe.reason})`, () => {
  it('`studio train --backend webgpu` on the demo project: the CPU (wasm) run’s losses and gradient norms', async () => {
    const dir = await demoProject();
    const cpu = steps(await train(dir, 'wasm'));
    const gpu = steps(await train(dir, 'webgpu'));
    expect(gpu.length).toBe(4);
    expect(cpu.length).toBe(4);
    for (let i = 0; i < cpu.length; i++) {
      expect(Math.abs(gpu[i].loss - cpu[i].loss) / cpu[i].loss).toBeLessThan(1e-4);
      expect(Math.abs(gpu[i].gradNorm - cpu[i].gradNorm) / cpu[i].gradNorm).toBeLessThan(1e-4);
    }
  });
});
