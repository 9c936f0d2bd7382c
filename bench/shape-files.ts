/** The I/O around shape checkpoints (making, copying, sizing them), shared by the shapes and load sections. */
import { spawnSync } from 'node:child_process';
import { existsSync, promises as fs, readFileSync, statfsSync } from 'node:fs';
import { freemem } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { openCheckpoint, writeSafetensorsStreaming } from '../engine/safetensors/index.ts';
import type { BenchContext } from './types.ts';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');

/** Free bytes on the file system that holds `path` (or its nearest existing parent). */
export function diskFreeBytes(path: string): number {
  let p = path;
  while (!existsSync(p) && dirname(p) !== p) p = dirname(p);
  const s = statfsSync(p);
  return s.bavail * s.bsize;
}

/** MemAvailable (what can be allocated without swapping others out), else Node's free memory. */
export function availableMemoryBytes(): number {
  try {
    const m = /^MemAvailable:\s+(\d+) kB/m.exec(readFileSync('/proc/meminfo', 'utf8'));
    if (m) return Number(m[1]) * 1024;
  } catch {}
  return freemem();
}

/** Makes `<dir>/<name>` with scripts/shapes/make_shapes.py; the error, or null when it was made. */
export function makeShape(python: string, dir: string, name: string, ctx: BenchContext): string | null {
  ctx.log(`making ${name} in ${dir} with scripts/shapes/make_shapes.py (${python}); the 3B takes a while`);
  const made = spawnSync(python, [join(root, 'scripts/shapes/make_shapes.py'), dir, name], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  if (made.status === 0) return null;
  return `make_shapes.py failed: ${made.stderr.trim().split('\n').pop() || `exit code ${made.status}`}`;
}

/**
 * A float32 copy of a checkpoint for the studio's fp32 run (what a user with an fp32 checkpoint trains), one
 * tensor in memory at a time; the folder appears complete or not at all.
 */
export async function writeFp32Copy(src: string, dest: string): Promise<void> {
  const tmp = `${dest}.tmp`;
  await fs.rm(tmp, { recursive: true, force: true });
  await fs.mkdir(tmp, { recursive: true });
  const reader = await openCheckpoint(src);
  try {
    const floats = new Set(['F16', 'BF16', 'F32', 'F64']);
    const entries = reader.keys().map((name) => {
      const { dtype, shape } = reader.info(name);
      return { name, dtype: floats.has(dtype) ? ('F32' as const) : dtype, shape };
    });
    await writeSafetensorsStreaming(join(tmp, 'model.safetensors'), entries, (e) =>
      e.dtype === 'F32' ? reader.readFloat32(e.name) : reader.readRaw(e.name),
    );
  } finally {
    await reader.close();
  }
  for (const file of await fs.readdir(src)) {
    if (file.startsWith('model') && (file.endsWith('.safetensors') || file.endsWith('.index.json'))) continue;
    if (file === 'config.json') {
      const config = JSON.parse(await fs.readFile(join(src, file), 'utf8')) as Record<string, unknown>;
      config.dtype = 'float32';
      if ('torch_dtype' in config) config.torch_dtype = 'float32';
      await fs.writeFile(join(tmp, file), JSON.stringify(config, null, 2));
    } else await fs.copyFile(join(src, file), join(tmp, file));
  }
  await fs.rename(tmp, dest);
}

/** Parameters and weight bytes of a checkpoint, from its safetensors headers alone. */
export async function checkpointSize(dir: string): Promise<{ parameters: number; bytes: number }> {
  const reader = await openCheckpoint(dir);
  try {
    let parameters = 0;
    let bytes = 0;
    for (const key of reader.keys()) {
      const info = reader.info(key);
      parameters += info.shape.reduce((p, x) => p * x, 1);
      bytes += info.byteLength;
    }
    return { parameters, bytes };
  } finally {
    await reader.close();
  }
}
