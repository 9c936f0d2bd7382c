import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect, test } from 'vitest';
import { runCli as run } from '../testing.ts';

const root = mkdtempSync(join(tmpdir(), 'studio-cli-import-run-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

test('studio import-run refuses a folder without an adapter in one line naming it', async () => {
  const project = join(root, 'project');
  const made = await run([
    'init',
    project,
    '--model',
    'assets/demo/model',
    '--data',
    'assets/demo/data/train.jsonl',
  ]);
  expect(made.code, made.err).toBe(0);
  const job = join(root, 'job');
  mkdirSync(join(job, 'output'), { recursive: true });
  const refused = await run(['import-run', job, '--project', project]);
  expect(refused.code).toBe(1);
  expect(refused.err.trim().split('\n')).toEqual([
    `studio import-run: ${job}: no adapter_config.json and no checkpoint-<step>/ here or in output/ (a finished hand-off job leaves adapter_config.json, adapter_model.safetensors and trainer_state.json in its output folder; one stopped early, its checkpoints)`,
  ]);
});
