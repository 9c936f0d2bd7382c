import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { attachAdapter } from '../adapters/index.ts';
import type { AdapterInstance } from '../adapters/types.ts';
import { loadModel } from '../models/index.ts';
import type { LoadedModel } from '../models/types.ts';

/** The tiny model fixtures the export tests load. */
export const MODEL_FIXTURES = join(import.meta.dirname, '..', 'models', 'fixtures');

/**
 * Loads a model and attaches an adapter whose every tensor gets seeded Gaussian noise added (a fresh LoRA's
 * B is zero), so the adapter changes outputs.
 */
export async function adaptedModel(
  dir: string,
  method: string,
  config: Record<string, unknown>,
  options: { seed?: number; std?: number } = {},
): Promise<{ model: LoadedModel; instance: AdapterInstance }> {
  const seed = options.seed ?? 7;
  const model = await loadModel(dir);
  const instance = attachAdapter(model, method, config, { adapterName: 'default', seed });
  const state = instance.state();
  let s = seed;
  const random: Record<string, tf.Tensor> = {};
  for (const [key, t] of Object.entries(state)) {
    random[key] = tf.add(t, tf.randomNormal(t.shape, 0, options.std ?? 0.2, 'float32', s++));
    t.dispose();
  }
  instance.loadState(random);
  for (const t of Object.values(random)) t.dispose();
  return { model, instance };
}

/** `adaptedModel` on one of the tiny model fixtures (by folder name). */
export function adaptedFixture(
  fixture: string,
  method: string,
  config: Record<string, unknown>,
  seed = 7,
): Promise<{ model: LoadedModel; instance: AdapterInstance }> {
  return adaptedModel(join(MODEL_FIXTURES, fixture), method, config, { seed });
}
