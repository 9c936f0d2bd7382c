import { promises as fs } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SettingField } from '../../common/contract.ts';
import { TrainingSettings } from '../../project/index.ts';
import { createStudioService, type StudioService } from '../service.ts';

const gpt2 = fileURLToPath(new URL('../../models/fixtures/gpt2', import.meta.url));
let work: string;
let service: StudioService;

beforeAll(async () => {
  work = await fs.mkdtemp(join(tmpdir(), 'studio-settings-'));
  await fs.writeFile(
    join(work, 'train.jsonl'),
    '{"prompt":"a:","completion":" b"}\n{"prompt":"c:","completion":" d"}\n',
  );
  service = createStudioService({ configDir: join(work, 'config') });
});
afterAll(async () => {
  await service.dispose();
  await fs.rm(work, { recursive: true, force: true });
});

async function ok<T>(method: string, payload: unknown = {}): Promise<T> {
  const reply = await service.call(method, payload);
  if (!reply.ok) throw new Error(`${method}: ${reply.error.message}`);
  return reply.result as T;
}

describe('studio settings', () => {
  it('remember the last opened project in the engine, until the user closes it', async () => {
    expect(await ok('settings.get')).toEqual({ lastProject: null });
    const dir = join(work, 'proj');
    await ok('projects.create', { dir, modelDir: gpt2, dataPath: join(work, 'train.jsonl') });
    expect(await ok('settings.get')).toEqual({ lastProject: dir });
    // a second engine on the same config folder (a restart, another window's host) knows it too
    const other = createStudioService({ configDir: join(work, 'config') });
    const reply = await other.call('settings.get', {});
    await other.dispose();
    expect(reply).toEqual({ ok: true, result: { lastProject: dir } });
    expect(await ok('settings.update', { lastProject: null })).toEqual({ lastProject: null });
    await ok('projects.open', { dir });
    expect(await ok('settings.get')).toEqual({ lastProject: dir });
  });

  it('read a damaged settings file as the defaults', async () => {
    await fs.writeFile(join(work, 'config', 'settings.json'), '{ torn');
    expect(await ok('settings.get')).toEqual({ lastProject: null });
  });
});

describe('training.describe', () => {
  it('gives every training setting a label, a group and the schema description as help', async () => {
    const { fields, groups } = await ok<{ fields: SettingField[]; groups: { id: string }[] }>(
      'training.describe',
    );
    expect(fields.map((f) => f.key).sort()).toEqual(Object.keys(TrainingSettings.shape).sort());
    expect(groups.map((g) => g.id)).toEqual([
      'data',
      'optimisation',
      'schedule',
      'evaluation',
      'checkpoints',
    ]);
    const lr = fields.find((f) => f.key === 'learningRate');
    expect(lr).toMatchObject({
      label: 'Learning rate',
      group: 'optimisation',
      advanced: false,
      help: 'peak learning rate of the adapter parameters',
      schema: { type: 'number', default: 2e-4 },
    });
    expect(fields.find((f) => f.key === 'maxSeqLen')).toMatchObject({ unit: 'tokens', group: 'data' });
    for (const f of fields) {
      expect(f.label, f.key).not.toBe(f.key);
      expect(f.help.length, f.key).toBeGreaterThan(5);
    }
  });
});
