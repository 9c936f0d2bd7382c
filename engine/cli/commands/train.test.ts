import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { methodNames } from '../../adapters/registry.ts';
import { createStudioService } from '../../api/service.ts';
import { useTestBackend } from '../../backends/testing.ts';
import { readRunEvents } from '../../runs/index.ts';
import { startRun } from '../../training/run.ts';
import { runCli as run } from '../testing.ts';

const FIXTURES = join(import.meta.dirname, '..', '..', 'models', 'fixtures');

function lmData(dir: string): string {
  const path = join(dir, 'train.jsonl');
  const rows = ['red', 'green', 'blue', 'gold'].map((c) =>
    JSON.stringify({ prompt: `sky is`, completion: ` ${c} and ${c}` }),
  );
  writeFileSync(path, `${rows.join('\n')}\n`);
  return path;
}

/** Named labels, or numeric ids (a binary task on a checkpoint's 3-way head, as TLoRA trains on MNLI's). */
function clsData(dir: string, numeric: boolean): string {
  const path = join(dir, 'train.csv');
  const [pos, neg] = numeric ? ['1', '0'] : ['pos', 'neg'];
  const rows = [
    'sentence,label',
    `"good, fine",${pos}`,
    `bad bad,${neg}`,
    `"very ""good""",${pos}`,
    `awful,${neg}`,
  ];
  writeFileSync(path, `${rows.join('\n')}\n`);
  return path;
}

function stepLosses(out: string): number[] {
  return out
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l))
    .filter((e) => e.type === 'step')
    .map((e) => e.loss);
}

beforeAll(async () => {
  await useTestBackend();
});

const cases: [string, 'causal-lm' | 'seq-cls'][] = [
  ['gpt2', 'causal-lm'],
  ['llama', 'causal-lm'],
  ['qwen2', 'causal-lm'],
  ['mistral', 'causal-lm'],
  ['bert', 'seq-cls'],
  ['roberta', 'seq-cls'],
  ['gpt2-cls', 'seq-cls'],
  ['llama-cls', 'seq-cls'],
];

describe('studio init + train on every fixture architecture', () => {
  it.each(cases)('%s (%s): loss goes down on a tiny overfit set', async (fixture, task) => {
    const dir = mkdtempSync(join(tmpdir(), `studio-cli-${fixture}-`));
    const data = task === 'seq-cls' ? clsData(dir, fixture === 'roberta') : lmData(dir);
    const project = join(dir, 'proj');
    const init = await run([
      'init',
      project,
      '--model',
      join(FIXTURES, fixture),
      '--data',
      data,
      '--task',
      task,
      '--method',
      'lora',
      '--r',
      '4',
      '--target-modules',
      'all-linear',
      '--learning-rate',
      '0.05',
      '--batch-size',
      '4',
      '--max-steps',
      '12',
      '--schedule',
      'constant',
      '--max-seq-len',
      '16',
      '--checkpoint-every',
      '0',
    ]);
    expect(init.err).toBe('');
    expect(init.code).toBe(0);
    if (task === 'seq-cls') expect(init.out).toMatch(/labels {3}(0=neg 1=(neu 2=)?pos|0=0 1=1 2=2)/);
    const train = await run(['train', project, '--json', '--backend', 'current', '--no-analysis']);
    expect(train.err).toBe('');
    expect(train.code).toBe(0);
    const losses = stepLosses(train.out);
    expect(losses.length).toBe(12);
    const first = (losses[0] + losses[1]) / 2;
    const last = (losses[10] + losses[11]) / 2;
    expect(last).toBeLessThan(first * 0.9);
  });
});

describe('every registered method trains through the same loop', () => {
  it.each(methodNames())('%s on llama: loss goes down', async (method) => {
    const dir = mkdtempSync(join(tmpdir(), `studio-cli-${method}-`));
    const project = join(dir, 'proj');
    const init = await run([
      'init',
      project,
      '--model',
      join(FIXTURES, 'llama'),
      '--data',
      lmData(dir),
      '--method',
      method,
      '--r',
      '2',
      '--learning-rate',
      '0.05',
      '--batch-size',
      '4',
      '--max-steps',
      '10',
      '--schedule',
      'constant',
      '--max-seq-len',
      '16',
      '--checkpoint-every',
      '0',
    ]);
    expect(init.err).toBe('');
    const train = await run(['train', project, '--json', '--backend', 'current', '--no-analysis']);
    expect(train.err).toBe('');
    const losses = stepLosses(train.out);
    expect(losses.length).toBe(10);
    expect((losses[8] + losses[9]) / 2).toBeLessThan((losses[0] + losses[1]) / 2);
  });
});

