/**
 * Child process of the `export` bench section: loads a model folder, attaches a LoRA (r = 8 on c_attn,
 * random B so ΔW ≠ 0), exports it as PEFT and as a merged model, and prints times and peak RSS as one JSON
 * line. A separate process, so the peak belongs to this work alone.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { resourceUsage } from 'node:process';
import * as tf from '@tensorflow/tfjs-core';
import { attachAdapter } from '../engine/adapters/index.ts';
import { activateWasm } from '../engine/backends/wasm.ts';
import { exportAdapter } from '../engine/export/index.ts';
import { loadModel } from '../engine/models/index.ts';

const dir = process.argv[2];
if (!dir) throw new Error('usage: export-child.ts <model-dir>');
const setup = await activateWasm();
const model = await loadModel(dir);
const instance = attachAdapter(model, 'lora', { r: 8, targetModules: ['c_attn'] }, { seed: 1 });
const state = instance.state();
const random = Object.fromEntries(
  Object.entries(state).map(([k, t], i) => [k, tf.randomNormal(t.shape, 0, 0.02, 'float32', i)]),
);
instance.loadState(random);
tf.dispose([...Object.values(state), ...Object.values(random)]);
const loadedKb = resourceUsage().maxRSS;
const out = mkdtempSync(join(tmpdir(), 'studio-bench-export-'));
try {
  const t0 = performance.now();
  const peft = await exportAdapter(model, instance, { format: 'peft', out: join(out, 'peft') });
  const t1 = performance.now();
  const merged = await exportAdapter(model, instance, { format: 'merged', out: join(out, 'merged') });
  const t2 = performance.now();
  console.log(
    JSON.stringify({
      backend: `wasm/${setup.matmul}`,
      loadedBytes: loadedKb * 1024,
      peakBytes: resourceUsage().maxRSS * 1024,
      peftMs: t1 - t0,
      mergedMs: t2 - t1,
      peftBytes: peft.bytes,
      mergedBytes: merged.bytes,
      peftDiff: peft.verification.maxAbsDiff,
      mergedDiff: merged.verification.maxAbsDiff,
    }),
  );
} finally {
  rmSync(out, { recursive: true, force: true });
}
model.dispose();
process.exit(0);
