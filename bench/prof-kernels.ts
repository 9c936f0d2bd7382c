/**
 * Where a LoRA training step's time goes, kernel by kernel, on the native backend: every registered kernel is
 * wrapped with a timer, a few steps run (bench/timed-steps.ts: a forward pass alone, then forward + backward +
 * AdamW), and the kernels print by total time with their calls and output elements per second. A profiling aid
 * for the `lora` and `shapes` sections' figures, not a benchmark of its own.
 *   npx tsx bench/prof-kernels.ts <model-dir> [batch 4] [seq 128] [steps 2] [target modules c_attn]
 * STUDIO_FUSED=off profiles the composed ops instead of the fused kernels.
 */
import * as tf from '@tensorflow/tfjs-core';
import { selectBackend } from '../engine/backends/index.ts';

const [dir, batchArg = '4', seqArg = '128', stepsArg = '2', targets = 'c_attn'] = process.argv.slice(2);
if (!dir) throw new Error('usage: prof-kernels.ts <model-dir> [batch] [seq] [steps] [target modules]');
await selectBackend({ prefer: 'native:onnxruntime-mlas' });
const { attachAdapter } = await import('../engine/adapters/index.ts');
const { loadModel } = await import('../engine/models/index.ts');
const { timeTrainingSteps } = await import('./timed-steps.ts');

const totals = new Map<string, { ms: number; calls: number; elements: number }>();
for (const config of tf.getKernelsForBackend('native')) {
  const inner = config.kernelFunc;
  (config as { kernelFunc: tf.KernelFunc }).kernelFunc = ((args: Parameters<tf.KernelFunc>[0]) => {
    const start = performance.now();
    const result = inner(args);
    const entry = totals.get(config.kernelName) ?? { ms: 0, calls: 0, elements: 0 };
    entry.ms += performance.now() - start;
    entry.calls++;
    const first = (Array.isArray(result) ? result[0] : result) as tf.TensorInfo;
    entry.elements += tf.util.sizeFromShape(first.shape);
    totals.set(config.kernelName, entry);
    return result;
  }) as tf.KernelFunc;
}

const model = await loadModel(dir);
const instance = attachAdapter(
  model,
  'lora',
  { r: 8, loraAlpha: 16, targetModules: targets === 'all-linear' ? targets : targets.split(',') },
  { adapterName: 'default', seed: 0 },
);
const timed = timeTrainingSteps(model, instance, {
  batch: Number(batchArg),
  seq: Number(seqArg),
  steps: Number(stepsArg),
  lr: 1e-4,
  weightDecay: 0.01,
  onStep: (step, ms, forward) =>
    console.error(`step ${step}: ${ms.toFixed(0)} ms (forward alone ${forward.toFixed(0)} ms)`),
});
const rows = [...totals].sort((a, b) => b[1].ms - a[1].ms);
const inKernels = rows.reduce((sum, [, e]) => sum + e.ms, 0);
console.log(
  `median step ${timed.stepMs.toFixed(0)} ms; ${inKernels.toFixed(0)} ms in kernels over all steps`,
);
for (const [name, e] of rows.filter(([, e]) => e.ms >= 1)) {
  const rate = (e.elements / e.ms / 1e3).toFixed(0);
  console.log(
    `${e.ms.toFixed(0).padStart(7)} ms ${String(e.calls).padStart(6)}× ${rate.padStart(7)} M elem/s  ${name}`,
  );
}
process.exit(0);
