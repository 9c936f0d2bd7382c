import * as tf from '@tensorflow/tfjs-core';
import { ensureGradients } from '../engine/backends/gradients.ts';
import { activateWasm } from '../engine/backends/wasm.ts';
const [dir] = process.argv.slice(2);
await ensureGradients();
await activateWasm('onnxruntime-mlas');
const { attachAdapter } = await import('../engine/adapters/index.ts');
const { loadModel } = await import('../engine/models/index.ts');
const { timeTrainingSteps } = await import('./timed-steps.ts');
const model = await loadModel(dir);
const instance = attachAdapter(model, 'lora', { r: 8, loraAlpha: 16, targetModules: ['c_attn'] }, { adapterName: 'default', seed: 0 });
timeTrainingSteps(model, instance, { batch: 4, seq: 128, steps: 1, lr: 1e-4, weightDecay: 0.01, onStep: (s, a, b) => console.log('step', s, a.toFixed(0), 'fwd', b.toFixed(0)) });
const t0 = performance.now();
const info = await tf.profile(() => { timeTrainingSteps(model, instance, { batch: 4, seq: 128, steps: 0, lr: 1e-4, weightDecay: 0.01 }); });
const wall = performance.now() - t0;
const by = new Map<string, { ms: number; n: number }>();
for (const k of info.kernels) {
  const key = `${k.name} ${k.inputShapes.map((s) => `[${s}]`).join('')}`;
  const e = by.get(k.name) ?? { ms: 0, n: 0 };
  e.ms += k.kernelTimeMs as number; e.n += 1; by.set(k.name, e);
}
const total = [...by.values()].reduce((a, b) => a + b.ms, 0);
console.log('wall', wall.toFixed(0), 'kernel total', total.toFixed(0));
for (const [k, v] of [...by.entries()].sort((a, b) => b[1].ms - a[1].ms).slice(0, 30)) console.log(k.padEnd(30), v.ms.toFixed(1).padStart(8), v.n);
