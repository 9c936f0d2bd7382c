import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { RunStatusSchema } from '../common/contract.ts';
import { PROJECT_SCHEMA_VERSION } from '../common/project-schema.ts';
import {
  createProject,
  openProject,
  parseProjectSettings,
  type RunRecord,
  RunStatus,
  readRunRecord,
  withTrainingOverrides,
  writeRunRecord,
} from './store.ts';

const FIXTURES = join(import.meta.dirname, '..', 'models', 'fixtures');

function data(dir: string): string {
  const path = join(dir, 'train.csv');
  writeFileSync(path, 'sentence,label\nyes,pos\nno,neg\nfine,pos\n');
  return path;
}

const minimal = {
  schemaVersion: PROJECT_SCHEMA_VERSION,
  name: 'p',
  model: 'm',
  task: 'causal-lm',
  data: { train: 'd.jsonl' },
  method: { name: 'lora', config: {} },
};

describe('project.json', () => {
  it('creates a project with relative paths, recorded labels and the parsed method config', async () => {
    const root = mkdtempSync(join(tmpdir(), 'studio-project-'));
    const dir = join(root, 'proj');
    const project = await createProject(dir, {
      model: join(FIXTURES, 'bert'),
      task: 'seq-cls',
      data: { train: data(root), valFraction: 0.34 },
      method: { name: 'lora', config: { r: 2 } },
      training: { learningRate: 1e-3 },
    });
    const written = JSON.parse(readFileSync(join(dir, 'project.json'), 'utf8'));
    expect(written.data.train).toBe('../train.csv');
    expect(written.data.labels).toEqual(['neg', 'pos']);
    expect(written.method.config.r).toBe(2);
    expect(written.method.config.loraAlpha).toBe(8);
    expect(written.training.batchSize).toBe(8);
    const reopened = await openProject(dir);
    expect(reopened.settings).toEqual(project.settings);
    await expect(
      createProject(dir, {
        model: join(FIXTURES, 'bert'),
        task: 'seq-cls',
        data: { train: data(root) },
        method: { name: 'lora' },
      }),
    ).rejects.toThrow('a project already exists here');
  });

  it('refuses newer and unknown schema versions with the reason', () => {
    expect(() => parseProjectSettings({ ...minimal, schemaVersion: 99 }, 'x/project.json')).toThrow(
      'x/project.json: schemaVersion 99 was written by a newer Adapter Studio',
    );
    expect(() => parseProjectSettings({ ...minimal, schemaVersion: undefined }, 'x/project.json')).toThrow(
      'missing "schemaVersion"',
    );
    expect(() => parseProjectSettings({ ...minimal, schemaVersion: 0 }, 'x/project.json')).toThrow(
      'cannot be read',
    );
  });

  it('validates settings and the method config through their schemas', () => {
    expect(() => parseProjectSettings({ ...minimal, training: { learningRate: 0 } }, 'p.json')).toThrow(
      /p\.json: invalid project: training\.learningRate/,
    );
    expect(() => parseProjectSettings({ ...minimal, training: { learnRate: 1 } }, 'p.json')).toThrow(
      /learnRate/,
    );
    expect(() =>
      parseProjectSettings({ ...minimal, method: { name: 'lora', config: { r: 0 } } }, 'p.json'),
    ).toThrow(/p\.json: invalid lora config: r: r must be at least 1/);
    expect(() =>
      parseProjectSettings({ ...minimal, data: { train: 'a', validation: 'b', valFraction: 0.1 } }, 'p.json'),
    ).toThrow('either a validation file or a validation fraction');
    const settings = parseProjectSettings(minimal, 'p.json');
    expect(withTrainingOverrides(settings, { maxSteps: 5 }).training.maxSteps).toBe(5);
    expect(() => withTrainingOverrides(settings, { batchSize: -1 })).toThrow('batchSize');
  });

  it('names a missing project', async () => {
    await expect(openProject(join(tmpdir(), 'no-such-project'))).rejects.toThrow('not a project folder');
  });
});

describe('run.json status', () => {
  const record = (status: string) => ({
    schemaVersion: 1,
    runId: 'r',
    config: parseProjectSettings(minimal, 'p.json'),
    status,
    totalSteps: 4,
    step: 0,
    backend: 'cpu',
    createdAt: '2025-01-01T00:00:00.000Z',
    updatedAt: '2025-01-01T00:00:00.000Z',
    trainSeconds: 0,
    lastCheckpoint: null,
  });

  it("uses the API's vocabulary", () => {
    expect(RunStatus.options).toEqual(RunStatusSchema.options);
  });

  it('reads the words older run.json files used as the current ones, and refuses unknown words', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'studio-run-status-'));
    for (const [old, now] of [
      ['created', 'pending'],
      ['finished', 'completed'],
      ['interrupted', 'interrupted'],
    ]) {
      writeFileSync(join(dir, 'run.json'), JSON.stringify(record(old)));
      expect((await readRunRecord(dir)).status).toBe(now);
    }
    writeFileSync(join(dir, 'run.json'), JSON.stringify(record('done')));
    await expect(readRunRecord(dir)).rejects.toThrow(/run\.json: invalid run record: status/);
    await writeRunRecord(dir, { ...record('completed'), status: 'completed' } as RunRecord);
    expect(JSON.parse(readFileSync(join(dir, 'run.json'), 'utf8')).status).toBe('completed');
  });
});
