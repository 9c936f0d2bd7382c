import { promises as fs } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiError } from '../common/contract.ts';
import { EigCancelledError } from '../linalg/eig.ts';
import { ModelError } from '../models/config.ts';
import { createStudioService, replyError, type StudioService } from './service.ts';

const gpt2 = fileURLToPath(new URL('../models/fixtures/gpt2', import.meta.url));
let work: string;
let service: StudioService;

beforeAll(async () => {
  work = await fs.mkdtemp(join(tmpdir(), 'studio-service-'));
  await fs.writeFile(
    join(work, 'train.jsonl'),
    ['hello world', 'a b c', 'the end']
      .map((t) => JSON.stringify({ prompt: `${t}:`, completion: ' ok' }))
      .join('\n'),
  );
  service = createStudioService({ configDir: join(work, 'config') });
});
afterAll(async () => {
  await service.dispose();
  await fs.rm(work, { recursive: true, force: true });
});

async function ok<T>(method: string, payload: unknown): Promise<T> {
  const reply = await service.call(method, payload);
  if (!reply.ok) throw new Error(`${method}: ${reply.error.message}`);
  return reply.result as T;
}

describe('studio service', () => {
  it('refuses unknown methods and malformed requests, naming the field', async () => {
    expect(await service.call('nope', {})).toEqual({
      ok: false,
      error: { code: 'not_found', message: 'unknown API method "nope"' },
    });
    const bad = await service.call('model.inspect', { modelDir: 3 });
    expect(bad.ok).toBe(false);
    if (!bad.ok)
      expect(bad.error).toMatchObject({ code: 'invalid_input', message: expect.stringMatching(/modelDir/) });
  });

  it('inspects a model folder: architecture, size on disk, module tree', async () => {
    const model = await ok<{
      architecture: string;
      numLayers: number;
      sizeBytes: number;
      modules: { name: string }[];
    }>('model.inspect', { modelDir: gpt2 });
    expect(model.architecture).toBe('GPT2LMHeadModel');
    expect(model.numLayers).toBe(2);
    expect(model.sizeBytes).toBe((await fs.stat(join(gpt2, 'model.safetensors'))).size);
    expect(model.modules.map((m) => m.name)).toContain('transformer.h.1.attn.c_attn');
  });

  it('computes a LoRA budget equal to r·(in + out) per targeted module', async () => {
    const budget = await ok<{ trainable: number; targets: string[]; fileBytes: Record<string, number> }>(
      'budget.compute',
      { modelDir: gpt2, method: 'lora', config: { r: 2, targetModules: ['c_attn'] } },
    );
    // gpt2 fixture: n_embd 16, 2 layers; c_attn maps 16 → 48
    expect(budget.targets).toEqual(['transformer.h.0.attn.c_attn', 'transformer.h.1.attn.c_attn']);
    expect(budget.trainable).toBe(2 * 2 * (16 + 48));
    expect(budget.fileBytes.peft).toBeGreaterThan(budget.trainable * 4);
  });

  it('passes the engine’s own config errors through as invalid_input', async () => {
    const reply = await service.call('budget.compute', { modelDir: gpt2, method: 'lora', config: { r: 0 } });
    expect(reply).toEqual({
      ok: false,
      error: { code: 'invalid_input', message: 'invalid lora config: r: r must be at least 1' },
    });
  });

  it('creates, updates and reopens a project, and remembers it as recent', async () => {
    const dir = join(work, 'project');
    const created = await ok<{ dir: string; method: string; runs: unknown[] }>('projects.create', {
      dir,
      modelDir: gpt2,
      dataPath: join(work, 'train.jsonl'),
    });
    expect(created).toMatchObject({ dir, method: 'lora', runs: [] });
    const updated = await ok<{ method: string; methodConfig: Record<string, unknown> }>('projects.update', {
      dir,
      method: 'vera',
      methodConfig: { r: 4, targetModules: ['c_attn'] },
    });
    expect(updated.method).toBe('vera');
    expect(updated.methodConfig.r).toBe(4);
    const refused = await service.call('projects.update', { dir, methodConfig: { r: -1 } });
    expect(refused.ok).toBe(false);
    if (!refused.ok) expect(refused.error.message).toMatch(/r/);
    const reopened = await ok<{ method: string }>('projects.open', { dir });
    expect(reopened.method).toBe('vera');
    const recent = await ok<{ dir: string }[]>('projects.recent', {});
    expect(recent[0].dir).toBe(dir);
  });

  it('previews the data with the loss-masked part apart', async () => {
    const preview = await ok<{
      trainCount: number;
      examples: { segments: { text: string; trained: boolean }[] }[];
    }>('data.preview', { projectDir: join(work, 'project'), count: 2 });
    expect(preview.trainCount).toBe(3);
    const segments = preview.examples[0].segments;
    expect(segments.some((s) => s.trained)).toBe(true);
    expect(segments.some((s) => !s.trained)).toBe(true);
    expect(segments.map((s) => s.text).join('')).toContain('hello world:');
  });
});

describe('studio service errors', () => {
  it('answers model.inspect on a folder without config.json with invalid_input naming the file', async () => {
    const empty = await fs.mkdtemp(join(tmpdir(), 'studio-no-model-'));
    const reply = await service.call('model.inspect', { modelDir: empty });
    expect(reply).toEqual({
      ok: false,
      error: { code: 'invalid_input', message: expect.stringContaining(join(empty, 'config.json')) },
    });
  });

  it('maps engine error codes to API error kinds, never by class name', () => {
    expect(replyError(new ModelError('/m/config.json', 'bad'))).toEqual({
      code: 'invalid_input',
      message: '/m/config.json: bad',
    });
    expect(replyError(new ApiError('host_down', 'gone'))).toEqual({ code: 'host_down', message: 'gone' });
    expect(replyError(new EigCancelledError()).code).toBe('conflict');
    expect(replyError(Object.assign(new Error('ENOSPC: no space left'), { code: 'ENOSPC' })).code).toBe('io');
    const oom = Object.assign(new Error('memory access out of bounds'), { name: 'RuntimeError' });
    expect(replyError(oom)).toEqual({
      code: 'out_of_memory',
      message: expect.stringMatching(/^the run needs more memory .*enable gradient checkpointing$/),
    });
    // a class whose name merely looks like an input error is still a bug
    class SettingsError extends Error {
      override name = 'SettingsError';
    }
    expect(replyError(new SettingsError('x')).code).toBe('engine_error');
  });
});
