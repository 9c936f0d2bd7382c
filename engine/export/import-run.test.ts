import { promises as fs } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { useTestBackend } from '../backends/testing.ts';
import { runCli } from '../cli/testing.ts';
import { listRuns, readRunRecord } from '../project/store.ts';
import { listCheckpoints, readRunEvents } from '../runs/index.ts';
import { HANDOFF_RUN, importExternalRun, TRAINER_STATE } from './import-run.ts';
import { ADAPTER_CONFIG, ADAPTER_WEIGHTS } from './peft.ts';
import { PEFT_FIXTURES } from './peft-testing.ts';

/**
 * `studio import-run` on job folders laid out as transformers' Trainer leaves them, around PEFT-made adapters
 * (fixtures/peft): the curve from the log history or metrics.jsonl, the checkpoints, the origin, and the
 * refusals that name the file. The real two-process job is engine/handoff/run-elsewhere.test.ts.
 */
let work: string;
let project: string;

const logHistory = [
  { epoch: 0.5, grad_norm: 1.5, learning_rate: 0.01, loss: 3.0, step: 1 },
  { epoch: 1.0, grad_norm: 1.2, learning_rate: 0.008, loss: 2.5, step: 2 },
  { epoch: 1.0, eval_loss: 2.4, eval_runtime: 0.1, step: 2 },
  { epoch: 1.5, grad_norm: 1.0, learning_rate: 0.006, loss: 2.1, step: 3 },
  { epoch: 2.0, grad_norm: 0.9, learning_rate: 0.004, loss: 1.8, step: 4 },
  { epoch: 2.0, step: 4, train_loss: 2.35, train_runtime: 12.5 },
];

/** A finished job's output folder: the final adapter, checkpoint-2 and checkpoint-4, trainer_state.json. */
async function jobFolder(name: string, adapter = 'llama-lora'): Promise<string> {
  const out = join(work, name, 'output');
  for (const dir of [out, join(out, 'checkpoint-2'), join(out, 'checkpoint-4')]) {
    await fs.mkdir(dir, { recursive: true });
    for (const file of [ADAPTER_CONFIG, ADAPTER_WEIGHTS])
      await fs.copyFile(join(PEFT_FIXTURES, adapter, file), join(dir, file));
  }
  await fs.writeFile(
    join(out, TRAINER_STATE),
    JSON.stringify({ global_step: 4, max_steps: 4, log_history: logHistory }, null, 2),
  );
  return join(work, name);
}

beforeAll(async () => {
  await useTestBackend();
  work = await fs.mkdtemp(join(tmpdir(), 'studio-import-run-'));
  await fs.writeFile(
    join(work, 'data.jsonl'),
    ['red', 'green', 'blue', 'gold']
      .map((c) => JSON.stringify({ prompt: 'sky is', completion: ` ${c}` }))
      .join('\n'),
  );
  project = join(work, 'project');
  const init = await runCli([
    'init',
    project,
    '--model',
    join(PEFT_FIXTURES, 'llama'),
    '--data',
    join(work, 'data.jsonl'),
    '--max-steps',
    '3',
  ]);
  expect(init.err, init.out).toBe('');
});

afterAll(async () => {
  await fs.rm(work, { recursive: true, force: true });
});

