import type * as tf from '@tensorflow/tfjs-core';
import type { z } from 'zod';
import type { MethodName } from '../common/method-names.ts';
import type { AdaptableKind, AdaptableLayer, AdapterLayer } from '../models/layers.ts';

export type { MethodName } from '../common/method-names.ts';

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
  /** A model-level tensor: the targets that use it (VeRA's projections: all; TinyLoRA's tied v: its group). */
  modules?: string[];
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

/** A module trained whole alongside the adapter (PEFT's `modules_to_save`), in the checkpoint's orientation. */
export interface SavedModule {
  readonly base: AdaptableLayer;
  readonly weight: tf.Variable;
  readonly bias: tf.Variable | null;
}

/** One named adapter attached to a model. */
export interface AdapterInstance {
  readonly name: string;
  readonly method: MethodName;
  /** The parsed method config (output of the method's zod schema). */
  readonly config: Record<string, unknown>;
  /** Per-module layers by Hugging Face module name, in target order. */
  readonly layers: ReadonlyMap<string, AdapterLayer>;
  /** `modulesToSave` copies by module name (not targets: they replace a module rather than adapt it). */
  readonly savedModules?: ReadonlyMap<string, SavedModule>;
  trainable(): TrainableParam[];
  /** Every tensor of the adapter (trainable and frozen) under stable native keys, for checkpoints. */
  state(): Record<string, tf.Tensor>;
  /** Restores `state()` output; throws a clear error on a missing key or a wrong shape. */
  loadState(state: Record<string, tf.Tensor>): void;
  /**
   * Undoes what `create` changed outside the adapter's own tensors (PiSSA/OLoRA write a residual into the
   * base weight): `detachAdapter` calls it before removing the layers and disposing.
   */
  detach?(): void;
  dispose(): void;
}

export interface CreateOptions {
  adapterName: string;
  /** Seed for initialisation and frozen random tensors; recorded with the run. */
  seed: number;
}

/** PEFT's `task_type` as written in adapter_config.json. */
export type PeftTaskType = 'CAUSAL_LM' | 'SEQ_CLS' | null;

export interface PeftContext {
  baseModelNameOrPath: string;
  taskType: PeftTaskType;
  /** The resolved targets of the instance (module tree order), e.g. for `target_modules` and `fan_in_fan_out`. */
  targets: TargetModule[];
  /** Every module name of the model (`ModelSpec.modules`), to shorten long target lists as PEFT does. */
  moduleNames?: string[];
}

/**
 * A method's PEFT format. Tensor keys are FULL PEFT keys, exactly as in `adapter_model.safetensors`:
 * `base_model.model.<module>.<suffix>` for per-module tensors and `base_model.<name>` for model-level ones
 * (no adapter name). Tensors are float32; the caller owns (and disposes) what `toPeft` returns.
 */
export interface PeftFormat<C> {
  /** `peft_type` in adapter_config.json (`LORA`, `VERA`, `TINYLORA`). */
  peftType: string;
  /** adapter_config.json fields that are Python floats, so written `0.0` rather than `0` (`lora_dropout`). */
  floatFields: readonly string[];
  toPeft(
    instance: AdapterInstance,
    ctx: PeftContext,
  ): { adapterConfig: Record<string, unknown>; tensors: Record<string, tf.Tensor> };
  /**
   * The method config and native state (for `AdapterInstance.loadState` after `attachAdapter`) of a PEFT
   * adapter. Keys may come with or without the `base_model.model.` prefix. Throws a clear error for
   * settings this engine cannot reproduce.
   */
  fromPeft(
    adapterConfig: Record<string, unknown>,
    tensors: Record<string, tf.Tensor>,
  ): { config: C; state: Record<string, tf.Tensor> };
}

/**
 * Reading side of a PEFT format, for the PEFT custom methods the hand-off's train.py registers (TLoRA, LoRA-XS):
 * their adapters come back through import, but PEFT itself cannot load them, so they are no export format.
 */
export type PeftReader<C> = Pick<PeftFormat<C>, 'peftType' | 'fromPeft'>;

/** An adapter tensor downloaded to the host (how the analysis reads a state). */
export interface HostTensor {
  shape: number[];
  data: Float32Array;
  trainable: boolean;
  /** The optimizer group of a trainable tensor (`scaling` marks learned scaling factors). */
  group?: TrainableParam['group'];
}

/** What a method's `scaling` hook reads: one module of a live or recorded adapter. */
export interface ScalingInput {
  /** The method config, as recorded (fields added after it was written may be missing). */
  config: Record<string, unknown>;
  module: string;
  /** Position of the module among the adapter's targets (TinyLoRA's `layer_idx`). */
  moduleIndex: number;
  moduleCount: number;
  /** The module's own tensors by suffix (`lora_A.weight`). */
  tensors: ReadonlyMap<string, HostTensor>;
  /** Model-level tensors by key (`tinylora_v.0`). */
  shared: ReadonlyMap<string, HostTensor>;
}

/** How a method scales the update at one module (the analysis' scaling-factor series). */
export interface MethodScaling {
  /** The scalar multiplying the update, where the method has one (LoRA's α/r, TLoRA's learned α). */
  scale: number | null;
  /** `fixed` from the config, `learned` from a trainable scalar, `none`. */
  kind: 'fixed' | 'learned' | 'none';
  /** How `scale` is obtained, for display (`loraAlpha / r = 16 / 8`). */
  formula: string;
  /** Keys of model-level vectors that scale this module's update (TinyLoRA's tied v). */
  sharedVectors?: string[];
  /** TinyLoRA: the weight-tying group whose v this module uses. */
  group?: number;
}

/** One adapter method: one folder under engine/adapters/<method>/ exports one of these. */
export interface MethodDefinition<C extends Record<string, unknown> = Record<string, unknown>> {
  name: MethodName;
  label: string;
  description: string;
  /** The method's config schema (defaults, ranges, messages) used by CLI, project file, API and UI. */
  schema: z.ZodType<C>;
  supportedKinds: readonly AdaptableKind[];
  /**
   * The targets when `targetModules` is unset, for a `model_type` (null: none known). Absent: PEFT's LoRA
   * table, which PEFT's VeRA and TinyLoRA copy.
   */
  defaultTargets?(modelType: string): string[] | null;
  count(targets: TargetModule[], config: C): ParameterCount;
  /** Builds the adapter over resolved target layers (in `named_modules()` order) and attaches it. */
  create(layers: AdaptableLayer[], config: C, options: CreateOptions): AdapterInstance;
  /** The PEFT file format, for methods PEFT has (LoRA, VeRA, TinyLoRA). */
  peft?: PeftFormat<C>;
  /** The adapters of the hand-off's PEFT custom method (engine/handoff/studio_methods.py), for methods PEFT lacks. */
  handoffPeft?: PeftReader<C>;
  /**
   * The scaling of the update at one module, from the config and the state. The module's own trainable
   * vectors (DoRA's magnitude, VeRA's λ) are added by the analysis; list model-level ones in `sharedVectors`.
   */
  scaling(input: ScalingInput): MethodScaling;
  /**
   * The rank k of `AdapterLayer.lowRankFactors()` at a target (for LoRA-converted export sizes), or null
   * when the update there is not low-rank (DoRA).
   */
  loraConversionRank?(target: TargetModule, config: C): number | null;
}
