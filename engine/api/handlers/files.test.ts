import { promises as fs } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BrowseListing, DatasetInfo } from '../../common/contract.ts';
import { createStudioService, type StudioService } from '../service.ts';

const gpt2 = fileURLToPath(new URL('../../models/fixtures/gpt2', import.meta.url));
let work: string;
let home: string;
let service: StudioService;
const saved = { HOME: process.env.HOME, STUDIO_PROJECTS_DIR: process.env.STUDIO_PROJECTS_DIR };

beforeAll(async () => {
  work = await fs.mkdtemp(join(tmpdir(), 'studio-files-'));
  home = join(work, 'home');
  await fs.mkdir(join(home, 'models'), { recursive: true });
  await fs.mkdir(join(home, '.hidden'));
  await fs.mkdir(join(home, 'broken-model'));
  await fs.writeFile(join(home, 'broken-model', 'config.json'), '{ not json');
  await fs.cp(gpt2, join(home, 'models', 'gpt2'), { recursive: true });
  const rows = Array.from({ length: 10 }, (_, i) =>
    JSON.stringify({ prompt: `q${i}`, completion: ` a${i}` }),
  );
  await fs.writeFile(join(home, 'train.jsonl'), `${rows.join('\n')}\n\n`);
  await fs.writeFile(join(home, 'labels.csv'), 'sentence,label\n"a, b",pos\nc,neg\n');
  await fs.writeFile(join(home, 'notes.txt'), 'not a dataset');
  await fs.mkdir(join(work, 'outside'));
  process.env.HOME = home;
  process.env.STUDIO_PROJECTS_DIR = join(home, 'AdapterStudio');
  service = createStudioService({ configDir: join(work, 'config') });
});
afterAll(async () => {
  await service.dispose();
  process.env.HOME = saved.HOME;
  process.env.STUDIO_PROJECTS_DIR = saved.STUDIO_PROJECTS_DIR;
  await fs.rm(work, { recursive: true, force: true });
});

async function call<T>(method: string, payload: unknown) {
  const reply = await service.call(method, payload);
  return reply as { ok: true; result: T } | { ok: false; error: { code: string; message: string } };
}

describe('files.list', () => {
  it('lists the home folder: folders first, model folders with architecture and size, datasets with rows', async () => {
    const reply = await call<BrowseListing>('files.list', {});
    if (!reply.ok) throw new Error(reply.error.message);
    const listing = reply.result;
    expect(listing.dir).toBe(home);
    expect(listing.parent).toBeNull();
    expect(listing.roots[0]).toEqual({ label: 'Home', path: home });
    expect(listing.entries.map((e) => [e.name, e.kind])).toEqual([
      ['broken-model', 'model'],
      ['models', 'dir'],
      ['labels.csv', 'dataset'],
      ['train.jsonl', 'dataset'],
    ]);
    expect(listing.omitted).toBe(1);
    const broken = listing.entries[0];
    expect(broken.problem).toMatch(/broken-model\/config\.json/);
    expect(listing.entries[2].dataset).toMatchObject({ format: 'csv', rows: 2 });
    expect(listing.entries[3].dataset).toMatchObject({ format: 'jsonl', rows: 10 });

    const models = await call<BrowseListing>('files.list', { dir: join(home, 'models') });
    if (!models.ok) throw new Error(models.error.message);
    expect(models.result.parent).toBe(home);
    const size = (await fs.stat(join(gpt2, 'model.safetensors'))).size;
    expect(models.result.entries).toEqual([
      {
        name: 'gpt2',
        path: join(home, 'models', 'gpt2'),
        kind: 'model',
        model: { architecture: 'GPT2LMHeadModel', modelType: 'gpt2', sizeBytes: size },
      },
    ]);
  });

  it('refuses folders outside the allowed roots, also through ..', async () => {
    for (const dir of [join(work, 'outside'), join(home, '..', 'outside'), '/etc']) {
      const reply = await call('files.list', { dir });
      expect(reply.ok).toBe(false);
      if (!reply.ok) {
        expect(reply.error.code).toBe('invalid_input');
        expect(reply.error.message).toMatch(/outside the folders the studio may browse/);
      }
    }
  });

  it("allows the open project's parent folder", async () => {
    const project = join(work, 'outside', 'proj');
    const created = await call('projects.create', {
      dir: project,
      modelDir: join(home, 'models', 'gpt2'),
      dataPath: join(home, 'train.jsonl'),
    });
    expect(created.ok).toBe(true);
    const reply = await call<BrowseListing>('files.list', {
      dir: join(work, 'outside'),
      projectDir: project,
    });
    if (!reply.ok) throw new Error(reply.error.message);
    expect(reply.result.entries.map((e) => [e.name, e.kind])).toEqual([['proj', 'project']]);
  });
});

describe('projects.create from picked paths', () => {
  it('names the missing config.json of a model folder as bad input, not an engine failure', async () => {
    const reply = await call('projects.create', {
      dir: join(home, 'p2'),
      modelDir: join(home, 'no-such-model'),
      dataPath: join(home, 'train.jsonl'),
    });
    expect(reply).toMatchObject({
      ok: false,
      error: {
        code: 'invalid_input',
        message: expect.stringContaining(join(home, 'no-such-model', 'config.json')),
      },
    });
  });
});

describe('files.dataset', () => {
  it('counts the examples and shows the split training would make', async () => {
    const reply = await call<DatasetInfo>('files.dataset', {
      path: join(home, 'train.jsonl'),
      valFraction: 0.2,
    });
    if (!reply.ok) throw new Error(reply.error.message);
    expect(reply.result).toMatchObject({
      format: 'jsonl',
      examples: 10,
      split: { train: 8, validation: 2, fraction: 0.2, seed: 0 },
    });
    const whole = await call<DatasetInfo>('files.dataset', { path: join(home, 'train.jsonl') });
    expect(whole.ok && whole.result.split).toBeNull();
  });

  it('names the file and line of a malformed record', async () => {
    await fs.writeFile(join(home, 'bad.jsonl'), '{"prompt":"a","completion":"b"}\n{oops\n');
    const reply = await call('files.dataset', { path: join(home, 'bad.jsonl') });
    expect(reply.ok).toBe(false);
    if (!reply.ok) expect(reply.error.message).toMatch(/bad\.jsonl.*2|line 2/);
  });
});
