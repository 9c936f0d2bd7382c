/**
 * Child process of the `lora` bench section: times LoRA training steps on one backend and matmul route
 * (`native:onnxruntime-mlas`, `wasm:koffi-blas`, …) and prints one JSON line. A separate process per route,
 * because a wasm heap exhaustion aborts the whole wasm module.
 *   lora-child.ts <model-dir> <backend:route> <batch> <seq> <steps>
 */
import * as tf from '@tensorflow/tfjs-core';
import { selectBackend } from '../engine/backends/index.ts';

const [dir, backend, batchArg, seqArg, stepsArg] = process.argv.slice(2);
if (!dir || !backend?.includes(':')) {
  throw new Error('usage: lora-child.ts <model-dir> <backend:route> <batch> <seq> <steps>');
}
const batch = Number(batchArg);
const seq = Number(seqArg);
const steps = Number(stepsArg);
await selectBackend({ prefer: backend });
const { attachAdapter } = await import('../engine/adapters/index.ts');
const { loadModel } = await import('../engine/models/index.ts');
const { timeTrainingSteps } = await import('./timed-steps.ts');

/** The wasm heap's size; null on the native backend, which has none. */
const heapBytes = () =>
  (tf.backend() as unknown as { wasm?: { HEAPU8: Uint8Array } }).wasm?.HEAPU8.length ?? null;

const model = await loadModel(dir);
const instance = attachAdapter(
  model,
  'lora',
  { r: 8, loraAlpha: 16, targetModules: ['c_attn'] },
  { adapterName: 'default', seed: 0 },
);
const timed = timeTrainingSteps(model, instance, {
  batch,
  seq,
  steps,
  lr: 1e-4,
  weightDecay: 0.01,
  onStep: (step, stepMs, forwardMs) =>
    process.stderr.write(`step ${step}: ${stepMs.toFixed(0)} ms (forward ${forwardMs.toFixed(0)} ms)\n`),
});
console.log(
  JSON.stringify({
    stepMs: timed.stepMs,
    forwardMs: timed.forwardMs,
    loss: timed.loss,
    trainable: instance.trainable().reduce((n, p) => n + p.variable.size, 0),
    wasmHeapBytes: heapBytes(),
  }),
);
process.exit(0);