describe('importExternalRun', () => {
  test('a job without metrics.jsonl: the curve from the log history, every checkpoint, no host', async () => {
    const job = await jobFolder('plain');
    const result = await importExternalRun(job, project);
    expect(result).toMatchObject({ method: 'lora', step: 4, checkpoints: [2, 4], steps: 4 });
    expect(await listCheckpoints(result.runDir)).toEqual([2, 4]);
    const record = await readRunRecord(result.runDir);
    expect(record).toMatchObject({ status: 'completed', step: 4, totalSteps: 4, trainSeconds: 12.5 });
    expect(record.origin).toEqual({
      kind: 'imported-run',
      source: join(job, 'output'),
      importedAt: record.createdAt,
    });
    expect(record.finalMetrics).toEqual({ loss: 2.4, runtime: 0.1 });
    const events = await readRunEvents(result.runDir);
    expect(events.filter((e) => e.type === 'step').map((e) => [e.step, e.loss, e.lr, e.gradNorm])).toEqual([
      [1, 3.0, 0.01, 1.5],
      [2, 2.5, 0.008, 1.2],
      [3, 2.1, 0.006, 1.0],
      [4, 1.8, 0.004, 0.9],
    ]);
    expect(events[0]).toMatchObject({
      type: 'run-started',
      runId: result.runId,
      totalSteps: 4,
      method: 'lora',
    });
    const analysis = await fs.readFile(join(result.runDir, 'analysis', 'timeseries.jsonl'), 'utf8');
    expect(
      analysis
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l).step),
    ).toEqual([2, 4]);
  });

  test("metrics.jsonl and handoff-run.json: the job's own events, where it ran", async () => {
    const job = await jobFolder('described');
    const out = join(job, 'output');
    await fs.writeFile(
      join(out, HANDOFF_RUN),
      JSON.stringify({ host: 'node-7', strategy: 'fsdp', processes: 16, device: 'cuda' }),
    );
    const time = '2026-12-01T10:00:00.000Z';
    const events = [
      {
        type: 'run-started',
        time,
        runId: 'handoff-id',
        step: 0,
        totalSteps: 4,
        method: 'lora',
        task: 'causal-lm',
        trainableParams: 10,
        trainExamples: 4,
        validationExamples: 0,
        backend: 'cuda/fsdp',
      },
      ...[1, 2, 3, 4].map((step) => ({
        type: 'step',
        time,
        step,
        epoch: step / 2,
        loss: 4 - step / 2,
        lr: 0.01,
        gradNorm: 1,
        tokensPerSec: 100,
        etaSec: 0,
      })),
      { type: 'checkpoint-saved', time, step: 1, path: 'checkpoint-1' },
      { type: 'checkpoint-saved', time, step: 4, path: 'checkpoint-4' },
      { type: 'finished', time, step: 4, reason: 'max-steps', durationSec: 30 },
    ];
    await fs.writeFile(join(out, 'metrics.jsonl'), events.map((e) => `${JSON.stringify(e)}\n`).join(''));
    const result = await importExternalRun(out, project);
    expect(result.origin).toMatchObject({
      kind: 'imported-run',
      where: 'node-7 (16 × cuda, fsdp)',
      host: 'node-7',
      strategy: 'fsdp',
      processes: 16,
    });
    const imported = await readRunEvents(result.runDir);
    expect(imported[0]).toMatchObject({ type: 'run-started', runId: result.runId, backend: 'cuda/fsdp' });
    expect(imported.filter((e) => e.type === 'step').map((e) => e.loss)).toEqual([3.5, 3, 2.5, 2]);
    // checkpoint-1 was pruned by the job (save_total_limit): its event goes, checkpoint-4's points at the run
    expect(imported.filter((e) => e.type === 'checkpoint-saved')).toMatchObject([
      { step: 4, path: join(result.runDir, 'checkpoints', 'step-4') },
    ]);
    expect((await readRunRecord(result.runDir)).trainSeconds).toBe(30);
  });

  test('a job stopped early: its checkpoints up to the last, later steps and a torn last line dropped', async () => {
    const job = await jobFolder('stopped');
    const out = join(job, 'output');
    // killed after step 5 of 10, mid-write: no final adapter, no top-level trainer_state.json
    for (const file of [ADAPTER_CONFIG, ADAPTER_WEIGHTS, TRAINER_STATE]) await fs.rm(join(out, file));
    await fs.writeFile(
      join(out, 'checkpoint-4', TRAINER_STATE),
      JSON.stringify({ global_step: 4, max_steps: 10, log_history: logHistory.slice(0, 5) }),
    );
    await fs.writeFile(
      join(out, 'checkpoint-2', TRAINER_STATE),
      JSON.stringify({ global_step: 2, max_steps: 10, log_history: logHistory.slice(0, 3) }),
    );
    const time = '2026-12-01T10:00:00.000Z';
    const steps = [1, 2, 3, 4, 5].map((step) => ({
      type: 'step',
      time,
      step,
      epoch: step / 5,
      loss: 4 - step / 2,
      lr: 0.01,
      gradNorm: 1,
      tokensPerSec: 100,
      etaSec: 0,
    }));
    await fs.writeFile(
      join(out, 'metrics.jsonl'),
      `${steps.map((e) => JSON.stringify(e)).join('\n')}\n{"type": "step", "time": "2026-12-01T1`,
    );
    const result = await importExternalRun(job, project);
    expect(result).toMatchObject({ step: 4, checkpoints: [2, 4], steps: 4 });
    expect(result.warnings).toContain(
      `${out}: the job stopped before its end: imported up to its last checkpoint, step 4 of 10`,
    );
    const record = await readRunRecord(result.runDir);
    expect(record).toMatchObject({ status: 'completed', step: 4, totalSteps: 10 });
    expect(record.reason).toContain('stopped before its end');
    expect(record.lastCheckpoint).toBe(join(result.runDir, 'checkpoints', 'step-4'));
    const imported = await readRunEvents(result.runDir);
    expect(imported.filter((e) => e.type === 'step').map((e) => e.step)).toEqual([1, 2, 3, 4]);
  });

  describe('refusals name the file and leave no run behind', () => {
    async function refused(job: string, message: RegExp) {
      const before = await listRuns(project);
      await expect(importExternalRun(job, project)).rejects.toThrow(message);
      expect(await listRuns(project)).toEqual(before);
      const runs = await fs.readdir(join(project, 'runs'));
      expect(runs.filter((n) => n.startsWith('.') || n.endsWith('.tmp'))).toEqual([]);
    }

    test('a folder with no adapter', async () => {
      const empty = join(work, 'empty');
      await fs.mkdir(join(empty, 'output'), { recursive: true });
      await refused(empty, /empty: no adapter_config\.json and no checkpoint-<step>\/ here or in output\//);
    });

    test('an adapter config without its weights', async () => {
      const job = await jobFolder('no-weights');
      await fs.rm(join(job, 'output', ADAPTER_WEIGHTS));
      await refused(job, /output\/adapter_model\.safetensors: not found/);
    });

    test('a torn trainer_state.json', async () => {
      const job = await jobFolder('torn-state');
      const path = join(job, 'output', TRAINER_STATE);
      const text = await fs.readFile(path, 'utf8');
      await fs.writeFile(path, text.slice(0, text.length / 2));
      await refused(job, /output\/trainer_state\.json: Trainer state is not valid JSON/);
    });

    test('a trainer_state.json without a log history', async () => {
      const job = await jobFolder('no-history');
      await fs.writeFile(join(job, 'output', TRAINER_STATE), JSON.stringify({ global_step: 4 }));
      await refused(job, /output\/trainer_state\.json: not a Trainer state \(log_history: /);
    });

    test('a torn metrics.jsonl', async () => {
      const job = await jobFolder('torn-metrics');
      await fs.writeFile(
        join(job, 'output', 'metrics.jsonl'),
        '{"type": "step", "time": "2026-12-01T10:00:00Z", "step": 1, "epoch": 0, "loss": 3, "lr": 0.1, "gradNorm": 1, "tokensPerSec": 0, "etaSec": 0}\n{"type": "step", "ti',
      );
      await refused(job, /output\/metrics\.jsonl:2: the last event is cut off/);
      await fs.writeFile(join(job, 'output', 'metrics.jsonl'), '{"type": "st\n{"type": "paused"}\n');
      await refused(job, /output\/metrics\.jsonl:1: malformed event/);
    });

    test("an adapter for another model's shapes", async () => {
      const job = await jobFolder('foreign', 'gpt2-lora');
      await refused(job, /adapter_model\.safetensors: tensor ".*" is for a module this model does not have/);
    });
  });
});
