import { spawn } from 'node:child_process';
import { promises as fs, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { BenchRow, BenchSection } from '../types.ts';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

interface Summary {
  probe: {
    probe?: { available: boolean; software: boolean; reason: string };
    error?: string;
    skipped?: string;
  };
  gemm: { rows?: { variant: string; n: number; ms: number; tflops: number }[] };
  torch_gemm: {
    device?: string;
    torch?: string;
    rows?: { dtype: string; n: number; ms: number; tflops: number }[];
  };
  check: { results?: { check: string; ok: boolean }[] };
  train: {
    tokensPerSecond?: number;
    batch?: number;
    seq?: number;
    microBatch?: number;
    stepSeconds?: number;
    loss?: number;
    error?: string;
  };
  peft: {
    tokensPerSecond?: number;
    batch?: number;
    seq?: number;
    stepSeconds?: number;
    torch?: string;
    peft?: string;
    device?: string;
    error?: string;
  };
  ratio?: number;
}

/**
 * The GPU section runs bench/gpu-device.sh, the one script that measures the GPU path (also on lent GPU
 * machines), and turns its summary into rows. Without a hardware WebGPU adapter and without CUDA it says so in
 * one row; a software adapter is measured only with --allow-software-gpu, and then at quick sizes.
 */
export const section: BenchSection = {
  name: 'gpu',
  title:
    'GPU (WebGPU): GEMM TFLOP/s (f32, f16, subgroup matrix) at 1024–8192; LoRA r16 all-linear training on a Llama-3.2-1B shape at 8×512 beside transformers + PEFT (bf16) on the same GPU',
  async run(ctx) {
    const out = mkdtempSync(join(tmpdir(), 'studio-bench-gpu-'));
    const software = process.argv.includes('--allow-software-gpu');
    const args = [join(root, 'bench/gpu-device.sh'), '--out', out];
    if (ctx.quick || software) args.push('--quick');
    if (software) args.push('--allow-software-gpu', '--sizes', '256,512');
    try {
      const code = await new Promise<number>((resolve) => {
        const child = spawn('bash', args, { stdio: ['ignore', 'pipe', 'pipe'] });
        let pending = '';
        const forward = (chunk: Buffer) => {
          pending += chunk.toString();
          const lines = pending.split('\n');
          pending = lines.pop() ?? '';
          for (const line of lines) if (line && !line.startsWith('Warning:')) ctx.log(`gpu: ${line}`);
        };
        child.stdout.on('data', forward);
        child.stderr.on('data', forward);
        child.on('close', (status) => resolve(status ?? 1));
      });
      if (code !== 0) throw new Error(`bench/gpu-device.sh exited with ${code}`);
      return rowsOf(JSON.parse(readFileSync(join(out, 'summary.json'), 'utf8')) as Summary);
    } finally {
      await fs.rm(out, { recursive: true, force: true });
    }
  },
};

function rowsOf(s: Summary): BenchRow[] {
  const probe = s.probe.probe;
  const measured = (s.gemm.rows?.length ?? 0) > 0 || s.train.tokensPerSecond || s.peft.tokensPerSecond;
  if (!measured) {
    const why = probe?.reason ?? s.probe.error ?? s.probe.skipped ?? 'no GPU';
    return [
      {
        name: 'GPU section',
        config: 'webgpu, PyTorch CUDA',
        value: Number.NaN,
        unit: '',
        details: {
          skipped: `no GPU to measure: ${why}${probe?.software ? ' (--allow-software-gpu measures it at quick sizes)' : ''}; PyTorch sees no CUDA GPU`,
        },
      },
    ];
  }
  const rows: BenchRow[] = [];
  for (const r of s.gemm.rows ?? []) {
    rows.push({
      name: `GEMM ${r.n}³ A·Bᵀ`,
      config: `webgpu ${r.variant}`,
      value: Number(r.tflops.toFixed(3)),
      unit: 'TFLOP/s',
      details: { ms: Number(r.ms.toFixed(3)) },
    });
  }
  for (const r of s.torch_gemm.rows ?? []) {
    rows.push({
      name: `GEMM ${r.n}³ A·Bᵀ`,
      config: `PyTorch ${s.torch_gemm.torch} ${r.dtype}`,
      value: Number(r.tflops.toFixed(3)),
      unit: 'TFLOP/s',
      details: { ms: Number(r.ms.toFixed(3)) },
    });
  }
  const checks = s.check.results ?? [];
  if (checks.length) {
    rows.push({
      name: 'on-device kernel checks within tolerance',
      config: 'webgpu',
      value: checks.filter((c) => c.ok).length,
      unit: `of ${checks.length}`,
    });
  }
  const name = 'LoRA r16 all-linear training';
  if (s.train.tokensPerSecond) {
    const t = s.train;
    rows.push({
      name,
      config: `studio webgpu, batch ${t.batch}×${t.seq} (micro-batches of ${t.microBatch})`,
      value: Math.round(t.tokensPerSecond!),
      unit: 'tokens/s',
      details: { stepSeconds: t.stepSeconds, loss: t.loss },
    });
  } else if (s.train.error) {
    rows.push({
      name,
      config: 'studio webgpu',
      value: Number.NaN,
      unit: 'tokens/s',
      details: { error: s.train.error },
    });
  }
  if (s.peft.tokensPerSecond) {
    const p = s.peft;
    rows.push({
      name,
      config: `transformers + PEFT ${p.peft} bf16 (torch ${p.torch}, ${p.device}), batch ${p.batch}×${p.seq}`,
      value: Math.round(p.tokensPerSecond!),
      unit: 'tokens/s',
      details: { stepSeconds: p.stepSeconds },
    });
  }
  if (s.ratio !== undefined)
    rows.push({
      name: 'studio / PEFT tokens per second',
      config: 'same GPU, same batch',
      value: Number(s.ratio.toFixed(3)),
      unit: '×',
    });
  return rows;
}
