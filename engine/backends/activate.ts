import * as tf from '@tensorflow/tfjs-core';
import { ensureGradients } from './gradients.ts';
import { selectBackend } from './index.ts';

/** Activates a backend preference (`current` keeps the active one) and names what runs, e.g. `wasm:onnxruntime-mlas`. */
export async function activateBackend(preference: string): Promise<string> {
  if (preference === 'current') {
    await ensureGradients();
    await tf.ready();
    return tf.getBackend();
  }
  const report = await selectBackend({ prefer: preference });
  return report.matmul ? `${report.chosen}:${report.matmul}` : report.chosen;
}
