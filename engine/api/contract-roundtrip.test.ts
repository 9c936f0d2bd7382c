import { promises as fs } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type Input,
  type MethodId,
  methodIds,
  type Output,
  parseInput,
  unwrapReply,
} from '../common/contract.ts';
import { createStudioService, type StudioService } from './service.ts';

const fixtures = fileURLToPath(new URL('../models/fixtures/', import.meta.url));
let work: string;
let service: StudioService;

/** What the UI sends and receives: the request and the reply both cross JSON, as over IPC or HTTP. */
async function roundTrip<M extends MethodId>(id: M, input: Input<M>): Promise<Output<M>> {
  const sent = JSON.parse(JSON.stringify(input));
  expect(() => parseInput(id, sent), `${id} request`).not.toThrow();
  const reply = await service.call(id, sent);
  if (!reply.ok) throw new Error(`${id}: ${reply.error.code}: ${reply.error.message}`);
  const received = unwrapReply(id, JSON.parse(JSON.stringify(reply)));
  // nothing the service returns is lost or changed on the wire (no undefined, NaN, Infinity, class instances)
  expect(received, `${id} reply`).toEqual(reply.result);
  return received;
}

/** Resolves when a run of the project ends (events, not polling); subscribed before the run starts. */
function ends(projectDir: string): Promise<void> {
  return new Promise((resolve) => {
    const off = service.onEvent((event) => {
      const ended = ['completed', 'failed', 'cancelled'];
      // a run has ended for this host once it is no longer live here (runs.start may then start another)
      if (
        event.type === 'run.state' &&
        event.run.projectDir === projectDir &&
        !event.run.live &&
        ended.includes(event.run.status)
      ) {
        off();
        resolve();
      }
    });
  });
}

beforeAll(async () => {
  work = await fs.mkdtemp(join(tmpdir(), 'studio-roundtrip-'));
  const lm = ['red', 'green', 'blue', 'gold'].map((c) =>
    JSON.stringify({ prompt: 'sky is', completion: ` ${c}` }),
  );
  await fs.writeFile(join(work, 'train.jsonl'), lm.join('\n'));
  await fs.writeFile(join(work, 'train.csv'), 'sentence,label\ngood,pos\nbad,neg\nfine,pos\nawful,neg\n');
  service = createStudioService({ configDir: join(work, 'config') });
});

afterAll(async () => {
  await service.dispose();
  await fs.rm(work, { recursive: true, force: true });
});

