import * as tf from '@tensorflow/tfjs-core';
import { fusedOps } from '../backends/fused.ts';
import { CONFIG_FILE, ModelError } from './config.ts';

export const ropeTypes = ['default', 'linear', 'dynamic', 'yarn', 'llama3', 'longrope'] as const;
export type RopeType = (typeof ropeTypes)[number];

/**
 * RoPE of one layer type, normalised from config.json, with what transformers' `ROPE_INIT_FUNCTIONS`
 * derive at model init (yarn's and longrope's attention factor) already computed.
 */
export type Rope = {
  theta: number;
  /** Rotated dimensions of a head: int(head_dim · partial_rotary_factor); the rest passes through. */
  dim: number;
  headDim: number;
} & (
  | { type: 'default' }
  | { type: 'linear'; factor: number }
  | { type: 'dynamic'; factor: number; maxPositions: number }
  | {
      type: 'yarn';
      factor: number;
      originalMaxPositions: number;
      attentionFactor: number;
      betaFast: number;
      betaSlow: number;
      truncate: boolean;
    }
  | {
      type: 'llama3';
      factor: number;
      lowFreqFactor: number;
      highFreqFactor: number;
      originalMaxPositions: number;
    }
  | {
      type: 'longrope';
      shortFactor: number[];
      longFactor: number[];
      originalMaxPositions: number;
      attentionFactor: number;
    }
);

/** How an architecture reads its RoPE settings (the parts of transformers' config classes that differ). */
export interface RopeOptions {
  /** θ when config.json names none: one for every layer type, or one per layer type (Gemma 3). */
  defaultTheta: number | Record<string, number>;
  headDim: number;
  /** `max_position_embeddings`. */
  maxPositions: number;
  /** `layer_types` of the blocks; RoPE settings keyed by them are per layer type. */
  layerTypes: readonly string[];
  /** Honours `partial_rotary_factor` (Phi-3); elsewhere a factor other than 1 is refused. */
  partialRotary?: boolean;
  /** The rope types the architecture's config class accepts (default: all of `ropeTypes`). */
  types?: readonly RopeType[];
  /** Old names of rope types this config class renames (Phi-3: `su` and `yarn` mean longrope). */
  legacyTypes?: Record<string, RopeType>;
}

/** Fields each rope type reads (transformers' `_validate_<type>_rope_parameters`), beside rope_type/type/rope_theta. */
const FIELDS: Record<RopeType, { required: string[]; optional: string[] }> = {
  default: { required: [], optional: [] },
  linear: { required: ['factor'], optional: [] },
  dynamic: { required: ['factor'], optional: [] },
  yarn: {
    required: ['factor'],
    optional: [
      'original_max_position_embeddings',
      'attention_factor',
      'beta_fast',
      'beta_slow',
      'mscale',
      'mscale_all_dim',
      'truncate',
    ],
  },
  llama3: {
    required: ['factor', 'low_freq_factor', 'high_freq_factor'],
    optional: ['original_max_position_embeddings'],
  },
  longrope: {
    required: ['short_factor', 'long_factor'],
    optional: ['original_max_position_embeddings', 'attention_factor', 'factor'],
  },
};
const ALWAYS = ['rope_type', 'type', 'rope_theta', 'partial_rotary_factor'];

type Json = Record<string, unknown>;

function isObject(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function refuse(field: string, problem: string): never {
  throw new ModelError(CONFIG_FILE, `"${field}" ${problem}`);
}

function positiveNumber(value: unknown, field: string): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) {
    refuse(field, `must be a positive number, got ${JSON.stringify(value)}`);
  }
  return value;
}

function optionalPositive(params: Json, key: string, where: string): number | undefined {
  const value = params[key];
  return value === undefined || value === null ? undefined : positiveNumber(value, `${where}.${key}`);
}

function factorList(value: unknown, field: string, length: number): number[] {
  if (!Array.isArray(value) || value.some((x) => typeof x !== 'number' || !Number.isFinite(x) || x <= 0)) {
    refuse(field, 'must be a list of positive numbers');
  }
  if (value.length !== length)
    refuse(field, `must have ${length} entries (rotated dimensions / 2), got ${value.length}`);
  return value as number[];
}

