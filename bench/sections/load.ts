import { execFileSync } from 'node:child_process';
import { existsSync, promises as fs, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { findPython } from '../../engine/testing/python.ts';
import { bundleChild } from '../bundle.ts';
import { gpt2Small, parameterCount, writeGpt2Checkpoint } from '../gpt2-checkpoint.ts';
import { checkpointSize, diskFreeBytes, makeShape } from '../shape-files.ts';
import { gb, planShape, SHAPES, shapesDir } from '../shapes.ts';
import type { BenchContext, BenchRow, BenchSection } from '../types.ts';

const MB = 1024 * 1024;
const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
/** The 1B shape the issue asks the load section to cover (bf16 on disk, held as bf16 on the native backend). */
const SHAPE = SHAPES.find((s) => s.name === 'llama-3.2-1b')!;

interface LoadResult {
  backend: string;
  baselineBytes: number;
  peakBytes: number;
  loadMs: number;
  parameters: number;
  frozen: Record<string, number>;
}

function loadIn(child: string, dir: string, backend: string): LoadResult {
  const out = execFileSync(process.execPath, [child, dir, backend], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'ignore'],
  });
  return JSON.parse(out.trim().split('\n').pop()!) as LoadResult;
}

/** Peak RSS over the weights' bytes (`weightBytes` in the dtype they are measured against), with the figures. */
function rows(r: LoadResult, what: string, weightBytes: number, fileBytes: number): BenchRow[] {
  const details = {
    peakMB: Math.round(r.peakBytes / MB),
    weightsMB: Math.round(weightBytes / MB),
    fileMB: Math.round(fileBytes / MB),
    baselineMB: Math.round(r.baselineBytes / MB),
    frozenHeldMB: Object.fromEntries(Object.entries(r.frozen).map(([d, b]) => [d, Math.round(b / MB)])),
    loadMs: Math.round(r.loadMs),
  };
  return [
    {
      name: `${what}: peak RSS / weight bytes`,
      config: r.backend,
      value: Number((r.peakBytes / weightBytes).toFixed(2)),
      unit: '×',
      note: `peak RSS ${gb(r.peakBytes)} for weights ${gb(weightBytes)}, frozen held as ${Object.entries(
        r.frozen,
      )
        .map(([d, b]) => `${d} ${gb(b)}`)
        .join(' + ')}`,
      details,
    },
    {
      name: `${what}: (peak − baseline RSS) / weight bytes`,
      config: r.backend,
      value: Number(((r.peakBytes - r.baselineBytes) / weightBytes).toFixed(2)),
      unit: '×',
    },
    { name: `${what}: load time`, config: r.backend, value: Math.round(r.loadMs), unit: 'ms' },
  ];
}

async function gpt2Rows(child: string, ctx: BenchContext): Promise<BenchRow[]> {
  const dir = mkdtempSync(join(tmpdir(), 'studio-bench-load-'));
  try {
    const params = parameterCount(gpt2Small);
    ctx.log(`load: writing a random ${(params / 1e6).toFixed(1)}M-parameter GPT-2 to ${dir}`);
    const fileBytes = await writeGpt2Checkpoint(dir, gpt2Small);
    return ['native', 'wasm'].flatMap((backend) =>
      rows(loadIn(child, dir, backend), 'GPT-2 124M fp32', params * 4, fileBytes),
    );
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
}

/** The 1B shape from the shapes folder (made there when missing and Python can), bf16 held as bf16. */
async function shapeRows(child: string, ctx: BenchContext): Promise<BenchRow[]> {
  const what = `${SHAPE.name} bf16`;
  const dir = shapesDir();
  const maker = findPython(['torch', 'transformers']);
  const plan = planShape(SHAPE, ['bf16'], {
    checkpoint: existsSync(join(dir, SHAPE.name, 'config.json')),
    fp32Copy: false,
    maker,
    peft: { python: null, reason: 'not needed' },
    diskFreeBytes: diskFreeBytes(dir),
  });
  const skipped = (reason: string): BenchRow[] => {
    ctx.log(`load: ${what} skipped: ${reason}`);
    return [
      {
        name: `${what}: peak RSS / weight bytes`,
        config: 'native',
        value: Number.NaN,
        unit: '×',
        skipped: reason,
      },
    ];
  };
  if (plan.skip) return skipped(plan.skip);
  if (plan.make) {
    if (ctx.quick) return skipped(`not in ${dir}, and --quick makes no checkpoint`);
    const error = makeShape(maker.python!, dir, SHAPE.name, ctx);
    if (error) return skipped(error);
  }
  const size = await checkpointSize(join(dir, SHAPE.name));
  ctx.log(`load: ${what} (${gb(size.bytes)} of weights) on native`);
  return rows(loadIn(child, join(dir, SHAPE.name), 'native'), what, size.bytes, size.bytes);
}

export const section: BenchSection = {
  name: 'load',
  title:
    'peak RSS while loading from safetensors, engine bundled as in the app: a 124M-parameter GPT-2 in fp32 (target: peak ≤ 1.3× fp32 weights) and a Llama-3.2-1B shape in bf16, held as bf16',
  async run(ctx) {
    const child = await bundleChild(root, 'bench/load-child.ts');
    const out = [...(await gpt2Rows(child, ctx)), ...(await shapeRows(child, ctx))];
    for (const row of out)
      ctx.log(`load: ${row.name} (${row.config}): ${row.skipped ?? `${row.value} ${row.unit}`}`);
    return out;
  },
};
