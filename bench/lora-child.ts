/**
 * Child process of the `lora` bench section: times LoRA training steps on one matmul route and prints one JSON
 * line. A separate process per route, because a wasm heap exhaustion aborts the whole wasm module.
 *   lora-child.ts <model-dir> <matmul-route> <batch> <seq> <steps>
 */
import * as tf from '@tensorflow/tfjs-core';
import { isMatMulPath } from '../engine/backends/gemm.ts';
import { ensureGradients } from '../engine/backends/gradients.ts';
import { activateWasm } from '../engine/backends/wasm.ts';

const [dir, route, batchArg, seqArg, stepsArg] = process.argv.slice(2);
if (!dir || !route || !isMatMulPath(route)) {
  throw new Error('usage: lora-child.ts <model-dir> <matmul-route> <batch> <seq> <steps>');
}
const batch = Number(batchArg);
const seq = Number(seqArg);
const steps = Number(stepsArg);
await ensureGradients();
await activateWasm(route);
const { attachAdapter } = await import('../engine/adapters/index.ts');
const { loadModel, trainingContext } = await import('../engine/models/index.ts');
const { AdamW, causalLmLossSum } = await import('../engine/training/index.ts');

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const heapBytes = () => (tf.backend() as unknown as { wasm: { HEAPU8: Uint8Array } }).wasm.HEAPU8.length;

const model = await loadModel(dir);
const instance = attachAdapter(
  model,
  'lora',
  { r: 8, loraAlpha: 16, targetModules: ['c_attn'] },
  { adapterName: 'default', seed: 0 },
);
const params = instance.trainable();
const optimizer = new AdamW(params, {
  beta1: 0.9,
  beta2: 0.999,
  eps: 1e-8,
  groups: { adapter: { lr: 1e-4, weightDecay: 0.01 }, scaling: { lr: 1e-4, weightDecay: 0 } },
});
const vocab = model.spec.vocabSize;
const ids = new Int32Array(batch * seq).map((_, i) => (i * 7919 + 13) % vocab);
const inputIds = tf.tensor2d(ids, [batch, seq], 'int32');
const attentionMask = tf.ones([batch, seq], 'int32') as tf.Tensor2D;
const lossMask = tf.ones([batch, seq], 'float32') as tf.Tensor2D;
const byVariable = new Map(params.map((p) => [p.variable.name, p.name]));
const stepMs: number[] = [];
const forwardMs: number[] = [];
let loss = Number.NaN;
for (let step = 0; step <= steps; step++) {
  const t0 = performance.now();
  // wasm kernels are synchronous: the forward pass is done when forward() returns
  tf.tidy(() => {
    model.forward({ inputIds, attentionMask }, trainingContext(0, step));
  });
  const t1 = performance.now();
  const { value, grads } = tf.variableGrads(
    () => {
      const logits = model.forward({ inputIds, attentionMask }, trainingContext(0, step)) as tf.Tensor3D;
      return tf.div(causalLmLossSum(logits, inputIds, lossMask), batch * (seq - 1)) as tf.Scalar;
    },
    params.map((p) => p.variable),
  );
  const named: Record<string, tf.Tensor> = {};
  for (const [key, g] of Object.entries(grads)) named[byVariable.get(key) ?? key] = g;
  optimizer.step(named, 1);
  loss = value.dataSync()[0];
  tf.dispose([value, ...Object.values(grads)]);
  const t2 = performance.now();
  process.stderr.write(`step ${step}: ${(t2 - t1).toFixed(0)} ms (forward ${(t1 - t0).toFixed(0)} ms)\n`);
  // step 0 warms kernels and allocations up
  if (step > 0) {
    forwardMs.push(t1 - t0);
    stepMs.push(t2 - t1);
  }
}
console.log(
  JSON.stringify({
    stepMs: median(stepMs),
    forwardMs: median(forwardMs),
    loss,
    trainable: params.reduce((n, p) => n + p.variable.size, 0),
    wasmHeapBytes: heapBytes(),
  }),
);
process.exit(0);
