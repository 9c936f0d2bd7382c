import { mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { useTestBackend } from '../../backends/testing.ts';
import { runCli as run } from '../testing.ts';

const FIXTURES = join(import.meta.dirname, '..', '..', 'models', 'fixtures');
const dir = mkdtempSync(join(tmpdir(), 'studio-cli-try-'));
const training = ['--max-steps', '2', '--batch-size', '2', '--max-seq-len', '16', '--backend', 'wasm'];

/** A project on a fixture model with one finished run; returns the project and the run folder. */
async function trained(
  fixture: string,
  data: string,
  task: string,
): Promise<{ project: string; runDir: string }> {
  const project = join(dir, fixture);
  const init = await run([
    'init',
    project,
    '--model',
    join(FIXTURES, fixture),
    '--data',
    data,
    '--task',
    task,
  ]);
  expect(init.code, init.err).toBe(0);
  const train = await run(['train', project, ...training]);
  expect(train.code, train.err).toBe(0);
  const [id] = readdirSync(join(project, 'runs'));
  return { project, runDir: join(project, 'runs', id) };
}

beforeAll(async () => {
  await useTestBackend();
  writeFileSync(
    join(dir, 'lm.jsonl'),
    ['red', 'blue'].map((c) => JSON.stringify({ prompt: 'sky is', completion: ` ${c}` })).join('\n'),
  );
  writeFileSync(join(dir, 'cls.csv'), 'sentence,label\ngood,pos\nbad,neg\nfine,pos\nawful,neg\n');
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('studio try and studio runs', () => {
  it('generates with the base model and the adapter, then lists and deletes the run', async () => {
    const { project, runDir } = await trained('gpt2', join(dir, 'lm.jsonl'), 'causal-lm');
    const text = await run(['try', runDir, 'sky is', '--max-new-tokens', '3']);
    expect(text.code, text.err).toBe(0);
    expect(text.out).toMatch(/^checkpoint .*step-2/);
    expect(text.out).toMatch(
      /\nbase {5}".*" {2}\(3 tokens, \d+ ms\)\nadapted {2}".*" {2}\(3 tokens, \d+ ms\)$/,
    );
    const json = JSON.parse((await run(['try', runDir, 'sky is', '--max-new-tokens', '2', '--json'])).out);
    expect(json.adapted.tokens).toBe(2);

    const list = await run(['runs', 'list', project]);
    expect(list.out.split('\n')[0]).toMatch(/^run\s+status\s+method\s+step\s+loss\s+created$/);
    expect(list.out).toMatch(/completed\s+lora\s+2\/2/);
    expect(await run(['runs', 'delete', runDir])).toMatchObject({ code: 0, out: `deleted ${runDir}` });
    expect((await run(['runs', 'list', project])).out).toBe(`no runs in ${project}`);
    const missing = await run(['runs', 'delete', runDir]);
    expect(missing.code).not.toBe(0);
    expect(missing.err).toMatch(/run\.json/);
  });

  it('classifies with the base model and the adapter for a classifier run', async () => {
    const { runDir } = await trained('gpt2-cls', join(dir, 'cls.csv'), 'seq-cls');
    const text = await run(['try', runDir, 'good']);
    expect(text.code, text.err).toBe(0);
    // the label with the highest probability, then every label's probability
    expect(text.out).toMatch(/\nbase {5}\w+ {2}\(.*pos \d\.\d{3}.*\)\nadapted {2}\w+ {2}\(.*neg \d\.\d{3}/);
  });
});