/** yarn's attention scaling: 0.1·m·ln(s) + 1 for s > 1. */
function yarnMscale(scale: number, m = 1): number {
  return scale <= 1 ? 1 : 0.1 * m * Math.log(scale) + 1;
}

/**
 * One RoPE dict (`rope_parameters`, one layer type of it, or 4.x `rope_scaling`) → Rope. `where` names it in
 * messages; `theta` and `originalMaxPositions` come resolved from the surrounding config.
 */
function parseRopeDict(
  params: Json,
  where: string,
  context: { theta: number; partial: number; originalMaxPositions?: number },
  opts: RopeOptions,
): Rope {
  const named = params.rope_type ?? params.type ?? 'default';
  if (params.rope_type !== undefined && params.type !== undefined && params.rope_type !== params.type) {
    refuse(
      `${where}.rope_type`,
      `(${JSON.stringify(params.rope_type)}) and "${where}.type" (${JSON.stringify(params.type)}) disagree`,
    );
  }
  const typeField = params.rope_type !== undefined ? `${where}.rope_type` : `${where}.type`;
  if (typeof named !== 'string') refuse(typeField, `must be a string, got ${JSON.stringify(named)}`);
  const type = (opts.legacyTypes?.[named] ?? named) as RopeType;
  const allowed = opts.types ?? ropeTypes;
  if (!allowed.includes(type)) {
    throw new ModelError(
      CONFIG_FILE,
      `rope type "${named}" ("${typeField}") is not supported (supported: ${allowed.join(', ')})`,
    );
  }
  const fields = FIELDS[type];
  for (const key of Object.keys(params)) {
    if (!ALWAYS.includes(key) && !fields.required.includes(key) && !fields.optional.includes(key)) {
      refuse(
        `${where}.${key}`,
        `is not a field of rope type "${type}" (its fields: ${[...fields.required, ...fields.optional].join(', ') || 'none'})`,
      );
    }
  }
  for (const key of fields.required) {
    if (params[key] === undefined || params[key] === null) {
      throw new ModelError(CONFIG_FILE, `missing "${where}.${key}" (needed for rope type "${type}")`);
    }
  }
  const dim = Math.trunc(opts.headDim * context.partial);
  if (dim < 2 || dim % 2 !== 0) {
    refuse(
      `${where}.partial_rotary_factor`,
      `gives ${dim} rotated dimensions of head_dim ${opts.headDim}; RoPE needs an even number ≥ 2`,
    );
  }
  const base = { theta: context.theta, dim, headDim: opts.headDim };
  const original = (): number => {
    const own = optionalPositive(params, 'original_max_position_embeddings', where);
    const top = context.originalMaxPositions;
    if (own !== undefined && top !== undefined && own !== top) {
      refuse(
        `${where}.original_max_position_embeddings`,
        `(${own}) disagrees with the top-level "original_max_position_embeddings" (${top})`,
      );
    }
    return own ?? top ?? opts.maxPositions;
  };
  const factor = () => positiveNumber(params.factor, `${where}.factor`);
  switch (type) {
    case 'default':
      return { ...base, type };
    case 'linear':
      return { ...base, type, factor: factor() };
    case 'dynamic':
      return { ...base, type, factor: factor(), maxPositions: opts.maxPositions };
    case 'llama3': {
      const low = positiveNumber(params.low_freq_factor, `${where}.low_freq_factor`);
      const high = positiveNumber(params.high_freq_factor, `${where}.high_freq_factor`);
      if (high <= low)
        refuse(`${where}.high_freq_factor`, `(${high}) must be above low_freq_factor (${low})`);
      return {
        ...base,
        type,
        factor: factor(),
        lowFreqFactor: low,
        highFreqFactor: high,
        originalMaxPositions: original(),
      };
    }
    case 'yarn': {
      const f = factor();
      const mscale = optionalPositive(params, 'mscale', where);
      const mscaleAllDim = optionalPositive(params, 'mscale_all_dim', where);
      const attentionFactor =
        optionalPositive(params, 'attention_factor', where) ??
        (mscale && mscaleAllDim ? yarnMscale(f, mscale) / yarnMscale(f, mscaleAllDim) : yarnMscale(f));
      if (params.truncate !== undefined && typeof params.truncate !== 'boolean') {
        refuse(`${where}.truncate`, `must be true or false, got ${JSON.stringify(params.truncate)}`);
      }
      return {
        ...base,
        type,
        factor: f,
        originalMaxPositions: original(),
        attentionFactor,
        // transformers reads these with `or`: 0 means the default too
        betaFast: optionalPositive(params, 'beta_fast', where) ?? 32,
        betaSlow: optionalPositive(params, 'beta_slow', where) ?? 1,
        truncate: params.truncate !== false,
      };
    }
    case 'longrope': {
      const originalMaxPositions = original();
      const f = optionalPositive(params, 'factor', where) ?? opts.maxPositions / originalMaxPositions;
      const attentionFactor =
        optionalPositive(params, 'attention_factor', where) ??
        (f <= 1 ? 1 : Math.sqrt(1 + Math.log(f) / Math.log(originalMaxPositions)));
      return {
        ...base,
        type,
        shortFactor: factorList(params.short_factor, `${where}.short_factor`, dim / 2),
        longFactor: factorList(params.long_factor, `${where}.long_factor`, dim / 2),
        originalMaxPositions,
        attentionFactor,
      };
    }
  }
}

