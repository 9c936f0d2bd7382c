import * as tf from '@tensorflow/tfjs-core';
import type { LoraLayer } from '../adapters/lora/layer.ts';
import { escapeRegex } from '../adapters/peft.ts';
import { minimalTargetModules } from '../adapters/targets.ts';
import type { AdapterInstance } from '../adapters/types.ts';
import { type AdapterLayer, inferenceContext } from '../models/layers.ts';
import type { LoadedModel } from '../models/types.ts';
import { ExportError } from './errors.ts';
import {
  exportedSavedModules,
  instanceTargets,
  MODULE_PREFIX,
  type PeftAdapter,
  peftTaskType,
  withBaseFields,
} from './peft.ts';

/**
 * The LoraConfig fields a plain LoRA adapter_config.json carries, with PEFT's defaults: the same field set
 * the LoRA method's own PEFT export writes (fields every PEFT release since 0.10 knows, so older releases,
 * which reject unknown keys, still load the file).
 */
export function peftLoraConfigDefaults(): Record<string, unknown> {
  return {
    alpha_pattern: {},
    auto_mapping: null,
    bias: 'none',
    fan_in_fan_out: false,
    inference_mode: true,
    init_lora_weights: true,
    layers_pattern: null,
    layers_to_transform: null,
    loftq_config: {},
    lora_alpha: 8,
    lora_dropout: 0,
    megatron_config: null,
    megatron_core: 'megatron.core',
    modules_to_save: null,
    peft_type: 'LORA',
    r: 8,
    rank_pattern: {},
    revision: null,
    target_modules: null,
    use_dora: false,
    use_rslora: false,
  };
}

/** The most frequent value; ties go to the smaller one so the choice is deterministic. */
export function mostCommon(values: number[]): number {
  const counts = new Map<number, number>();
  for (const v of values) counts.set(v, (counts.get(v) ?? 0) + 1);
  let best = values[0];
  for (const [v, c] of counts) if (c > counts.get(best)! || (c === counts.get(best)! && v < best)) best = v;
  return best;
}

/**
 * Any low-rank method's ΔW written as a plain PEFT LoRA adapter: ΔW = left·right becomes lora_B = left,
 * lora_A = right (Embedding: lora_embedding_A = leftᵀ, lora_embedding_B = rightᵀ), r = k and
 * lora_alpha = k so PEFT's scaling is 1. Modules whose rank differs from the most common one get
 * `rank_pattern` / `alpha_pattern` entries. Refuses updates that are not a pure low-rank ΔW (DoRA's
 * rescaling, a bias on the adapter output).
 */
export function buildLoraConversion(
  model: LoadedModel,
  instance: AdapterInstance,
  baseModelNameOrPath: string,
): PeftAdapter {
  const targets = instanceTargets(model, instance);
  if (targets.length === 0) throw new ExportError(`adapter "${instance.name}" has no layers on this model`);
  const tensors: PeftAdapter['tensors'] = {};
  const ranks = new Map<string, number>();
  for (const target of targets) {
    const layer = instance.layers.get(target.name)!;
    const where = `${instance.method} adapter "${instance.name}" at ${target.name}`;
    const factors = lowRankFactorsFromOriginal(layer);
    if (!factors) {
      throw new ExportError(
        `${where}: the update is not low-rank (DoRA rescales the base weight by a learned magnitude), so it cannot be written as plain LoRA; export --format peft or --format merged instead`,
      );
    }
    try {
      const { left, right } = factors;
      const k = left.shape[1];
      const rows = target.kind === 'Embedding' ? target.inFeatures : target.outFeatures;
      const cols = target.kind === 'Embedding' ? target.outFeatures : target.inFeatures;
      if (left.shape[0] !== rows || right.shape[0] !== k || right.shape[1] !== cols) {
        throw new ExportError(
          `${where}: low-rank factors have shapes [${left.shape}] and [${right.shape}], expected [${rows}, k] and [k, ${cols}]`,
        );
      }
      if (target.kind !== 'Embedding') checkNoOutputBias(layer, target.inFeatures, target.outFeatures, where);
      const key = `${MODULE_PREFIX}${target.name}`;
      const data = (t: tf.Tensor) => tf.tidy(() => Float32Array.from(t.dataSync() as Float32Array));
      if (target.kind === 'Embedding') {
        const a = tf.transpose(left);
        const b = tf.transpose(right);
        tensors[`${key}.lora_embedding_A`] = { shape: [k, rows], data: data(a) };
        tensors[`${key}.lora_embedding_B`] = { shape: [cols, k], data: data(b) };
        a.dispose();
        b.dispose();
      } else {
        tensors[`${key}.lora_A.weight`] = { shape: [k, cols], data: data(right) };
        tensors[`${key}.lora_B.weight`] = { shape: [rows, k], data: data(left) };
      }
      ranks.set(target.name, k);
    } finally {
      factors.left.dispose();
      factors.right.dispose();
    }
  }
  return plainLoraAdapter(model, instance, ranks, tensors, baseModelNameOrPath);
}

