import { spawnSync } from 'node:child_process';
import { promises as fs } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseProjectSettings } from '../project/store.ts';
import { recoverRun } from './recover.ts';

/** The id of a process that has exited. */
const deadPid = () =>
  spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))']).stdout.toString();

async function runFolder(status: string, lockPid: string | null): Promise<string> {
  const dir = await fs.mkdtemp(join(tmpdir(), 'recover-'));
  const config = parseProjectSettings(
    {
      schemaVersion: 1,
      name: 'p',
      model: 'm',
      task: 'causal-lm',
      data: { train: 'd.jsonl' },
      method: { name: 'lora' },
    },
    'p.json',
  );
  await fs.writeFile(
    join(dir, 'run.json'),
    JSON.stringify({
      schemaVersion: 1,
      runId: 'r',
      config,
      status,
      totalSteps: 8,
      step: 5,
      backend: 'cpu',
      createdAt: 'x',
      updatedAt: 'x',
      trainSeconds: 1,
      lastCheckpoint: null,
    }),
  );
  if (lockPid !== null) await fs.writeFile(join(dir, 'run.lock'), lockPid);
  await fs.mkdir(join(dir, 'checkpoints'));
  return dir;
}

describe('recoverRun', () => {
  it('a run whose trainer died: running becomes interrupted, its half-written files go, a replaced checkpoint comes back', async () => {
    const pid = deadPid();
    const dir = await runFolder('running', pid);
    const ck = join(dir, 'checkpoints');
    await fs.mkdir(join(ck, 'step-2'));
    await fs.mkdir(join(ck, `.step-6.${pid}.0badc0de.tmp`));
    await fs.writeFile(join(ck, `.step-6.${pid}.0badc0de.tmp`, 'adapter.safetensors'), 'half');
    // killed between moving the old step-4 aside and renaming the new one into place
    await fs.mkdir(join(ck, `.step-4.${pid}.12345678.tmp.old`));
    await fs.writeFile(join(dir, `.run.json.${pid}.abcdef01.tmp`), '{');
    await fs.writeFile(join(dir, '.space-reserve'), new Uint8Array(10));
    // a live process's temp file is not a leftover
    await fs.writeFile(join(dir, `.metrics.jsonl.${process.pid}.abcdef01.tmp`), '');

    expect((await recoverRun(dir)).status).toBe('interrupted');
    expect(JSON.parse(await fs.readFile(join(dir, 'run.json'), 'utf8')).status).toBe('interrupted');
    expect((await fs.readdir(ck)).sort()).toEqual(['step-2', 'step-4']);
    expect((await fs.readdir(dir)).sort()).toEqual([
      `.metrics.jsonl.${process.pid}.abcdef01.tmp`,
      'checkpoints',
      'run.json',
    ]);
  });

  it('leaves a run alone while a live process holds it, and a finished run keeps its status', async () => {
    const live = await runFolder('running', String(process.pid));
    expect((await recoverRun(live)).status).toBe('running');
    expect(await fs.readdir(live)).toContain('run.lock');
    const done = await runFolder('finished', deadPid());
    expect((await recoverRun(done)).status).toBe('completed');
    expect(await fs.readdir(done)).not.toContain('run.lock');
  });
});