describe('CLI errors and preview', () => {
  it('names the file and line of bad data at init', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'studio-cli-bad-'));
    const path = join(dir, 'bad.jsonl');
    writeFileSync(path, '{"prompt":"a","completion":"b"}\n{"prompt": "oops"}\n');
    const r = await run(['init', join(dir, 'p'), '--model', join(FIXTURES, 'gpt2'), '--data', path]);
    expect(r.code).toBe(1);
    expect(r.err).toContain(`${path}:2: missing "completion"`);
  });

  it('refuses a method option of another method and an out-of-range setting', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'studio-cli-opt-'));
    const data = lmData(dir);
    const base = ['init', join(dir, 'p'), '--model', join(FIXTURES, 'gpt2'), '--data', data];
    const bad = await run([...base, '--learning-rate=-1']);
    expect(bad.code).toBe(1);
    expect(bad.err).toMatch(/training\.learningRate/);
    const wrongMethod = await run([...base, '--method', 'lora', '--r', 'x']);
    expect(wrongMethod.code).toBe(2);
  });

  it('previews tokens with the trained part marked', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'studio-cli-prev-'));
    const project = join(dir, 'p');
    await run(['init', project, '--model', join(FIXTURES, 'gpt2'), '--data', lmData(dir)]);
    const r = await run(['preview-data', project, '--n', '1']);
    expect(r.code).toBe(0);
    expect(r.out).toContain('sky is⟦ red and red<|endoftext|>⟧');
  });
});

function studio(
  args: string[],
  onLine?: (line: string, kill: () => void) => void,
): Promise<{ code: number | null; signal: NodeJS.Signals | null; out: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      process.execPath,
      [join(import.meta.dirname, '..', '..', '..', 'bin', 'studio.mjs'), ...args],
      {
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let out = '';
    let pending = '';
    child.stdout.on('data', (chunk: Buffer) => {
      out += chunk;
      pending += chunk;
      const lines = pending.split('\n');
      pending = lines.pop()!;
      for (const line of lines) onLine?.(line, () => child.kill('SIGKILL'));
    });
    child.stderr.resume();
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ code, signal, out }));
  });
}

describe('resume after SIGKILL', () => {
  it('continues from the last checkpoint and reproduces the uninterrupted losses', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'studio-cli-kill-'));
    const init = (name: string) =>
      run([
        'init',
        join(dir, name),
        '--model',
        join(FIXTURES, 'llama'),
        '--data',
        lmData(dir),
        '--r',
        '2',
        '--dropout',
        '0.1',
        '--batch-size',
        '2',
        '--grad-accum-steps',
        '2',
        '--learning-rate',
        '0.02',
        '--schedule',
        'cosine',
        '--warmup-steps',
        '2',
        '--max-steps',
        '12',
        '--checkpoint-every',
        '3',
        '--max-seq-len',
        '16',
        '--backend',
        'wasm',
      ]);
    await init('straight');
    await init('killed');
    const straight = await studio(['train', join(dir, 'straight'), '--json', '--no-analysis']);
    expect(straight.code).toBe(0);
    const reference = stepLosses(straight.out);
    expect(reference.length).toBe(12);

    let runDir = '';
    const killed = await studio(['train', join(dir, 'killed'), '--json', '--no-analysis'], (line, kill) => {
      const e = JSON.parse(line);
      if (e.type === 'checkpoint-saved') {
        runDir = join(e.path, '..', '..');
        kill();
      }
    });
    expect(killed.signal).toBe('SIGKILL');
    const resumed = await studio(['resume', runDir, '--json', '--no-analysis']);
    expect(resumed.code).toBe(0);
    const events = await readRunEvents(runDir);
    const losses = events.flatMap((e) => (e.type === 'step' ? [e.loss] : []));
    expect(events.filter((e) => e.type === 'step').map((e) => e.step)).toEqual(
      Array.from({ length: 12 }, (_, i) => i + 1),
    );
    for (let i = 0; i < 12; i++) expect(Math.abs(losses[i] - reference[i])).toBeLessThanOrEqual(1e-6);
  }, 300_000);
});

