import type * as tf from '@tensorflow/tfjs-core';
import type { z } from 'zod';
import type { AdaptableKind, AdaptableLayer, AdapterLayer } from '../models/layers.ts';

export type MethodName = 'lora' | 'tlora' | 'tinylora' | 'vera' | 'loraxs';

/** A resolved target, known from the module tree alone (no weights needed). */
export interface TargetModule {
  name: string;
  kind: AdaptableKind;
  inFeatures: number;
  outFeatures: number;
}

export interface TensorCount {
  /** Key as in our native state (and, where the method has one, the PEFT key suffix). */
  name: string;
  shape: number[];
  trainable: boolean;
}

/** Parameter accounting, PEFT's way: shared tensors once, frozen buffers not in `trainable`. */
export interface ParameterCount {
  perModule: { module: string; trainable: number; frozen: number; tensors: TensorCount[] }[];
  /** Model-level tensors shared by modules (VeRA's A/B, TinyLoRA's tied v), counted once. */
  shared: TensorCount[];
  trainable: number;
  /** Frozen adapter tensors (random projections, SVD factors), reported separately. */
  frozen: number;
}

/** A trainable tensor with its optimizer group (`scaling` lets a run give scaling factors their own rate). */
export interface TrainableParam {
  name: string;
  variable: tf.Variable;
  group: 'adapter' | 'scaling';
}

/** One named adapter attached to a model. */
export interface AdapterInstance {
  readonly name: string;
  readonly method: MethodName;
  /** The parsed method config (output of the method's zod schema). */
  readonly config: Record<string, unknown>;
  /** Per-module layers by Hugging Face module name, in target order. */
  readonly layers: ReadonlyMap<string, AdapterLayer>;
  trainable(): TrainableParam[];
  /** Every tensor of the adapter (trainable and frozen) under stable native keys, for checkpoints. */
  state(): Record<string, tf.Tensor>;
  /** Restores `state()` output; throws a clear error on a missing key or a wrong shape. */
  loadState(state: Record<string, tf.Tensor>): void;
  dispose(): void;
}

export interface CreateOptions {
  adapterName: string;
  /** Seed for initialisation and frozen random tensors; recorded with the run. */
  seed: number;
}

/** One adapter method: one folder under engine/adapters/<method>/ exports one of these. */
export interface MethodDefinition<C extends Record<string, unknown> = Record<string, unknown>> {
  name: MethodName;
  label: string;
  description: string;
  /** The method's config schema (defaults, ranges, messages) used by CLI, project file, API and UI. */
  schema: z.ZodType<C>;
  supportedKinds: readonly AdaptableKind[];
  count(targets: TargetModule[], config: C): ParameterCount;
  /** Builds the adapter over resolved target layers (in `named_modules()` order) and attaches it. */
  create(layers: AdaptableLayer[], config: C, options: CreateOptions): AdapterInstance;
}
