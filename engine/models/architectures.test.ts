import { cpSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { access, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { detachAdapter } from '../adapters/index.ts';
import { runRecorder } from '../analysis/index.ts';
import { useTestBackend } from '../backends/testing.ts';
import { runCli } from '../cli/testing.ts';
import { ExportError, exportFormats, exportRun } from '../export/index.ts';
import { createProject } from '../project/store.ts';
import { loadRunAdapter, readRunEvents } from '../runs/index.ts';
import { startRun } from '../training/run.ts';
import { inferenceContext } from './layers.ts';
import { loadModel } from './load.ts';
import type { Batch } from './types.ts';

/** The architectures added after the first six, each one module plus one table entry. */
const FIXTURES = join(import.meta.dirname, 'fixtures', 'transformers');
const NEW = ['qwen3', 'gemma2', 'gemma3_text', 'phi3', 'smollm3'];
const WORDS = ['sky', 'is', 'red', 'green', 'blue', 'gold', 'and', 'the', 'sea'];

let scratch: string;

beforeAll(async () => {
  await useTestBackend();
  scratch = await mkdtemp(join(tmpdir(), 'architectures-'));
});

afterAll(async () => {
  await rm(scratch, { recursive: true, force: true });
});

/** A copy of a fixture with a word-level tokenizer (ids below its 64-token vocabulary) and a tiny dataset. */
function projectInputs(name: string): { model: string; data: string } {
  const model = join(scratch, name, 'model');
  cpSync(join(FIXTURES, name), model, { recursive: true });
  const special = ['<pad>', '<s>', '</s>', '[UNK]'];
  const vocab = Object.fromEntries([...special, ...WORDS].map((w, i) => [w, i]));
  const tokenizer = {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: special.map((content, id) => ({
      id,
      content,
      single_word: false,
      lstrip: false,
      rstrip: false,
      normalized: false,
      special: true,
    })),
    normalizer: null,
    pre_tokenizer: { type: 'Whitespace' },
    post_processor: null,
    decoder: { type: 'WordPiece', prefix: '##', cleanup: true },
    model: {
      type: 'WordPiece',
      unk_token: '[UNK]',
      continuing_subword_prefix: '##',
      max_input_chars_per_word: 100,
      vocab,
    },
  };
  writeFileSync(join(model, 'tokenizer.json'), JSON.stringify(tokenizer));
  writeFileSync(
    join(model, 'tokenizer_config.json'),
    JSON.stringify({
      tokenizer_class: 'PreTrainedTokenizerFast',
      bos_token: '<s>',
      eos_token: '</s>',
      pad_token: '<pad>',
    }),
  );
  const data = join(scratch, name, 'train.jsonl');
  const rows = ['red', 'green', 'blue', 'gold'].map((c) =>
    JSON.stringify({ prompt: 'sky is', completion: ` ${c} and ${c}` }),
  );
  writeFileSync(data, `${rows.join('\n')}\n`);
  return { model, data };
}

const probe = (): Batch => ({
  inputIds: tf.tensor2d([[5, 9, 5, 9, 5, 9]], undefined, 'int32'),
  attentionMask: tf.ones([1, 6], 'int32') as tf.Tensor2D,
});

describe.each(NEW)('%s end to end', (name) => {
  const dir = join(FIXTURES, name);
  const reference = JSON.parse(readFileSync(join(dir, 'reference.json'), 'utf8'));

  it('studio inspect lists named_modules() in order and finds every weight', async () => {
    const { code, out } = await runCli(['inspect', dir, '--json']);
    expect(code).toBe(0);
    const report = JSON.parse(out);
    expect(report.architecture).toBe(reference.class);
    expect(report.modules.map((m: { name: string }) => m.name)).toEqual(
      reference.modules.map((m: { name: string }) => m.name),
    );
    expect(report.weights).toMatchObject({ newlyInitialized: [], unused: [] });
  });

  it('a LoRA run on all-linear: falling finite loss, analysis, every export; the merged model gives the adapted logits', async () => {
    const { model, data } = projectInputs(name);
    const project = join(scratch, name, 'project');
    await createProject(project, {
      model,
      task: 'causal-lm',
      data: { train: data },
      method: { name: 'lora', config: { r: 4, loraAlpha: 8, targetModules: 'all-linear' } },
      training: {
        batchSize: 4,
        learningRate: 0.05,
        schedule: 'constant',
        maxSeqLen: 16,
        maxSteps: 12,
        checkpointEvery: 12,
        evalEvery: 0,
        exactMatchExamples: 0,
      },
    });
    const summary = await (await startRun(project, { backend: 'current', recorder: runRecorder })).done;
    expect(summary.status, summary.error).toBe('completed');
    const losses = (await readRunEvents(summary.runDir)).flatMap((e) => (e.type === 'step' ? [e.loss] : []));
    expect(losses).toHaveLength(12);
    expect(losses.every(Number.isFinite)).toBe(true);
    expect((losses[10] + losses[11]) / 2).toBeLessThan(((losses[0] + losses[1]) / 2) * 0.9);
    expect(readdirSync(join(summary.runDir, 'analysis'))).toContain('snapshot-step-12.json');

    for (const format of exportFormats.filter((f) => !f.startsWith('gguf'))) {
      const result = await exportRun(summary.runDir, { format, out: join(scratch, name, format) });
      expect(result.verification.ok, `${format}: ${result.verification.method}`).toBe(true);
    }
    // GGUF is byte-checked on its own fixtures (engine/export/gguf); these configs and this WordPiece
    // tokenizer are ones llama.cpp would read or run differently, so it refuses them and writes nothing
    for (const format of ['gguf', 'gguf-lora'] as const) {
      const out = join(scratch, name, format);
      await expect(exportRun(summary.runDir, { format, out }), format).rejects.toThrow(ExportError);
      await expect(access(out), format).rejects.toThrow();
    }
    const adapted = await loadRunAdapter(summary.runDir);
    const merged = await loadModel(join(scratch, name, 'merged'));
    const [withAdapter, reloaded] = [adapted.model, merged].map((m) =>
      tf.tidy(() => m.forward(probe(), inferenceContext())),
    );
    detachAdapter(adapted.model, adapted.instance.name);
    const base = tf.tidy(() => adapted.model.forward(probe(), inferenceContext()));
    const diff = tf.tidy(() => tf.max(tf.abs(tf.sub(withAdapter, reloaded))).dataSync()[0]);
    const effect = tf.tidy(() => tf.max(tf.abs(tf.sub(withAdapter, base))).dataSync()[0]);
    expect(diff).toBeLessThan(1e-4);
    expect(effect).toBeGreaterThan(100 * diff);
    tf.dispose([withAdapter, reloaded, base]);
    merged.dispose();
    adapted.model.dispose();
  });
});
