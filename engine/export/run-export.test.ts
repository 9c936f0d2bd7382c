import { promises as fs } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { detachAdapter } from '../adapters/index.ts';
import { createStudioService } from '../api/service.ts';
import { useTestBackend } from '../backends/testing.ts';
import { main } from '../cli/main.ts';
import { unwrapReply } from '../common/contract.ts';
import { setWriteFs } from '../io/fs.ts';
import { TestDisk } from '../io/testing.ts';
import { createProject } from '../project/store.ts';
import { loadRunAdapter } from '../runs/index.ts';
import { resumeRun, startRun } from '../training/run.ts';
import { EXPORT_MARKER, exportRun } from './index.ts';

const FIXTURES = join(import.meta.dirname, '..', 'models', 'fixtures');

let tmp: string;
let runDir: string;

beforeAll(async () => {
  await useTestBackend();
  tmp = await fs.mkdtemp(join(tmpdir(), 'run-export-'));
  const lines = Array.from({ length: 6 }, (_, i) =>
    JSON.stringify({ prompt: `count ${i}`, completion: ` to ${i + 1}` }),
  );
  await fs.writeFile(join(tmp, 'train.jsonl'), `${lines.join('\n')}\n`);
  await createProject(join(tmp, 'p'), {
    model: join(FIXTURES, 'gpt2'),
    task: 'causal-lm',
    data: { train: join(tmp, 'train.jsonl'), valFraction: 0.34 },
    method: { name: 'lora', config: { r: 2, loraAlpha: 4 } },
    training: {
      batchSize: 2,
      learningRate: 0.05,
      maxSeqLen: 16,
      maxSteps: 2,
      checkpointEvery: 2,
      evalEvery: 0,
      exactMatchExamples: 0,
    },
  });
  const summary = await (await startRun(join(tmp, 'p'), { backend: 'current' })).done;
  runDir = summary.runDir;
});

afterAll(async () => {
  await fs.rm(tmp, { recursive: true, force: true });
});

describe('exportRun', () => {
  it('native: a self-contained run folder whose adapter and optimizer state are byte-identical', async () => {
    const out = join(tmp, 'native');
    const result = await exportRun(runDir, { format: 'native', out });
    expect(result.verification).toMatchObject({ ok: true, maxAbsDiff: 0 });
    expect(result.files).toEqual(
      expect.arrayContaining([
        'checkpoints/step-2/adapter.safetensors',
        'checkpoints/step-2/optimizer.safetensors',
        'checkpoints/step-2/state.json',
        'run.json',
      ]),
    );
    for (const f of ['adapter.safetensors', 'optimizer.safetensors', 'state.json']) {
      const a = await fs.readFile(join(runDir, 'checkpoints', 'step-2', f));
      const b = await fs.readFile(join(out, 'checkpoints', 'step-2', f));
      expect(Buffer.compare(a, b), f).toBe(0);
    }
    const record = JSON.parse(await fs.readFile(join(out, 'run.json'), 'utf8'));
    expect(record.config.model).toBe(join(FIXTURES, 'gpt2'));
    const restored = await loadRunAdapter(out);
    expect(restored.state.step).toBe(2);
    detachAdapter(restored.model, restored.instance.name);
    restored.model.dispose();
    // trained on, the copy is a run of its own: no longer an export that a later export may replace
    expect(await fs.readdir(out)).toContain(EXPORT_MARKER);
    await (await resumeRun(out, { backend: 'current', maxSteps: 3 })).done;
    expect(await fs.readdir(out)).not.toContain(EXPORT_MARKER);
    await expect(exportRun(runDir, { format: 'native', out })).rejects.toThrow(
      'was not written by an export',
    );
  });

  it('peft, lora and merged from a trained run all verify; memory stays flat', async () => {
    const before = tf.memory().numTensors;
    for (const format of ['peft', 'lora', 'merged'] as const) {
      const result = await exportRun(runDir, { format, out: join(tmp, format) });
      expect(result.verification.ok, format).toBe(true);
      expect(result.verification.adapterEffect, format).toBeGreaterThan(0);
    }
    expect(tf.memory().numTensors).toBe(before);
    const config = JSON.parse(await fs.readFile(join(tmp, 'peft', 'adapter_config.json'), 'utf8'));
    expect(config.base_model_name_or_path).toBe(join(FIXTURES, 'gpt2'));
  });

  it('the CLI: studio export --format peft --json, and a usage error for an unknown format', async () => {
    const out: string[] = [];
    const err: string[] = [];
    const io = { out: (t: string) => out.push(t), err: (t: string) => err.push(t), isTTY: false };
    const code = await main(
      ['export', runDir, '--format', 'peft', '--out', join(tmp, 'cli-peft'), '--json'],
      io,
    );
    expect(code).toBe(0);
    const result = JSON.parse(out.join('\n'));
    expect(result.files).toEqual(['adapter_config.json', 'adapter_model.safetensors']);
    expect(result.verification.ok).toBe(true);
    const bad = await main(['export', runDir, '--format', 'onnx', '--out', join(tmp, 'x')], io);
    expect(bad).toBe(2);
    expect(err.join('\n')).toMatch(
      /--format must be one of peft, lora, merged, native, gguf, gguf-lora, got "onnx"/,
    );
  });
});

