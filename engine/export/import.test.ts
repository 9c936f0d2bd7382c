import { promises as fs } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { detachAdapter } from '../adapters/index.ts';
import { createStudioService, type StudioService } from '../api/service.ts';
import { useTestBackend } from '../backends/testing.ts';
import { runCli } from '../cli/testing.ts';
import { readRunRecord } from '../project/store.ts';
import { loadRunAdapter } from '../runs/index.ts';
import { openSafetensors, writeSafetensors } from '../safetensors/index.ts';
import { evaluateRun } from '../training/eval-run.ts';
import { resumeRun } from '../training/run.ts';
import { importPeftAdapter } from './import.ts';
import { exportRun } from './index.ts';
import { ADAPTER_CONFIG, ADAPTER_WEIGHTS } from './peft.ts';
import { logitsOf, PEFT_CASES, PEFT_FIXTURES, peftExpected, relative } from './peft-testing.ts';

/**
 * `studio import`: PEFT-made adapters (fixtures/peft) become runs of a project, and everything a trained run
 * supports works on them; adapters that do not fit the project's model are refused by file, module and shape.
 */
let work: string;
const projects: Record<string, string> = {};

async function project(name: string, model: string, task: 'causal-lm' | 'seq-cls'): Promise<string> {
  const dir = join(work, name);
  const data = join(work, `${name}.${task === 'seq-cls' ? 'csv' : 'jsonl'}`);
  await fs.writeFile(
    data,
    task === 'seq-cls'
      ? 'sentence,label\ngood day,pos\nbad day,neg\nthe day,neu\nfine day,pos\nawful day,neg\nsome day,neu\n'
      : ['red', 'green', 'blue', 'gold', 'grey', 'pink']
          .map((c) => JSON.stringify({ prompt: 'sky is', completion: ` ${c} and ${c}` }))
          .join('\n'),
  );
  const init = await runCli([
    'init',
    dir,
    '--model',
    model,
    '--data',
    data,
    '--task',
    task,
    '--val-fraction',
    '0.34',
    '--max-steps',
    '3',
    '--batch-size',
    '2',
    '--max-seq-len',
    '12',
    '--learning-rate',
    '0.01',
  ]);
  expect(init.err, init.out).toBe('');
  return dir;
}

const projectFor = (base: string) => projects[base];

beforeAll(async () => {
  await useTestBackend();
  work = await fs.mkdtemp(join(tmpdir(), 'studio-import-'));
  projects.llama = await project('llama', join(PEFT_FIXTURES, 'llama'), 'causal-lm');
  projects.gpt2 = await project('gpt2', join(PEFT_FIXTURES, 'gpt2'), 'causal-lm');
  projects['bert-cls'] = await project('bert-cls', join(PEFT_FIXTURES, 'bert-cls'), 'seq-cls');
});

afterAll(async () => {
  await fs.rm(work, { recursive: true, force: true });
});

