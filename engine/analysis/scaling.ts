import { type LoraConfig, loraScaling, moduleRankAlpha } from '../adapters/lora/config.ts';
import { tyingGroups } from '../adapters/tinylora/config.ts';
import type { MethodName } from '../adapters/types.ts';
import type { HostTensor } from './tensors.ts';
import type { ScalingFactors, VectorStats } from './types.ts';

export interface ScalingInput {
  method: MethodName;
  config: Record<string, unknown>;
  module: string;
  /** Position of the module among the adapter's targets (TinyLoRA's `layer_idx`). */
  moduleIndex: number;
  moduleCount: number;
  /** The module's own tensors by suffix. */
  tensors: ReadonlyMap<string, HostTensor>;
  /** Model-level tensors by key. */
  shared: ReadonlyMap<string, HostTensor>;
}

export function vectorStats(name: string, data: ArrayLike<number>): VectorStats {
  const n = data.length;
  let sum = 0;
  let sumAbs = 0;
  let sumSq = 0;
  let min = Number.POSITIVE_INFINITY;
  let max = Number.NEGATIVE_INFINITY;
  for (let i = 0; i < n; i++) {
    const v = data[i];
    sum += v;
    sumAbs += Math.abs(v);
    sumSq += v * v;
    if (v < min) min = v;
    if (v > max) max = v;
  }
  const mean = n ? sum / n : 0;
  let m2 = 0;
  for (let i = 0; i < n; i++) m2 += (data[i] - mean) ** 2;
  return {
    name,
    length: n,
    mean,
    std: n ? Math.sqrt(m2 / n) : 0,
    min: n ? min : 0,
    max: n ? max : 0,
    meanAbs: n ? sumAbs / n : 0,
    l2: Math.sqrt(sumSq),
  };
}

function num(config: Record<string, unknown>, key: string): number | undefined {
  const v = config[key];
  return typeof v === 'number' && Number.isFinite(v) ? v : undefined;
}

/** The trainable per-module vectors that scale the update (not biases). */
function moduleVectors(input: ScalingInput): VectorStats[] {
  const out: VectorStats[] = [];
  for (const [name, t] of input.tensors) {
    if (!t.trainable || t.shape.length !== 1 || t.data.length < 2 || /bias/i.test(name)) continue;
    out.push(vectorStats(name, t.data));
  }
  return out;
}

/** A trainable scalar of the module (TLoRA's α): the `scaling` optimizer group, or any one-element tensor. */
function learnedScalar(input: ScalingInput): { name: string; value: number } | null {
  const candidates = [...input.tensors].filter(([, t]) => t.trainable && t.data.length === 1);
  const pick = candidates.find(([, t]) => t.group === 'scaling') ?? candidates[0];
  return pick ? { name: pick[0], value: pick[1].data[0] } : null;
}

/** TinyLoRA's tying group of module `moduleIndex` among `moduleCount` targets (the method's own rule). */
export function tinyLoraGroup(moduleIndex: number, moduleCount: number, weightTying: number): number {
  return tyingGroups(moduleCount, weightTying).groupOf[moduleIndex];
}

/** The model-level trainable vector of tying group `g`: the key whose last numeric segment is g. */
function groupVector(shared: ReadonlyMap<string, HostTensor>, g: number): [string, HostTensor] | null {
  for (const [key, t] of shared) {
    if (!t.trainable || t.shape.length !== 1) continue;
    const m = /(\d+)$/.exec(key);
    if (m && Number(m[1]) === g) return [key, t];
  }
  return null;
}

/**
 * Each method's scaling, data-driven: a fixed scale from the config where the method has one, a learned
 * scalar where the state has one, and the trainable vectors that scale per feature (DoRA's magnitude,
 * VeRA's λ_b/λ_d) or per basis direction (TinyLoRA's tied v).
 */
export function scalingFactors(input: ScalingInput): ScalingFactors {
  const vectors = moduleVectors(input);
  const learned = learnedScalar(input);
  const { config, module } = input;
  switch (input.method) {
    case 'lora': {
      // Configs written before a field existed lack its default: patterns then match nothing.
      const { r, alpha } = moduleRankAlpha(
        { rankPattern: {}, alphaPattern: {}, ...config } as LoraConfig,
        module,
      );
      const rs = config.useRslora === true;
      return {
        scale: loraScaling(alpha, r, rs),
        kind: 'fixed',
        formula: rs ? `loraAlpha / √r = ${alpha} / √${r}` : `loraAlpha / r = ${alpha} / ${r}`,
        vectors,
      };
    }
    case 'loraxs': {
      const r = num(config, 'r');
      const alpha = num(config, 'alpha');
      if (r === undefined || alpha === undefined) {
        return { scale: null, kind: 'none', formula: 'no alpha / r in the config', vectors };
      }
      return { scale: alpha / r, kind: 'fixed', formula: `alpha / r = ${alpha} / ${r}`, vectors };
    }
    case 'tlora':
      return learned
        ? { scale: learned.value, kind: 'learned', formula: `learned α (${learned.name})`, vectors }
        : { scale: null, kind: 'none', formula: 'no learned α in the state', vectors };
    case 'vera':
      return {
        scale: null,
        kind: 'none',
        formula: 'none: λ_b (per output) and λ_d (per rank) scale B and A',
        vectors,
      };
    case 'tinylora': {
      const group = tinyLoraGroup(input.moduleIndex, input.moduleCount, num(config, 'weightTying') ?? 0);
      const v = groupVector(input.shared, group);
      return {
        scale: null,
        kind: 'none',
        formula: `none: ΔW = B·(Σᵢ vᵢPᵢ)·A with v of tying group ${group}`,
        vectors: v ? [...vectors, vectorStats(v[0], v[1].data)] : vectors,
        group,
      };
    }
  }
}
