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
const { loadModel } = await import('../engine/models/index.ts');
const { timeTrainingSteps } = await import('./timed-steps.ts');

const batch = 16;
const seq = 96;
const model = await loadModel(join(import.meta.dirname, '..', 'assets', 'demo', 'model'));
const instance = attachAdapter(
  model,
  'tlora',
  { r: 32, dropout: 0, targetModules: ['q_proj', 'v_proj'] },
  { adapterName: 'default', seed: 0 },
);
const timed = timeTrainingSteps(model, instance, { batch, seq, steps, lr: 1e-3, weightDecay: 0 });
console.log(
  JSON.stringify({
    backend: report.chosen,
    matmul: report.matmul,
    batch,
    seq,
    stepMs: Math.round(timed.stepMs),
    forwardMs: Math.round(timed.forwardMs),
    tokensPerSecond: Math.round((batch * seq) / (timed.stepMs / 1000)),
    tensors: tf.memory().numTensors,
  }),
);
process.exit(0);