describe('importing PEFT adapters', () => {
  test.each(
    PEFT_CASES,
  )('%s becomes a run marked imported that gives PEFT’s logits and exports PEFT’s file', async (name) => {
    const exp = peftExpected(name);
    const source = join(PEFT_FIXTURES, name);
    const result = await importPeftAdapter(source, projectFor(exp.base!));
    expect(result.warnings.join('\n')).toMatch(/base_model_name_or_path is "adapter-studio\/peft-fixture-/);
    const record = await readRunRecord(result.runDir);
    expect(record.origin).toMatchObject({ kind: 'imported-adapter', source });
    expect(record.status).toBe('completed');

    const loaded = await loadRunAdapter(result.runDir);
    try {
      expect(relative(logitsOf(loaded.model, exp.input_ids), exp.logits).rel).toBeLessThan(1e-4);
    } finally {
      detachAdapter(loaded.model, loaded.instance.name);
      loaded.model.dispose();
    }
    const out = join(work, `${name}-peft`);
    const exported = await exportRun(result.runDir, { format: 'peft', out, baseModelNameOrPath: 'x' });
    expect(exported.verification.ok).toBe(true);
    const ours = await openSafetensors(join(out, ADAPTER_WEIGHTS));
    const peft = await openSafetensors(join(source, ADAPTER_WEIGHTS));
    try {
      expect(ours.keys()).toEqual(peft.keys());
      for (const key of peft.keys()) {
        expect(Array.from(await ours.readFloat32(key)), key).toEqual(Array.from(await peft.readFloat32(key)));
      }
    } finally {
      await ours.close();
      await peft.close();
    }
  });
});

describe('an imported run works as a trained one', () => {
  let service: StudioService;
  beforeAll(() => {
    service = createStudioService({ configDir: join(work, 'config') });
  });
  afterAll(async () => {
    await service.dispose();
  });
  async function ok<T>(method: string, payload: unknown): Promise<T> {
    const reply = await service.call(method, payload);
    if (!reply.ok) throw new Error(`${method}: ${reply.error.message}`);
    return reply.result as T;
  }

  test.each([
    ['llama-dora', 'llama'],
    ['llama-tinylora-wt0.5', 'llama'],
    ['bert-cls-lora', 'bert-cls'],
  ])('%s: runs.import, analysis, try-it, eval, every export, and training on from it', async (name, base) => {
    const source = join(PEFT_FIXTURES, name);
    const { run, warnings } = await ok<{
      run: { dir: string; origin?: { kind: string } };
      warnings: string[];
    }>('runs.import', { projectDir: projectFor(base), source });
    expect(run.origin?.kind).toBe('imported-adapter');
    expect(warnings).toHaveLength(1);
    const runs = await ok<{ dir: string }[]>('runs.list', { projectDir: projectFor(base) });
    expect(runs.map((r) => r.dir)).toContain(run.dir);

    const analysis = await ok<{ modules: unknown[] }>('analysis.get', { runDir: run.dir });
    expect(analysis.modules.length).toBeGreaterThan(0);

    const seqCls = base === 'bert-cls';
    if (seqCls) {
      type Classified = { probabilities: { p: number }[] };
      const tried = await ok<{ base: Classified; adapted: Classified }>('tryit.classify', {
        runDir: run.dir,
        text: 'good day',
      });
      expect(tried.adapted.probabilities).toHaveLength(3);
      expect(tried.adapted.probabilities).not.toEqual(tried.base.probabilities);
    } else {
      const tried = await ok<{ adapted: { tokens: number } }>('tryit.generate', {
        runDir: run.dir,
        prompt: 'sky is',
        options: { maxNewTokens: 3 },
      });
      expect(tried.adapted.tokens).toBeGreaterThan(0);
    }

    const evaluated = await evaluateRun(run.dir, { backend: 'current' });
    expect(evaluated.step).toBe(0);
    expect(Number.isFinite(evaluated.metrics.loss)).toBe(true);

    const formats =
      name === 'llama-dora'
        ? (['peft', 'merged', 'native'] as const)
        : (['peft', 'lora', 'merged', 'native'] as const);
    for (const format of formats) {
      const result = await exportRun(run.dir, { format, out: join(work, `${name}-api-${format}`) });
      expect(result.verification.ok, format).toBe(true);
      expect(result.verification.adapterEffect, format).toBeGreaterThan(1e-3);
    }
    if (!seqCls) {
      const gguf = await exportRun(run.dir, {
        format: 'gguf',
        quant: 'q8_0',
        out: join(work, `${name}-gguf`),
      });
      expect(gguf.verification.ok, 'gguf').toBe(true);
    }
    if (name === 'llama-tinylora-wt0.5') {
      // an imported adapter resizes like a trained one (DoRA's ΔW is not low-rank; the classifier's head is
      // modules_to_save, which a resize refuses)
      const resized = await ok<{ proposal: { modules: { rank: number; newRank: number }[] } }>(
        'export.resize',
        {
          runDir: run.dir,
          resize: 'sv_fro=0.9',
          validate: true,
        },
      );
      expect(resized.proposal.modules.length).toBeGreaterThan(0);
      expect(resized.proposal.modules.every((m) => m.newRank >= 1 && m.newRank <= m.rank)).toBe(true);
    }

    // Training on from the imported adapter: the first loss is the imported adapter's, and the state moves.
    const before = (await loadRunAdapter(run.dir)).instance.state();
    const handle = await resumeRun(run.dir, { backend: 'current' });
    const summary = await handle.done;
    expect(summary.status).toBe('completed');
    expect(summary.step).toBe(3);
    const after = await loadRunAdapter(run.dir);
    try {
      expect(after.state.step).toBe(3);
      const moved = after.instance
        .trainable()
        .some((p) => tf.tidy(() => tf.max(tf.abs(tf.sub(p.variable, before[p.name]))).dataSync()[0]) > 0);
      expect(moved).toBe(true);
      expect((await readRunRecord(run.dir)).origin?.kind).toBe('imported-adapter');
    } finally {
      tf.dispose(Object.values(before));
      detachAdapter(after.model, after.instance.name);
      after.model.dispose();
    }
  });
});

describe('studio import', () => {
  test('prints the run and the warnings; a refusal is one line and exit code 1', async () => {
    const ok = await runCli(['import', join(PEFT_FIXTURES, 'llama-vera'), '--project', projects.llama]);
    expect(ok.code).toBe(0);
    expect(ok.out).toMatch(/imported .*llama-vera as run \S+ \(vera\)/);
    expect(ok.out).toMatch(/continue training: studio resume /);
    expect(ok.err).toMatch(/^warning: .*base_model_name_or_path/);
    const refused = await runCli(['import', join(PEFT_FIXTURES, 'gpt2-lora'), '--project', projects.llama]);
    expect(refused.code).toBe(1);
    expect(refused.err.split('\n')).toHaveLength(1);
    expect(refused.err).toMatch(/^studio import: .*gpt2-lora\/adapter_model\.safetensors: tensor/);
  });
});

describe('refusals name the file, the module and the shapes', () => {
  async function copyOf(name: string): Promise<string> {
    const dir = join(work, `copy-${name}-${Math.random().toString(36).slice(2, 8)}`);
    await fs.cp(join(PEFT_FIXTURES, name), dir, { recursive: true });
    return dir;
  }

  test('an adapter for a model with other shapes', async () => {
    const small = await project('small-llama', 'engine/models/fixtures/llama', 'causal-lm');
    await expect(importPeftAdapter(join(PEFT_FIXTURES, 'llama-lora'), small)).rejects.toThrow(
      /llama-lora\/adapter_model\.safetensors: .*model\.layers\.0\.self_attn\.q_proj\.lora_A\.weight" \(module model\.layers\.0\.self_attn\.q_proj\) has shape \[4, 64\], expected \[4, 16\]/,
    );
    expect(await fs.readdir(join(small, 'runs')).catch(() => [])).toEqual([]);
  });

  test('an adapter for another architecture, and a seq-cls adapter for a causal-LM project', async () => {
    await expect(importPeftAdapter(join(PEFT_FIXTURES, 'gpt2-lora'), projects.llama)).rejects.toThrow(
      /gpt2-lora\/adapter_model\.safetensors: tensor "base_model\.model\.transformer\.h\.0\.attn\.c_attn\.lora_A\.weight" is for a module this model does not have/,
    );
    await expect(importPeftAdapter(join(PEFT_FIXTURES, 'bert-cls-lora'), projects.llama)).rejects.toThrow(
      /bert-cls-lora\/adapter_config\.json: task_type is SEQ_CLS, but project .* is causal-lm/,
    );
  });

  test('an unknown peft_type', async () => {
    const dir = await copyOf('llama-lora');
    const config = JSON.parse(await fs.readFile(join(dir, ADAPTER_CONFIG), 'utf8'));
    await fs.writeFile(join(dir, ADAPTER_CONFIG), JSON.stringify({ ...config, peft_type: 'IA3' }));
    await expect(importPeftAdapter(dir, projects.llama)).rejects.toThrow(
      /adapter_config\.json: peft_type "IA3" is not supported \(supported: LORA, TINYLORA, VERA; from studio handoff's custom methods: TLORA, LORAXS\)/,
    );
  });

  test('a missing tensor', async () => {
    const dir = await copyOf('llama-vera');
    const file = await openSafetensors(join(dir, ADAPTER_WEIGHTS));
    const kept: Record<string, { dtype: 'F32'; shape: number[]; data: Float32Array }> = {};
    for (const key of file.keys()) {
      if (key.endsWith('layers.1.self_attn.v_proj.vera_lambda_b')) continue;
      kept[key] = { dtype: 'F32', shape: file.info(key).shape, data: await file.readFloat32(key) };
    }
    await file.close();
    await writeSafetensors(join(dir, ADAPTER_WEIGHTS), kept, { format: 'pt' });
    await expect(importPeftAdapter(dir, projects.llama)).rejects.toThrow(
      /adapter_model\.safetensors: vera adapter "default": state does not match: missing "model\.layers\.1\.self_attn\.v_proj\.vera_lambda_b"/,
    );
  });
});
