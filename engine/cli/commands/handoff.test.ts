import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import { runCli as run } from '../testing.ts';

const root = mkdtempSync(join(tmpdir(), 'studio-cli-handoff-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

async function init(name: string, method: string, extra: string[] = []): Promise<string> {
  const dir = join(root, name);
  const made = await run([
    'init',
    dir,
    '--model',
    'assets/demo/model',
    '--data',
    'assets/demo/data/train.jsonl',
    '--method',
    method,
    ...extra,
  ]);
  expect(made.code, made.err).toBe(0);
  return dir;
}

describe('studio handoff', () => {
  test('writes the folder for a VeRA project with ZeRO-3', async () => {
    const project = await init('vera', 'vera');
    const out = join(root, 'vera-out');
    const result = await run(['handoff', project, '--out', out, '--strategy', 'zero3', '--json']);
    expect(result.code, result.err).toBe(0);
    expect(JSON.parse(result.out)).toMatchObject({ outDir: out, strategy: 'zero3' });
    expect(readFileSync(join(out, 'accelerate-config.yaml'), 'utf8')).toContain('zero_stage: 3');
    expect(JSON.parse(readFileSync(join(out, 'handoff.json'), 'utf8')).peft.className).toBe('VeraConfig');
  });

  test('refuses an unknown strategy and a MoSLoRA project, writing nothing', async () => {
    const project = await init('moslora', 'moslora');
    const out = join(root, 'moslora-out');
    const bad = await run(['handoff', project, '--out', out, '--strategy', 'zero1']);
    expect(bad.code).not.toBe(0);
    expect(bad.err).toContain('--strategy must be one of ddp, fsdp, zero2, zero3');
    const refused = await run(['handoff', project, '--out', out]);
    expect(refused.code).toBe(1);
    expect(refused.err).toMatch(/studio handoff: method "moslora" has no PEFT implementation/);
    expect(existsSync(out)).toBe(false);
  });
});