describe('spectrum-driven resize of a run', () => {
  it('CLI --resize and the API give the same ranks; the export verifies against base + truncated ΔW', async () => {
    const out: string[] = [];
    const err: string[] = [];
    const io = { out: (t: string) => out.push(t), err: (t: string) => err.push(t), isTTY: false };
    const code = await main(
      [
        'export',
        runDir,
        '--format',
        'lora',
        '--resize',
        'sv_fro=0.6',
        '--out',
        join(tmp, 'cli-resized'),
        '--json',
      ],
      io,
    );
    expect(code, err.join('\n')).toBe(0);
    const cli = JSON.parse(out.join('\n'));
    expect(cli.verification.ok).toBe(true);
    const service = createStudioService({ configDir: join(tmp, 'config') });
    const api = unwrapReply(
      'export.resize',
      await service.call('export.resize', { runDir, resize: 'sv_fro=0.6', validate: true }),
    );
    await service.dispose();
    expect(cli.resize.modules.map((m: { newRank: number }) => m.newRank)).toEqual(
      api.proposal.modules.map((m) => m.newRank),
    );
    expect(api.validation!.examples).toBeGreaterThan(0);
    expect(cli.validation.lossResized).toBeCloseTo(api.validation!.lossResized, 6);
    const config = JSON.parse(await fs.readFile(join(tmp, 'cli-resized', 'adapter_config.json'), 'utf8'));
    const ranks = api.proposal.modules.map((m) => m.newRank);
    const common = config.r as number;
    for (const m of api.proposal.modules) {
      const pattern = Object.entries(config.rank_pattern as Record<string, number>).find(([k]) =>
        new RegExp(`(^|\\.)${k}$`).test(m.module),
      );
      expect(pattern ? pattern[1] : common).toBe(m.newRank);
    }
    expect(Math.min(...ranks)).toBeGreaterThanOrEqual(1);
    const bad = await main(
      ['export', runDir, '--format', 'peft', '--resize', 'sv_fro=0.6', '--out', join(tmp, 'y')],
      io,
    );
    expect(bad).toBe(2);
    expect(err.join('\n')).toMatch(/--resize applies to --format lora only/);
  });
});

describe('GGUF from a trained run', () => {
  it('studio export --format gguf and gguf-lora: the sizes export.estimate gave before writing, verified, memory flat', async () => {
    const service = createStudioService({ configDir: join(tmp, 'config') });
    const estimate = unwrapReply('export.estimate', await service.call('export.estimate', { runDir }));
    await service.dispose();
    const before = tf.memory().numTensors;
    const out: string[] = [];
    const io = { out: (t: string) => out.push(t), err: (t: string) => out.push(t), isTTY: false };
    for (const quant of ['q4_k_m', 'q8_0'] as const) {
      out.length = 0;
      const dir = join(tmp, `gguf-${quant}`);
      const code = await main(
        ['export', runDir, '--format', 'gguf', '--quant', quant, '--out', dir, '--json'],
        io,
      );
      expect(code, out.join('\n')).toBe(0);
      const result = JSON.parse(out.join('\n'));
      expect(result.files).toEqual(['Modelfile', `model-${quant}.gguf`]);
      expect(result.verification.ok).toBe(true);
      expect((await fs.stat(join(dir, `model-${quant}.gguf`))).size).toBe(estimate[`gguf-${quant}`]);
      expect(await fs.readFile(join(dir, 'Modelfile'), 'utf8')).toMatch(
        new RegExp(`^FROM ./model-${quant}\\.gguf$`, 'm'),
      );
    }
    out.length = 0;
    const lora = join(tmp, 'gguf-lora');
    expect(
      await main(['export', runDir, '--format', 'gguf-lora', '--quant', 'f16', '--out', lora, '--json'], io),
    ).toBe(0);
    const result = JSON.parse(out.join('\n'));
    expect(result.files).toEqual(['Modelfile', 'adapter-f16.gguf', 'model-f16.gguf']);
    expect(await fs.readFile(join(lora, 'Modelfile'), 'utf8')).toMatch(/^ADAPTER \.\/adapter-f16\.gguf$/m);
    expect(tf.memory().numTensors).toBe(before);
    out.length = 0;
    expect(
      await main(['export', runDir, '--format', 'peft', '--quant', 'q8_0', '--out', join(tmp, 'z')], io),
    ).toBe(2);
    expect(out.join('\n')).toMatch(/--quant applies to --format gguf and gguf-lora only/);
  });
});