/**
 * The PEFT LoRA adapter of `tensors` with per-module `ranks` at scaling 1 (lora_alpha = r, alpha_pattern =
 * rank_pattern for modules off the most common rank), carrying the adapter's modules_to_save.
 */
export function plainLoraAdapter(
  model: LoadedModel,
  instance: AdapterInstance,
  ranks: Map<string, number>,
  tensors: PeftAdapter['tensors'],
  baseModelNameOrPath: string,
): PeftAdapter {
  const targets = instanceTargets(model, instance);
  const r = mostCommon([...ranks.values()]);
  const rankPattern: Record<string, number> = {};
  for (const [name, k] of ranks) if (k !== r) rankPattern[escapeRegex(name)] = k;
  const config = {
    ...peftLoraConfigDefaults(),
    r,
    lora_alpha: r,
    rank_pattern: rankPattern,
    alpha_pattern: { ...rankPattern },
    target_modules: minimalTargetModules(
      targets.map((t) => t.name),
      model.spec.modules.map((m) => m.name),
    ),
    // PEFT sets fan_in_fan_out for GPT-2's Conv1D (and warns); A/B shapes are the same either way.
    fan_in_fan_out: targets.some((t) => t.kind === 'Conv1D'),
  };
  const saved = exportedSavedModules(model, instance);
  return {
    adapterConfig: {
      ...withBaseFields(config, 'LORA', { baseModelNameOrPath, taskType: peftTaskType(model.spec) }),
      modules_to_save: saved.names,
    },
    tensors: { ...tensors, ...saved.tensors },
  };
}

/**
 * A pure ΔW adapter maps x = 0 to 0 on top of a zero base output; anything else (LoRA's lora_bias) is an
 * output bias the LoRA factors alone cannot carry.
 */
function checkNoOutputBias(
  layer: AdapterLayer,
  inFeatures: number,
  outFeatures: number,
  where: string,
): void {
  const bias = tf.tidy(() => {
    const y = layer.forward(
      tf.zeros([1, inFeatures]) as tf.Tensor2D,
      tf.zeros([1, outFeatures]) as tf.Tensor2D,
      inferenceContext(),
    );
    return tf.max(tf.abs(y)).dataSync()[0];
  });
  if (bias !== 0) {
    throw new ExportError(
      `${where}: the adapter adds an output bias (lora_bias), which plain LoRA factors cannot hold; export --format peft or --format merged instead`,
    );
  }
}

/**
 * ΔW relative to the ORIGINAL base weight. PiSSA/OLoRA wrote a residual W − s·B₀·A₀ into the base, so
 * their update against the original model is s·B·A − s·B₀·A₀ = [s·B, −s·B₀]·[A; A₀] (PEFT's
 * path_initial_model_for_weight_conversion); other adapters leave the base alone.
 */
export function lowRankFactorsFromOriginal(
  layer: AdapterLayer,
): { left: tf.Tensor2D; right: tf.Tensor2D } | null {
  const factors = layer.lowRankFactors();
  const initial = (layer as Partial<LoraLayer>).initialFactors;
  if (!factors || !initial) return factors;
  const scaling = (layer as LoraLayer).settings.scaling;
  const embedding = (layer as LoraLayer).isEmbedding;
  const out = tf.tidy(() => {
    // Embedding factors are (num × r)·(r × dim) = Aᵀ·(s·Bᵀ); Linear ones (out × r)·(r × in) = (s·B)·A.
    const left0 = embedding ? tf.neg(tf.transpose(initial.a)) : tf.mul(initial.b, -scaling);
    const right0 = embedding ? tf.mul(tf.transpose(initial.b), scaling) : initial.a;
    return {
      left: tf.concat([factors.left, left0], 1) as tf.Tensor2D,
      right: tf.concat([factors.right, right0], 0) as tf.Tensor2D,
    };
  });
  factors.left.dispose();
  factors.right.dispose();
  return out;
}
