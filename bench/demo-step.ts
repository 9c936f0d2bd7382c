/**
 * Training throughput on the bundled demo model (Llama, hidden 128): TLoRA r=32 on q_proj/v_proj, batch 16 × 96
 * tokens as `npm run demo` trains, forward + backward + AdamW per step. Prints tokens/s and the split of a step.
 *   node bin/run-ts.mjs bench/demo-step.ts [steps]
 */
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { selectBackend } from '../engine/backends/index.ts';

const steps = Number(process.argv[2] ?? 10);
const report = await selectBackend();
const { attachAdapter } = await import('../engine/adapters/index.ts');
const { loadModel, trainingContext } = await import('../engine/models/index.ts');
const { AdamW, causalLmLossSum } = await import('../engine/training/index.ts');

const batch = 16;
const seq = 96;
const model = await loadModel(join(import.meta.dirname, '..', 'assets', 'demo', 'model'));
const instance = attachAdapter(
  model,
  'tlora',
  { r: 32, dropout: 0, targetModules: ['q_proj', 'v_proj'] },
  { adapterName: 'default', seed: 0 },
);
const params = instance.trainable();
const optimizer = new AdamW(params, {
  beta1: 0.9,
  beta2: 0.999,
  eps: 1e-8,
  groups: { adapter: { lr: 1e-3, weightDecay: 0 }, scaling: { lr: 1e-3, weightDecay: 0 } },
});
const vocab = model.spec.vocabSize;
const ids = new Int32Array(batch * seq).map((_, i) => (i * 7919 + 13) % vocab);
const inputIds = tf.tensor2d(ids, [batch, seq], 'int32');
const attentionMask = tf.ones([batch, seq], 'int32') as tf.Tensor2D;
const lossMask = tf.ones([batch, seq], 'float32') as tf.Tensor2D;
const byVariable = new Map(params.map((p) => [p.variable.name, p.name]));
const forwardMs: number[] = [];
const stepMs: number[] = [];
for (let step = 0; step <= steps; step++) {
  const t0 = performance.now();
  tf.tidy(() => {
    (model.forward({ inputIds, attentionMask }, trainingContext(0, step)) as tf.Tensor).dataSync();
  });
  const t1 = performance.now();
  const { value, grads } = tf.variableGrads(
    () =>
      tf.div(
        causalLmLossSum(
          model.forward({ inputIds, attentionMask }, trainingContext(0, step)) as tf.Tensor3D,
          inputIds,
          lossMask,
        ),
        batch * (seq - 1),
      ) as tf.Scalar,
    params.map((p) => p.variable),
  );
  const named: Record<string, tf.Tensor> = {};
  for (const [key, g] of Object.entries(grads)) named[byVariable.get(key) ?? key] = g;
  optimizer.step(named, 1);
  value.dataSync();
  tf.dispose([value, ...Object.values(grads)]);
  const t2 = performance.now();
  if (step > 0) {
    forwardMs.push(t1 - t0);
    stepMs.push(t2 - t1);
  }
}
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const ms = median(stepMs);
console.log(
  JSON.stringify({
    backend: report.chosen,
    matmul: report.matmul,
    batch,
    seq,
    stepMs: Math.round(ms),
    forwardMs: Math.round(median(forwardMs)),
    tokensPerSecond: Math.round((batch * seq) / (ms / 1000)),
    tensors: tf.memory().numTensors,
  }),
);
process.exit(0);