/** Every file under `dir` with its bytes, to tell whether a folder was touched. */
async function contents(dir: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const entry of await fs.readdir(dir, { withFileTypes: true, recursive: true })) {
    const path = join(entry.parentPath, entry.name);
    if (entry.isFile()) out[path.slice(dir.length)] = (await fs.readFile(path)).toString('base64');
  }
  return out;
}

describe('export destinations', () => {
  async function destinations(): Promise<Record<string, string>> {
    const root = await fs.mkdtemp(join(tmp, 'dest-'));
    const model = join(root, 'my-model');
    await fs.cp(join(FIXTURES, 'gpt2'), model, { recursive: true });
    await fs.writeFile(join(model, 'NOTES.md'), 'my own notes');
    const run = join(root, 'other-run');
    await fs.cp(runDir, run, { recursive: true });
    const documents = join(root, 'documents');
    await fs.mkdir(documents);
    await fs.writeFile(join(documents, 'thesis.txt'), 'keep me');
    return { 'a model folder': model, 'a run folder': run, "a folder with a user's file": documents };
  }

  it('refuses a model folder, a run folder and a folder of user files, leaving each byte-identical', async () => {
    for (const [what, out] of Object.entries(await destinations())) {
      const before = await contents(out);
      for (const format of ['peft', 'merged', 'native'] as const) {
        await expect(exportRun(runDir, { format, out }), `${format} into ${what}`).rejects.toThrow(
          `${out} is not empty and was not written by an export`,
        );
      }
      expect(await contents(out), what).toEqual(before);
    }
  });

  it('the API refuses them too (no force by default); the CLI replaces one only with --force', async () => {
    const { 'a model folder': model, 'a run folder': run } = await destinations();
    const service = createStudioService({ configDir: join(tmp, 'config') });
    try {
      const before = await contents(run);
      const reply = await service.call('export.run', { runDir, format: 'peft', out: run });
      expect(reply).toMatchObject({ ok: false, error: { message: expect.stringContaining(run) } });
      expect(await contents(run)).toEqual(before);
    } finally {
      await service.dispose();
    }
    const io = { out: () => undefined, err: (t: string) => errors.push(t), isTTY: false };
    const errors: string[] = [];
    expect(await main(['export', runDir, '--format', 'peft', '--out', model], io)).toBe(1);
    expect(errors.join('\n')).toContain(`${model} is not empty and was not written by an export`);
    expect(await fs.readFile(join(model, 'NOTES.md'), 'utf8')).toBe('my own notes');
    expect(await main(['export', runDir, '--format', 'peft', '--out', model, '--force'], io)).toBe(0);
    expect((await fs.readdir(model)).sort()).toEqual([
      EXPORT_MARKER,
      'adapter_config.json',
      'adapter_model.safetensors',
    ]);
  });

  it('replaces a previous export, which it recognises by its marker', async () => {
    const out = join(await fs.mkdtemp(join(tmp, 'again-')), 'export');
    await exportRun(runDir, { format: 'merged', out });
    expect(JSON.parse(await fs.readFile(join(out, EXPORT_MARKER), 'utf8'))).toMatchObject({
      format: 'merged',
    });
    const result = await exportRun(runDir, { format: 'peft', out });
    expect(result.files).toEqual(['adapter_config.json', 'adapter_model.safetensors']);
    expect((await fs.readdir(out)).sort()).toEqual([EXPORT_MARKER, ...result.files]);
    expect(JSON.parse(await fs.readFile(join(out, EXPORT_MARKER), 'utf8'))).toMatchObject({ format: 'peft' });
  });

  it('on a full disk: names the file being written and the space it needed, and writes nothing', async () => {
    const root = await fs.mkdtemp(join(tmp, 'full-'));
    for (const format of ['peft', 'merged', 'native', 'gguf', 'gguf-lora'] as const) {
      const out = join(root, format);
      const restore = setWriteFs(new TestDisk(500));
      const errors: string[] = [];
      const io = { out: () => undefined, err: (t: string) => errors.push(t), isTTY: false };
      try {
        expect(await main(['export', runDir, '--format', format, '--out', out], io), format).toBe(1);
      } finally {
        restore();
      }
      expect(errors.join('\n'), format).toMatch(
        new RegExp(
          `${out}/[\\w./-]+: no space left on device: writing it needs [\\d.]+ (B|KiB|MiB), [\\d.]+ (B|KiB) free`,
        ),
      );
      expect(await fs.readdir(root), format).toEqual([]);
    }
  });
});