function thetaFor(defaultTheta: RopeOptions['defaultTheta'], layerType: string): number {
  return typeof defaultTheta === 'number' ? defaultTheta : defaultTheta[layerType];
}

/**
 * RoPE by layer type from config.json, read as transformers 5 reads it (`standardize_rope_params`):
 * `rope_parameters` (5.x) or `rope_theta` + `rope_scaling` (4.x), one dict for all blocks or one per layer
 * type when its keys are layer types (Gemma 3). Anything ambiguous or unknown is refused naming the field.
 */
export function ropeOf(config: Json, opts: RopeOptions): Record<string, Rope> {
  const scaling = config.rope_scaling;
  const parameters = config.rope_parameters;
  for (const [key, value] of [
    ['rope_scaling', scaling],
    ['rope_parameters', parameters],
  ] as const) {
    if (value !== undefined && value !== null && !isObject(value)) refuse(key, 'must be an object or null');
  }
  if (isObject(scaling) && isObject(parameters) && JSON.stringify(scaling) !== JSON.stringify(parameters)) {
    refuse('rope_scaling', 'and "rope_parameters" are both set and differ (give one of them)');
  }
  const where = isObject(scaling) ? 'rope_scaling' : 'rope_parameters';
  const raw: Json = (isObject(scaling) ? scaling : isObject(parameters) ? parameters : {}) as Json;
  const topTheta =
    config.rope_theta === undefined || config.rope_theta === null
      ? undefined
      : positiveNumber(config.rope_theta, 'rope_theta');
  const topPartial =
    config.partial_rotary_factor === undefined || config.partial_rotary_factor === null
      ? undefined
      : positiveNumber(config.partial_rotary_factor, 'partial_rotary_factor');
  const topOriginal =
    config.original_max_position_embeddings === undefined || config.original_max_position_embeddings === null
      ? undefined
      : positiveNumber(config.original_max_position_embeddings, 'original_max_position_embeddings');
  const types = [...new Set(opts.layerTypes)];
  const perType = Object.keys(raw).some((k) => types.includes(k));
  const dicts: [string, Json, string][] = perType
    ? types.map((type) => {
        const dict = raw[type];
        if (!isObject(dict))
          refuse(`${where}.${type}`, 'must be an object (RoPE of the blocks of that layer type)');
        return [type, dict, `${where}.${type}`];
      })
    : types.map((type) => [type, raw, where]);
  if (perType) {
    const stray = Object.keys(raw).filter((k) => !types.includes(k));
    if (stray.length > 0)
      refuse(`${where}.${stray[0]}`, `is not a layer type of this model (layer types: ${types.join(', ')})`);
  }
  const out: Record<string, Rope> = {};
  for (const [type, dict, at] of dicts) {
    const ownTheta =
      dict.rope_theta === undefined || dict.rope_theta === null
        ? undefined
        : positiveNumber(dict.rope_theta, `${at}.rope_theta`);
    if (ownTheta !== undefined && topTheta !== undefined && ownTheta !== topTheta) {
      refuse(`${at}.rope_theta`, `(${ownTheta}) disagrees with the top-level "rope_theta" (${topTheta})`);
    }
    const ownPartial = optionalPositive(dict, 'partial_rotary_factor', at);
    if (ownPartial !== undefined && topPartial !== undefined && ownPartial !== topPartial) {
      refuse(
        `${at}.partial_rotary_factor`,
        `(${ownPartial}) disagrees with the top-level "partial_rotary_factor" (${topPartial})`,
      );
    }
    const partial = ownPartial ?? topPartial ?? 1;
    if (partial !== 1 && !opts.partialRotary) {
      refuse(
        ownPartial !== undefined ? `${at}.partial_rotary_factor` : 'partial_rotary_factor',
        `${partial} is not supported for this model type (only 1)`,
      );
    }
    out[type] = parseRopeDict(
      dict,
      at,
      {
        theta: ownTheta ?? topTheta ?? thetaFor(opts.defaultTheta, type),
        partial,
        originalMaxPositions: topOriginal,
      },
      opts,
    );
  }
  return out;
}