describe('API contract round trip through the service', () => {
  it('every method: a valid request parses, the service answers, and the reply survives the wire', async () => {
    const covered = new Set<MethodId>();
    const call = <M extends MethodId>(id: M, input: Input<M>) => {
      covered.add(id);
      return roundTrip(id, input);
    };
    const gpt2 = join(fixtures, 'gpt2');
    const training = { maxSteps: 4, batchSize: 2, maxSeqLen: 16, analysisEvery: 2, checkpointEvery: 2 };

    expect((await call('app.info', {})).version).toMatch(/^\d+\.\d+\.\d+/);
    expect((await call('backend.report', {})).chosen).toBeTruthy();
    expect(await call('methods.list', {})).not.toHaveLength(0);
    expect((await call('model.inspect', { modelDir: gpt2 })).architecture).toBe('GPT2LMHeadModel');
    const budget = await call('budget.compute', { modelDir: gpt2, method: 'lora', config: { r: 2 } });
    expect(budget.trainable).toBeGreaterThan(0);
    const compared = await call('budget.compare', {
      modelDir: gpt2,
      candidates: [
        { method: 'lora', config: { r: 2 } },
        { method: 'vera', config: { r: 0 } },
      ],
    });
    expect(compared.map((b) => ('error' in b ? 'error' : b.method))).toEqual(['lora', 'error']);

    const dir = join(work, 'lm');
    await call('projects.create', {
      dir,
      modelDir: gpt2,
      dataPath: join(work, 'train.jsonl'),
      settings: { training, backend: 'wasm' },
    });
    await call('projects.update', { dir, methodConfig: { r: 2, targetModules: ['c_attn'] } });
    expect((await call('projects.open', { dir })).methodConfig.r).toBe(2);
    expect((await call('projects.recent', {}))[0].dir).toBe(dir);
    expect((await call('data.preview', { projectDir: dir, count: 2 })).examples).toHaveLength(2);
    expect((await call('projects.createDemo', { dir: join(work, 'demo') })).method).toBe('lora');
    await call('settings.update', { lastProject: dir });
    expect((await call('settings.get', {})).lastProject).toBe(dir);
    const listed = await call('files.list', { dir: work, projectDir: dir });
    expect(listed.entries.find((e) => e.name === 'train.jsonl')?.kind).toBe('dataset');
    const counted = await call('files.dataset', { path: join(work, 'train.jsonl'), valFraction: 0.25 });
    expect(counted.examples).toBe(4);
    expect((await call('training.describe', {})).fields.map((f) => f.key)).toContain('learningRate');

    const endedA = ends(dir);
    const runA = (await call('runs.start', { projectDir: dir })).dir;
    await endedA;
    expect((await call('runs.status', { runDir: runA })).run.status).toBe('completed');

    // a long run to pause, resume and cancel while it is live
    const runB = (await call('runs.start', { projectDir: dir, overrides: { training: { maxSteps: 400 } } }))
      .dir;
    expect((await call('runs.live', {})).map((r) => r.dir)).toContain(runB);
    await call('runs.pause', { runDir: runB });
    await call('runs.resume', { runDir: runB });
    expect((await call('runs.cancel', { runDir: runB })).status).toBe('cancelled');
    expect(await call('runs.list', { projectDir: dir })).toHaveLength(2);

    expect((await call('analysis.get', { runDir: runA })).steps.length).toBeGreaterThan(0);
    expect((await call('analysis.compare', { runA, runB: runA })).runA.dir).toBe(runA);
    const { jobId } = await call('analysis.eigen.start', {
      runDir: runA,
      module: 'transformer.h.0.attn.c_attn',
    });
    await call('analysis.eigen.cancel', { jobId });
    expect((await call('export.estimate', { runDir: runA })).peft).toBeGreaterThan(0);
    const exported = await call('export.run', { runDir: runA, format: 'peft', out: join(work, 'peft') });
    expect(exported.verification.ok).toBe(true);
    const resized = await call('export.resize', { runDir: runA, resize: 'sv_fro=0.9', validate: false });
    expect(resized.proposal.modules.length).toBeGreaterThan(0);
    // the exported PEFT adapter comes back in as a run of its own
    const imported = await call('runs.import', { projectDir: dir, source: join(work, 'peft') });
    expect(imported.run.origin?.kind).toBe('imported-adapter');
    // and as a hand-off job's output: the adapter beside the Trainer's log history
    const job = join(work, 'job');
    await fs.cp(join(work, 'peft'), job, { recursive: true });
    const history = [1, 2].map((step) => ({
      step,
      loss: 3 - step,
      learning_rate: 1e-3,
      grad_norm: 1,
      epoch: step,
    }));
    await fs.writeFile(
      join(job, 'trainer_state.json'),
      JSON.stringify({ global_step: 2, max_steps: 2, log_history: history }),
    );
    const external = await call('runs.importExternal', { projectDir: dir, source: job });
    expect(external.run.origin?.kind).toBe('imported-run');
    expect(external.checkpoints).toEqual([2]);
    const handoff = await call('handoff.write', {
      projectDir: dir,
      out: join(work, 'handoff'),
      strategy: 'fsdp',
    });
    expect(handoff.files).toContain('train.py');
    const tried = await call('tryit.generate', {
      runDir: runA,
      prompt: 'sky is',
      options: { maxNewTokens: 2 },
    });
    expect(tried.base.tokens).toBeGreaterThan(0);
    expect((await call('runs.delete', { runDir: runB })).deleted).toBe(runB);

    const cls = join(work, 'cls');
    await call('projects.create', {
      dir: cls,
      modelDir: join(fixtures, 'gpt2-cls'),
      dataPath: join(work, 'train.csv'),
      task: 'seq-cls',
      settings: { training, backend: 'wasm' },
    });
    const endedC = ends(cls);
    const runC = (await call('runs.start', { projectDir: cls })).dir;
    await endedC;
    const classified = await call('tryit.classify', { runDir: runC, text: 'good' });
    expect(classified.adapted.probabilities.map((p) => p.label)).toContain('pos');

    // a method added to the contract without a case here fails this test
    expect([...covered].sort()).toEqual([...methodIds].sort());
  });
});