describe('a killed trainer and a second trainer', () => {
  const settings = (maxSteps: number) => [
    '--r',
    '2',
    '--batch-size',
    '2',
    '--max-steps',
    String(maxSteps),
    '--checkpoint-every',
    '3',
    '--max-seq-len',
    '16',
    '--eval-every',
    '0',
    '--exact-match-examples',
    '0',
    '--backend',
    'wasm',
  ];

  it('after kill -9: every reported step is on disk; opening the run makes it interrupted and removes the leftovers; resume logs each step once', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'studio-cli-crash-'));
    const project = join(dir, 'p');
    expect(
      (
        await run([
          'init',
          project,
          '--model',
          join(FIXTURES, 'gpt2'),
          '--data',
          lmData(dir),
          ...settings(40),
        ])
      ).code,
    ).toBe(0);
    let runDir = '';
    let reported = 0;
    const killed = await studio(['train', project, '--json', '--no-analysis'], (line, kill) => {
      const e = JSON.parse(line);
      if (e.type === 'run-started') runDir = join(project, 'runs', e.runId);
      if (e.type === 'step' && e.step === 5) {
        reported = e.step;
        kill();
      }
    });
    expect(killed.signal).toBe('SIGKILL');
    // what the trainer reported before it died is in the log (appended and flushed before it was reported)
    const logged = (await readRunEvents(runDir)).filter((e) => e.type === 'step').map((e) => e.step);
    expect(logged.slice(0, reported)).toEqual([1, 2, 3, 4, 5]);
    const before = JSON.parse(readFileSync(join(runDir, 'run.json'), 'utf8'));
    expect(before.status).toBe('running');
    const pid = Number(readFileSync(join(runDir, 'run.lock'), 'utf8'));
    // a checkpoint the process was writing when it died
    const half = join(runDir, 'checkpoints', `.step-99.${pid}.0badc0de.tmp`);
    mkdirSync(half);
    writeFileSync(join(half, 'adapter.safetensors'), 'half');

    const service = createStudioService({ configDir: join(dir, 'config') });
    try {
      const reply = await service.call('runs.list', { projectDir: project });
      expect(reply).toMatchObject({
        ok: true,
        result: [{ dir: runDir, status: 'interrupted', live: false }],
      });
    } finally {
      await service.dispose();
    }
    expect(JSON.parse(readFileSync(join(runDir, 'run.json'), 'utf8')).status).toBe('interrupted');
    const left = readdirSync(runDir);
    expect(left).not.toContain('run.lock');
    expect(left).not.toContain('.space-reserve');
    expect(readdirSync(join(runDir, 'checkpoints')).filter((n) => n.startsWith('.'))).toEqual([]);

    const resumed = await run(['resume', runDir, '--json', '--no-analysis', '--max-steps', '20']);
    expect(resumed.code).toBe(0);
    const steps = (await readRunEvents(runDir)).filter((e) => e.type === 'step').map((e) => e.step);
    expect(steps).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
  }, 300_000);

  it('a second trainer on the same project or run is refused, naming the live run and its pid (CLI and API alike)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'studio-cli-lock-'));
    const project = join(dir, 'p');
    await run(['init', project, '--model', join(FIXTURES, 'gpt2'), '--data', lmData(dir), ...settings(6)]);
    const first = await startRun(project, { backend: 'current' });
    const paused = new Promise<void>((resolve) =>
      first.on('event', (e) => {
        if (e.type === 'step' && e.step === 1) first.pause();
        if (e.type === 'paused') resolve();
      }),
    );
    await paused;
    const refusal = `${project}: run ${first.runId} is being trained by process ${process.pid}`;
    const cli = await run(['train', project, '--no-analysis']);
    expect(cli.code).toBe(1);
    expect(cli.err).toContain(refusal);
    const service = createStudioService({ configDir: join(dir, 'config') });
    try {
      const api = await service.call('runs.start', { projectDir: project, overrides: {} });
      expect(api).toMatchObject({ ok: false, error: { message: expect.stringContaining(refusal) } });
    } finally {
      await service.dispose();
    }
    const again = await run(['resume', first.runDir, '--no-analysis']);
    expect(again.code).toBe(1);
    expect(again.err).toContain(
      `${first.runDir}: run ${first.runId} is being trained by process ${process.pid}`,
    );
    expect(readdirSync(join(project, 'runs'))).toEqual([first.runId]);
    first.resume();
    expect((await first.done).status).toBe('completed');
  });
});