/**
 * Inverse frequencies [dim / 2] and the cos/sin scaling for sequences of `seqLength` positions (max position
 * id + 1): dynamic NTK and longrope depend on it, the other types do not. Transformers keeps dynamic's grown
 * frequencies in the module between calls until a call is back within max_position_embeddings; here every
 * call computes them from its own length, which is what a freshly loaded transformers model does.
 */
export function ropeFrequencies(rope: Rope, seqLength: number): { invFreq: Float32Array; scaling: number } {
  const { dim } = rope;
  const half = dim / 2;
  const powers = (theta: number) => Float64Array.from({ length: half }, (_, i) => theta ** ((2 * i) / dim));
  const inv = new Float64Array(half);
  let scaling = 1;
  switch (rope.type) {
    case 'default':
    case 'linear': {
      const p = powers(rope.theta);
      const factor = rope.type === 'linear' ? rope.factor : 1;
      for (let i = 0; i < half; i++) inv[i] = 1 / p[i] / factor;
      break;
    }
    case 'dynamic': {
      const length = Math.max(seqLength, rope.maxPositions);
      const theta =
        rope.theta * ((rope.factor * length) / rope.maxPositions - (rope.factor - 1)) ** (dim / (dim - 2));
      const p = powers(theta);
      for (let i = 0; i < half; i++) inv[i] = 1 / p[i];
      break;
    }
    case 'llama3': {
      const { factor, lowFreqFactor, highFreqFactor, originalMaxPositions } = rope;
      const lowFreqWavelen = originalMaxPositions / lowFreqFactor;
      const highFreqWavelen = originalMaxPositions / highFreqFactor;
      const p = powers(rope.theta);
      for (let i = 0; i < half; i++) {
        const f = 1 / p[i];
        const wavelen = (2 * Math.PI) / f;
        if (wavelen > lowFreqWavelen) inv[i] = f / factor;
        else if (wavelen < highFreqWavelen) inv[i] = f;
        else {
          const smooth = (originalMaxPositions / wavelen - lowFreqFactor) / (highFreqFactor - lowFreqFactor);
          inv[i] = ((1 - smooth) * f) / factor + smooth * f;
        }
      }
      break;
    }
    case 'yarn': {
      const { factor, originalMaxPositions: original, betaFast, betaSlow } = rope;
      const correction = (rotations: number) =>
        (dim * Math.log(original / (rotations * 2 * Math.PI))) / (2 * Math.log(rope.theta));
      let low = correction(betaFast);
      let high = correction(betaSlow);
      if (rope.truncate) {
        low = Math.floor(low);
        high = Math.ceil(high);
      }
      low = Math.max(low, 0);
      high = Math.min(high, dim - 1);
      if (low === high) high += 0.001;
      const p = powers(rope.theta);
      for (let i = 0; i < half; i++) {
        const ramp = Math.min(1, Math.max(0, (i - low) / (high - low)));
        const extrapolation = 1 - ramp;
        inv[i] = (1 / (factor * p[i])) * (1 - extrapolation) + (1 / p[i]) * extrapolation;
      }
      scaling = rope.attentionFactor;
      break;
    }
    case 'longrope': {
      const ext = seqLength > rope.originalMaxPositions ? rope.longFactor : rope.shortFactor;
      const p = powers(rope.theta);
      for (let i = 0; i < half; i++) inv[i] = 1 / (ext[i] * p[i]);
      scaling = rope.attentionFactor;
      break;
    }
  }
  return { invFreq: Float32Array.from(inv), scaling };
}

