import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { expect } from 'vitest';
import { inferenceContext } from '../models/layers.ts';
import type { LoadedModel } from '../models/types.ts';

/** Test helpers for the PEFT-made fixtures of fixtures/peft (scripts/fixtures/peft_adapters.py). */
export const PEFT_FIXTURES = join(import.meta.dirname, 'fixtures', 'peft');

/** Every PEFT-made adapter case, by folder name. */
export const PEFT_CASES = [
  'llama-lora',
  'llama-rslora',
  'llama-dora',
  'llama-pissa',
  'llama-lora-patterns',
  'llama-vera',
  'llama-tinylora-wt0',
  'llama-tinylora-wt0.5',
  'llama-tinylora-wt1',
  'gpt2-lora',
  'bert-cls-lora',
] as const;

export interface PeftExpected {
  /** The base model folder of an adapter case. */
  base?: string;
  task: 'causal-lm' | 'seq-cls';
  input_ids: number[][];
  logits_shape: number[];
  logits: number[];
  /** PEFT's `get_nb_trainable_parameters` of an adapter case. */
  trainable_params?: number;
}

export const peftExpected = (name: string): PeftExpected =>
  JSON.parse(readFileSync(join(PEFT_FIXTURES, name, 'expected.json'), 'utf8'));

/** Logits of the model (adapters as they are set) on unpadded input ids, flattened. */
export function logitsOf(model: LoadedModel, inputIds: number[][]): Float32Array {
  return tf.tidy(() => {
    const ids = tf.tensor2d(inputIds, undefined, 'int32');
    return model.forward({ inputIds: ids, attentionMask: tf.onesLike(ids) }, inferenceContext()).dataSync();
  }) as Float32Array;
}

/** max |actual − expected| (`abs`) and that over max |expected| (`rel`; `abs` when expected is all zero). */
export function relative(
  actual: ArrayLike<number>,
  expected: ArrayLike<number>,
): { rel: number; abs: number } {
  let abs = 0;
  let ref = 0;
  for (let i = 0; i < expected.length; i++) {
    abs = Math.max(abs, Math.abs(actual[i] - expected[i]));
    ref = Math.max(ref, Math.abs(expected[i]));
  }
  return { rel: ref > 0 ? abs / ref : abs, abs };
}

/** A field PEFT writes that this engine leaves out must hold PEFT's default for it. */
const PEFT_DEFAULTS: Record<string, unknown> = { megatron_core: 'megatron.core', qalora_group_size: 16 };

const isUnset = (key: string, value: unknown) =>
  key in PEFT_DEFAULTS
    ? value === PEFT_DEFAULTS[key]
    : value === null ||
      value === false ||
      (Array.isArray(value) && value.length === 0) ||
      (typeof value === 'object' && Object.keys(value as object).length === 0);

/** PEFT saves sets (target_modules) in arbitrary order. */
const sorted = (v: unknown) => (Array.isArray(v) ? [...v].sort() : v);

/**
 * Our adapter_config.json against PEFT's: every field we write has PEFT's value, every field of PEFT's we leave
 * out is at PEFT's default, and we write no field PEFT does not know; `ignore` lists fields compared elsewhere.
 */
export function expectSamePeftConfig(
  ours: Record<string, unknown>,
  peft: Record<string, unknown>,
  ignore: ReadonlySet<string> = new Set(['peft_version']),
): void {
  for (const [key, value] of Object.entries(peft)) {
    if (ignore.has(key)) continue;
    if (key in ours) expect(sorted(ours[key]), key).toEqual(sorted(value));
    else expect(isUnset(key, value), `${key} = ${JSON.stringify(value)} is not written`).toBe(true);
  }
  for (const key of Object.keys(ours)) {
    expect(key in peft || ignore.has(key), `${key} is not a field PEFT writes`).toBe(true);
  }
}
