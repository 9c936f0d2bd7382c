import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import type { TrainingSettingsInput } from '../common/project-schema.ts';
import { inferenceContext } from '../models/layers.ts';
import type { LoadedModel } from '../models/types.ts';
import { createProject } from '../project/store.ts';

const DEMO = resolve(import.meta.dirname, '..', '..', 'assets', 'demo');

/** A project on the bundled demo model and data in a fresh temp folder. */
export async function demoProject(
  method: {
    name: 'lora' | 'vera' | 'tinylora' | 'tlora' | 'loraxs' | 'moslora';
    config?: Record<string, unknown>;
  },
  training: TrainingSettingsInput = {},
): Promise<{ root: string; project: string }> {
  const root = mkdtempSync(join(tmpdir(), 'studio-handoff-'));
  const project = join(root, 'project');
  await createProject(project, {
    model: join(DEMO, 'model'),
    task: 'causal-lm',
    data: { train: join(DEMO, 'data', 'train.jsonl'), validation: join(DEMO, 'data', 'validation.jsonl') },
    method: { name: method.name, config: method.config ?? {} },
    training,
  });
  return { root, project };
}

/** The model's logits (flattened) for token ids, every position attended. */
export function studioLogits(model: LoadedModel, ids: number[][]): Float32Array {
  return tf.tidy(() => {
    const inputIds = tf.tensor2d(ids, [ids.length, ids[0].length], 'int32');
    const attentionMask = tf.onesLike(inputIds);
    return model.forward({ inputIds, attentionMask }, inferenceContext()).dataSync() as Float32Array;
  });
}
