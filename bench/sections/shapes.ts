import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { findPython } from '../../engine/testing/python.ts';
import { bundleChild } from '../bundle.ts';
import {
  availableMemoryBytes,
  checkpointSize,
  diskFreeBytes,
  makeShape,
  writeFp32Copy,
} from '../shape-files.ts';
import {
  compare,
  fp32Folder,
  gb,
  type Measurement,
  measurementKey,
  memoryLine,
  memorySkip,
  planShape,
  type ShapeRun,
  type StepFigures,
  shapeRuns,
  shapesDir,
} from '../shapes.ts';
import { ratio2 } from '../targets.ts';
import type { BenchContext, BenchRow, BenchSection } from '../types.ts';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

type ChildOutcome = { json: Record<string, unknown> } | { error: string };

/** Runs one measuring child, relaying its `step …` progress lines, and parses the JSON line it ends with. */
function runChild(command: string, args: string[], label: string, ctx: BenchContext): Promise<ChildOutcome> {
  return new Promise((resolve) => {
    const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let partial = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      stdout += d;
    });
    child.stderr.setEncoding('utf8').on('data', (d: string) => {
      stderr += d;
      const lines = (partial + d).split('\n');
      partial = lines.pop() ?? '';
      for (const line of lines) if (line.startsWith('step ')) ctx.log(`shapes: ${label}: ${line}`);
    });
    child.on('error', (error) => resolve({ error: error.message }));
    child.on('close', (code, signal) => {
      const last = stdout.trim().split('\n').pop() ?? '';
      if (code === 0 && last.startsWith('{')) {
        resolve({ json: JSON.parse(last) as Record<string, unknown> });
        return;
      }
      const errorLine = stderr
        .trim()
        .split('\n')
        .filter((l) => /Error/.test(l))
        .pop();
      resolve({
        error:
          signal === 'SIGKILL'
            ? 'killed (SIGKILL: most likely out of memory)'
            : (errorLine ??
              (signal ? `killed by ${signal}` : `exit code ${code}: ${stderr.trim().split('\n').pop()}`)),
      });
    });
  });
}

const label = (m: Measurement) => `${m.side === 'studio' ? 'studio' : 'PEFT'} ${m.dtype}`;
const num = (x: unknown) => Number(x);

