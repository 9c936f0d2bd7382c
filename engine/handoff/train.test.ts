import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, expect, test } from 'vitest';
import { parseEventLog } from '../common/train-events.ts';
import { pythonOrSkip } from '../testing/python.ts';
import { writeHandoff } from './index.ts';
import { demoProject } from './testing.ts';

const roots: string[] = [];
afterAll(() => {
  for (const root of roots) rmSync(root, { recursive: true, force: true });
});

test('the handed-off train.py trains the LoRA demo project for 2 steps on CPU with the real libraries', async () => {
  const python = pythonOrSkip(['torch', 'transformers', 'peft', 'trl', 'datasets']);
  if (!python) return;
  const { root, project } = await demoProject(
    { name: 'lora', config: { r: 4, loraAlpha: 8, targetModules: ['q_proj', 'v_proj'] } },
    { batchSize: 4, checkpointEvery: 1, evalEvery: 2 },
  );
  roots.push(root);
  const out = join(root, 'handoff');
  await writeHandoff(project, out);
  const run = spawnSync(python, ['train.py', '--max-steps', '2'], {
    cwd: out,
    encoding: 'utf8',
    env: { ...process.env, CUDA_VISIBLE_DEVICES: '', TOKENIZERS_PARALLELISM: 'false', HF_HUB_OFFLINE: '1' },
    timeout: 240_000,
  });
  expect(run.status, run.stderr.slice(-3000)).toBe(0);
  const output = join(out, 'output');
  for (const file of ['adapter_model.safetensors', 'adapter_config.json', 'trainer_state.json'])
    expect(existsSync(join(output, file)), file).toBe(true);
  const config = JSON.parse(readFileSync(join(output, 'adapter_config.json'), 'utf8'));
  expect(config).toMatchObject({ peft_type: 'LORA', r: 4, lora_alpha: 8, task_type: 'CAUSAL_LM' });
  expect([...config.target_modules].sort()).toEqual(['q_proj', 'v_proj']);
  const metricsFile = join(output, 'metrics.jsonl');
  const events = parseEventLog(readFileSync(metricsFile, 'utf8'), metricsFile);
  expect(events.map((e) => e.type)).toEqual([
    'run-started',
    'step',
    'checkpoint-saved',
    'step',
    'eval',
    'checkpoint-saved',
    'finished',
  ]);
  const steps = events.filter((e) => e.type === 'step');
  expect(steps.map((e) => e.step)).toEqual([1, 2]);
  expect(steps.every((e) => Number.isFinite(e.loss) && e.loss > 0)).toBe(true);
  expect(existsSync(join(output, 'checkpoint-2', 'adapter_model.safetensors'))).toBe(true);
}, 300_000);