/** Whether the frequencies depend on the sequence length (so a forward pass must know its longest position). */
export function ropeDependsOnLength(rope: Rope): boolean {
  return rope.type === 'dynamic' || rope.type === 'longrope';
}

/**
 * cos and sin tables [B, 1, T, headDim] for position ids [B, T], and rotate_half of the rotated dimensions as
 * a [headDim, headDim] matrix. Pass-through dimensions (partial rotary) get cos 1 and sin 0.
 */
export interface RopeTables {
  cos: tf.Tensor4D;
  sin: tf.Tensor4D;
  rotate: tf.Tensor2D;
  /** Whether every dimension rotates (no partial rotary): the fused kernel covers only that case. */
  full: boolean;
}

export function ropeTables(positions: tf.Tensor2D, rope: Rope, seqLength: number): RopeTables {
  const { invFreq, scaling } = ropeFrequencies(rope, seqLength);
  return tf.tidy(() => {
    const [batch, length] = positions.shape;
    const freqs = tf.mul(
      tf.reshape(tf.cast(positions, 'float32'), [batch, length, 1]),
      tf.reshape(tf.tensor1d(invFreq), [1, 1, invFreq.length]),
    );
    const emb = tf.concat([freqs, freqs], 2);
    let cos: tf.Tensor = tf.cos(emb);
    let sin: tf.Tensor = tf.sin(emb);
    if (scaling !== 1) {
      cos = tf.mul(cos, scaling);
      sin = tf.mul(sin, scaling);
    }
    const pass = rope.headDim - rope.dim;
    if (pass > 0) {
      cos = tf.concat([cos, tf.ones([batch, length, pass])], 2);
      sin = tf.concat([sin, tf.zeros([batch, length, pass])], 2);
    }
    const shape: [number, number, number, number] = [batch, 1, length, rope.headDim];
    return {
      cos: tf.reshape(cos, shape) as tf.Tensor4D,
      sin: tf.reshape(sin, shape) as tf.Tensor4D,
      rotate: rotateHalfMatrix(rope.headDim, rope.dim),
      full: rope.dim === rope.headDim,
    };
  });
}

/** rotate_half of the first `dim` of `headDim` dimensions as a matrix: x·R = [−x₂, x₁, 0…]. */
function rotateHalfMatrix(headDim: number, dim: number): tf.Tensor2D {
  const half = dim / 2;
  const r = new Float32Array(headDim * headDim);
  for (let i = 0; i < half; i++) {
    r[(i + half) * headDim + i] = -1;
    r[i * headDim + i + half] = 1;
  }
  return tf.tensor2d(r, [headDim, headDim]);
}

/**
 * x·cos + rotate_half(x)·sin with rotate_half(x) = [−x₂, x₁] (transformers' non-interleaved RoPE). The
 * rotation is one product with a signed permutation matrix: wasm's split and concat along the last axis (and
 * their gradients) were the slowest kernels of a small Llama's step.
 */
export function applyRope(x: tf.Tensor4D, tables: RopeTables): tf.Tensor4D {
  const fused = tables.full ? fusedOps() : null;
  if (fused) return fused.rope(x, tables.cos, tables.sin);
  return tf.tidy(() => {
    const dim = x.shape[3];
    const rows = tf.reshape(x, [-1, dim]) as tf.Tensor2D;
    const rotated = tf.reshape(tf.matMul(rows, tables.rotate), x.shape);
    return tf.add(tf.mul(x, tables.cos), tf.mul(rotated, tables.sin)) as tf.Tensor4D;
  });
}
