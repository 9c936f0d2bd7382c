import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { probeWebGpu } from '../engine/backends/webgpu.ts';
import { pythonOrSkip } from '../engine/testing/python.ts';

/**
 * bench/gpu-device.sh is written for a GPU machine this suite never sees. What runs anywhere is tested here: its
 * arguments, the clean skip without a GPU, and (on a software adapter, at quick sizes, with a small Llama made
 * by transformers) every phase that does not need CUDA.
 */
const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const script = join(root, 'bench/gpu-device.sh');
const gpu = await probeWebGpu({ compat: true });
const hardware = gpu.available && !gpu.software;

function run(args: string[], env: Record<string, string | undefined> = {}) {
  const r = spawnSync('bash', [script, ...args], {
    encoding: 'utf8',
    env: { ...process.env, ...env },
    timeout: 600_000,
  });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

const summaryOf = (dir: string) => JSON.parse(readFileSync(join(dir, 'summary.json'), 'utf8'));

describe('bench/gpu-device.sh', () => {
  it('prints its usage, and rejects unknown or malformed arguments and a missing output folder', () => {
    const help = run(['--help']);
    expect(help.code).toBe(0);
    expect(help.out).toMatch(/^usage: bench\/gpu-device.sh --prepare/);
    for (const [args, message] of [
      [['--turbo'], /unknown argument '--turbo'/],
      [['--sizes', '1024,x'], /--sizes takes comma-separated positive integers, not '1024,x'/],
      [['--budget', '0'], /--budget must be a positive integer, not '0'/],
      [['--out'], /--out needs a value/],
    ] as const) {
      const r = run([...args]);
      expect(r.code).toBe(2);
      expect(r.err).toMatch(message);
    }
    const noOut = run([], { OUT: undefined });
    expect(noOut.code).toBe(2);
    expect(noOut.err).toMatch(/no output folder: pass --out DIR or set OUT/);
  });

  it.skipIf(hardware)('without a GPU, records why each phase was skipped and exits 0', () => {
    const out = mkdtempSync(join(tmpdir(), 'studio-gpu-device-'));
    // a Python without torch: the CUDA phases must skip too, whatever this machine has
    const r = run(['--out', out], { STUDIO_PYTHON: 'python3-without-torch' });
    expect(r.code).toBe(0);
    const s = summaryOf(out);
    for (const phase of ['check', 'train', 'gemm'])
      expect(s[phase].skipped).toBe('no hardware WebGPU adapter');
    for (const phase of ['peft', 'torch_gemm']) expect(s[phase].skipped).toBe('PyTorch sees no CUDA GPU');
    expect(readFileSync(join(out, 'summary.txt'), 'utf8')).toMatch(/^gpu-device summary/);
    expect(readFileSync(join(out, 'gpu-device.log'), 'utf8')).toMatch(
      /webgpu adapter measured: no; PyTorch CUDA: no/,
    );
  });

  it.skipIf(hardware || !gpu.available)(
    'on a software adapter with --allow-software-gpu: every WebGPU phase on a transformers-made Llama, PEFT’s parameter count',
    () => {
      const python = pythonOrSkip(['torch', 'transformers', 'peft']);
      if (!python) return;
      const out = mkdtempSync(join(tmpdir(), 'studio-gpu-device-'));
      const r = run(
        ['--out', out, '--quick', '--allow-software-gpu', '--sizes', '128', '--seq', '64', '--budget', '400'],
        {
          STUDIO_PYTHON: python,
        },
      );
      expect(r.code).toBe(0);
      const s = summaryOf(out);
      expect(s.checkpoint.parameters).toBeGreaterThan(0);
      expect(s.check.ok).toBe(true);
      expect(s.gemm.rows.map((row: { variant: string }) => row.variant)).toContain('f32');
      expect(s.train).toMatchObject({ batch: 2, seq: 64, microBatch: 2 });
      expect(s.train.tokensPerSecond).toBeGreaterThan(0);
      expect(Math.abs(s.train.loss - Math.log(8192))).toBeLessThan(1);
      // the studio's LoRA r16 on every linear module trains as many parameters as PEFT's on the same checkpoint
      const model = join(out, 'model');
      spawnSync(python, [
        join(root, 'bench/torch_gpu.py'),
        'checkpoint',
        model,
        shapeOf(readFileSync(script, 'utf8')),
      ]);
      const peft = spawnSync(python, [join(root, 'bench/torch_gpu.py'), 'peft', model, '1', '16', '1'], {
        encoding: 'utf8',
      });
      expect(JSON.parse(peft.stdout.trim().split('\n').pop()!).trainable).toBe(s.train.trainable);
    },
    // several processes in a row (Python imports torch twice) on a machine shared with other work
    600_000,
  );
});

/** The small Llama shape of the script's quick mode. */
function shapeOf(source: string): string {
  const m = source.match(/SHAPE='(\{"num_hidden_layers".*?\})'/);
  if (!m) throw new Error('quick-mode SHAPE not found in bench/gpu-device.sh');
  return m[1];
}
