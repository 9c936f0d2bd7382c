import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { createStudioService, type StudioService } from '../api/service.ts';
import { useTestBackend } from '../backends/testing.ts';
import type { Input, MethodId, Output } from '../common/contract.ts';
import { createProject } from '../project/store.ts';
import { loadRunAdapter } from '../runs/index.ts';
import { pythonOrSkip } from '../testing/python.ts';
import { writeHandoff } from './index.ts';
import { studioLogits } from './testing.ts';

/**
 * The proof of issue #15: the generated bundle trains for real with `accelerate launch --num_processes 2` on
 * CPU (gloo), `runs.importExternal` brings its output back, and the studio's logits with the imported adapter
 * match PEFT's own (computed here in Python from the job's output folder).
 */
const DEMO = resolve(import.meta.dirname, '..', '..', 'assets', 'demo');
const MODULES = ['torch', 'transformers', 'peft', 'trl', 'datasets', 'accelerate'];
const STEPS = 6;
const IDS = [[5, 17, 301, 42, 999, 7, 1500, 88, 23, 640, 3, 1200]];

const root = mkdtempSync(join(tmpdir(), 'studio-run-elsewhere-'));
let service: StudioService;
beforeAll(async () => {
  await useTestBackend();
  // A few examples seen again and again: the loss must fall within a handful of steps.
  const lines = readFileSync(join(DEMO, 'data', 'train.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .slice(0, 16);
  writeFileSync(join(root, 'train.jsonl'), `${lines.join('\n')}\n`);
  service = createStudioService({ configDir: join(root, 'config') });
});
afterAll(async () => {
  await service?.dispose();
  rmSync(root, { recursive: true, force: true });
});

async function call<M extends MethodId>(id: M, input: Input<M>): Promise<Output<M>> {
  const reply = await service.call(id, input);
  if (!reply.ok) throw new Error(`${id}: ${reply.error.message}`);
  return reply.result as Output<M>;
}

/** PEFT's logits for IDS with the adapter in `output` (studio_methods registers TLoRA / LoRA-XS). */
const PEFT_LOGITS = `import json, sys
sys.path.insert(0, sys.argv[1])
import studio_methods, torch
from peft import PeftModel
from transformers import AutoModelForCausalLM
model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(sys.argv[2]), sys.argv[3]).eval()
with torch.no_grad():
    print(json.dumps(model(torch.tensor(json.loads(sys.argv[4]))).logits.flatten().tolist()))`;

describe('run elsewhere: accelerate launch with 2 CPU processes, then import-run', () => {
  test.each([
    { name: 'lora' as const, config: { r: 4, loraAlpha: 8, targetModules: ['q_proj', 'v_proj'] }, lr: 5e-3 },
    {
      name: 'tlora' as const,
      config: { r: 8, dropout: 0, targetModules: ['q_proj', 'v_proj', 'o_proj'] },
      lr: 5e-2,
    },
  ])('$name trains in two processes, comes back as a run, and matches PEFT', async ({ name, config, lr }) => {
    const python = pythonOrSkip(MODULES);
    if (!python) return;
    const project = join(root, `${name}-project`);
    await createProject(project, {
      model: join(DEMO, 'model'),
      task: 'causal-lm',
      data: { train: join(root, 'train.jsonl') },
      method: { name, config },
      training: {
        batchSize: 2,
        maxSeqLen: 64,
        learningRate: lr,
        schedule: 'constant',
        maxSteps: STEPS,
        checkpointEvery: 3,
        evalEvery: 0,
      },
    });
    const bundle = join(root, `${name}-handoff`);
    await writeHandoff(project, bundle);

    // The bundle's own launcher: accelerate launch --config_file accelerate-config.yaml --num_processes 2.
    const started = performance.now();
    const job = spawnSync('bash', ['launch-accelerate.sh'], {
      cwd: bundle,
      encoding: 'utf8',
      env: {
        ...process.env,
        PATH: `${dirname(python)}:${process.env.PATH}`,
        NUM_PROCESSES: '2',
        CUDA_VISIBLE_DEVICES: '',
        OMP_NUM_THREADS: '1',
        TOKENIZERS_PARALLELISM: 'false',
        HF_HUB_OFFLINE: '1',
      },
      timeout: 240_000,
    });
    const wallSec = (performance.now() - started) / 1000;
    expect(job.status, job.stderr.slice(-4000)).toBe(0);
    const output = join(bundle, 'output');
    const where = JSON.parse(readFileSync(join(output, 'handoff-run.json'), 'utf8'));
    expect(where).toMatchObject({
      processes: 2,
      processGroup: 'gloo',
      device: 'cpu',
      strategy: 'ddp',
      method: name,
    });

    const imported = await call('runs.importExternal', { projectDir: project, source: bundle });
    expect(imported.checkpoints).toEqual([3, 6]);
    expect(imported.run.origin).toMatchObject({ kind: 'imported-run', strategy: 'ddp', processes: 2 });
    const runs = await call('runs.list', { projectDir: project });
    expect(runs.map((r) => r.dir)).toContain(imported.run.dir);
    const status = await call('runs.status', { runDir: imported.run.dir, maxPoints: 600 });
    const losses = status.metrics.steps.map((s) => s.loss ?? Number.NaN);
    expect(status.metrics.steps.map((s) => s.step)).toEqual([1, 2, 3, 4, 5, 6]);
    const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
    expect(mean(losses.slice(-2))).toBeLessThan(mean(losses.slice(0, 2)));

    const peft = spawnSync(
      python,
      ['-c', PEFT_LOGITS, bundle, join(DEMO, 'model'), output, JSON.stringify(IDS)],
      { encoding: 'utf8', env: { ...process.env, HF_HUB_OFFLINE: '1' }, timeout: 120_000 },
    );
    expect(peft.status, peft.stderr.slice(-3000)).toBe(0);
    const reference = Float32Array.from(JSON.parse(peft.stdout) as number[]);
    const adapter = await loadRunAdapter(imported.run.dir);
    let ours: Float32Array;
    let base: Float32Array;
    try {
      ours = studioLogits(adapter.model, IDS);
      for (const layer of adapter.model.layers.values()) layer.adaptersEnabled = false;
      base = studioLogits(adapter.model, IDS);
    } finally {
      adapter.model.dispose();
    }
    expect(ours.length).toBe(reference.length);
    let maxDiff = 0;
    let maxRef = 0;
    let effect = 0;
    for (let i = 0; i < ours.length; i++) {
      maxDiff = Math.max(maxDiff, Math.abs(ours[i] - reference[i]));
      maxRef = Math.max(maxRef, Math.abs(reference[i]));
      effect = Math.max(effect, Math.abs(ours[i] - base[i]));
    }
    const relative = maxDiff / maxRef;
    console.log(
      `${name}: two-process accelerate run ${wallSec.toFixed(1)} s wall; loss ${losses[0].toFixed(3)} → ${losses[losses.length - 1].toFixed(3)}; logits max |Δ| ${maxDiff.toExponential(2)} (relative ${relative.toExponential(2)}), adapter effect ${effect.toExponential(2)}`,
    );
    expect(relative).toBeLessThanOrEqual(1e-4);
    // The trained adapter moves the logits far more than the two implementations differ.
    expect(effect).toBeGreaterThan(100 * maxDiff);
  }, 300_000);
});