async function measureShape(
  run: ShapeRun,
  dir: string,
  studioChild: string,
  ctx: BenchContext,
): Promise<BenchRow[]> {
  const name = `${run.name} ${run.batch}×${run.seq}${run.checkpointing ? ', checkpointing' : ''}: tokens/s`;
  const bf16Dir = join(dir, run.name);
  const fp32Dir = fp32Folder(dir, run.name);
  const maker = findPython(['torch', 'transformers']);
  const peft = findPython(['torch', 'transformers', 'peft']);
  const plan = planShape(run, ctx.options.dtypes, {
    checkpoint: existsSync(join(bf16Dir, 'config.json')),
    fp32Copy: existsSync(join(fp32Dir, 'config.json')),
    maker,
    peft,
    diskFreeBytes: diskFreeBytes(dir),
  });
  if (plan.skip) {
    ctx.log(`shapes: ${run.name} skipped: ${plan.skip}`);
    return [
      {
        name,
        config: `every measurement (shapes folder ${dir})`,
        value: Number.NaN,
        unit: '',
        skipped: plan.skip,
      },
    ];
  }
  if (plan.make) {
    const error = makeShape(maker.python!, dir, run.name, ctx);
    if (error)
      return [{ name, config: 'every measurement', value: Number.NaN, unit: '', details: { error } }];
  }
  let fp32Error: string | undefined;
  if (plan.copyFp32) {
    ctx.log(`shapes: writing a float32 copy of ${run.name} to ${fp32Dir}`);
    try {
      await writeFp32Copy(bf16Dir, fp32Dir);
    } catch (error) {
      fp32Error = `float32 copy failed: ${(error as Error).message}`;
    }
  }
  const size = await checkpointSize(bf16Dir);
  const weights = { bf16: size.bytes, fp32: size.parameters * 4 };
  const rows: BenchRow[] = [];
  const figures = new Map<string, StepFigures>();
  const memory: BenchRow[] = [];
  for (const m of plan.measurements) {
    const common = { name, unit: 'tokens/s' };
    const skip = m.skip ?? memorySkip(size.parameters, m.dtype, availableMemoryBytes());
    if (skip) {
      ctx.log(`shapes: ${run.name} ${label(m)} skipped: ${skip}`);
      rows.push({ ...common, config: label(m), value: Number.NaN, skipped: skip });
      continue;
    }
    if (m.side === 'studio' && m.dtype === 'fp32' && fp32Error) {
      rows.push({ ...common, config: label(m), value: Number.NaN, details: { error: fp32Error } });
      continue;
    }
    const steps = String(run.steps);
    ctx.log(
      `shapes: ${run.name} ${label(m)}: batch ${run.batch}×${run.seq}, 1 warm-up + ${steps} timed steps`,
    );
    const outcome =
      m.side === 'studio'
        ? await runChild(
            process.execPath,
            [
              studioChild,
              m.dtype === 'bf16' ? bf16Dir : fp32Dir,
              String(run.batch),
              String(run.seq),
              steps,
              run.checkpointing ? 'on' : 'off',
            ],
            `${run.name} ${label(m)}`,
            ctx,
          )
        : await runChild(
            peft.python!,
            [
              join(root, 'bench/peft_step.py'),
              bf16Dir,
              '--dtype',
              m.dtype,
              '--batch',
              String(run.batch),
              '--seq',
              String(run.seq),
              '--steps',
              steps,
              ...(run.checkpointing ? ['--checkpointing'] : []),
            ],
            `${run.name} ${label(m)}`,
            ctx,
          );
    if ('error' in outcome) {
      ctx.log(`shapes: ${run.name} ${label(m)} failed: ${outcome.error}`);
      rows.push({ ...common, config: label(m), value: Number.NaN, details: { error: outcome.error } });
      continue;
    }
    const r = outcome.json;
    const stepMs = num(r.stepMs);
    const peak = num(r.peakRssBytes);
    const tokensPerSecond = (run.batch * run.seq) / (stepMs / 1000);
    figures.set(measurementKey(m), { tokensPerSecond, peakRssBytes: peak });
    const losses = (r.losses as number[]).map((l) => Number(l.toFixed(4)));
    const config =
      m.side === 'studio'
        ? `studio ${String(r.backend)}, ${m.dtype} weights`
        : `PEFT ${String(r.peft)} (torch ${String(r.torch)}, transformers ${String(r.transformers)}, ${String(r.threads)} threads), ${m.dtype}`;
    rows.push({
      ...common,
      config,
      value: Number(tokensPerSecond.toPrecision(3)),
      note: `step ${(stepMs / 1000).toFixed(1)} s, peak RSS ${gb(peak)}, first loss ${losses[0]}`,
      details: { ...r, losses, tokensPerSecond, weightBytes: weights[m.dtype] },
    });
    if (m.side === 'studio') {
      const estimated = num(r.estimatedPeakBytes);
      const line = `${memoryLine(peak, weights[m.dtype])}; the studio's estimate ${gb(estimated)} (${(
        estimated / peak
      ).toFixed(2)}× the measured peak, issue #10: within 15 %)`;
      ctx.log(`shapes: ${run.name} ${label(m)}: ${line}`);
      memory.push({
        name: `${run.name} ${run.batch}×${run.seq}: memory`,
        config: `studio ${m.dtype} weights`,
        value: Number((peak / 1e9).toFixed(2)),
        unit: 'GB',
        note: line,
      });
    }
  }
  for (const c of compare(figures)) {
    rows.push({
      name: `${run.name}: ${c.comparison.name}`,
      config: c.comparison.config,
      value: c.ratio === null ? Number.NaN : ratio2(c.ratio),
      unit: '×',
      note: c.ratio === null ? undefined : c.note,
      skipped: c.ratio === null ? c.note : undefined,
    });
  }
  return [...rows, ...memory];
}

export const section: BenchSection = {
  name: 'shapes',
  title:
    'LoRA step (r=16 on all-linear, AdamW) on the shapes people fine-tune, random bf16 weights, studio vs transformers + PEFT (targets: tokens/s ≥ 1.0× PEFT at equal dtype; peak RSS ≤ 1.0× PEFT-fp32, ≤ 0.6× PEFT-fp32 with bf16 weights)',
  async run(ctx) {
    const runs = shapeRuns(ctx.options);
    const dir = shapesDir();
    const studioChild = await bundleChild(root, 'bench/shapes-child.ts');
    const rows: BenchRow[] = [];
    for (const run of runs) rows.push(...(await measureShape(run, dir, studioChild, ctx)));
    return rows;
  },
};
