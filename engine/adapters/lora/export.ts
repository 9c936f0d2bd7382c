import * as tf from '@tensorflow/tfjs-core';
import { AdapterStateError } from '../instance.ts';
import {
  checkPeftConfig,
  PEFT_MODEL_PREFIX,
  parsePeftConfig,
  peftCommonConfig,
  peftTargetFields,
  stripPeftPrefix,
} from '../peft.ts';
import type { AdapterInstance, PeftContext, PeftFormat } from '../types.ts';
import { type LoraConfig, loraConfigSchema } from './config.ts';
import { DORA_MAGNITUDE } from './dora.ts';
import type { LoraLayer } from './layer.ts';

/** Per-module tensor suffixes, as in PEFT's files (and in this engine's native state). */
export const loraSuffixes = {
  a: 'lora_A.weight',
  b: 'lora_B.weight',
  bias: 'lora_B.bias',
  magnitude: DORA_MAGNITUDE,
  embeddingA: 'lora_embedding_A',
  embeddingB: 'lora_embedding_B',
} as const;

const initsRelativeToResidual = new Set(['pissa', 'olora', 'corda', 'loftq', 'lora_ga', 'mica']);

/** LoraConfig fields this engine cannot reproduce; a PEFT adapter that sets one is refused. */
const unsupportedFields = [
  'trainable_token_indices',
  'layer_replication',
  'use_qalora',
  'alora_invocation_tokens',
  'arrow_config',
  'use_bdlora',
  'velora_config',
  'monteclora_config',
  'kasa_config',
  'target_parameters',
  'megatron_config',
];

/**
 * PEFT LoRA export. PiSSA/OLoRA adapters are relative to the residual base weight they wrote, so they are
 * converted as PEFT's `path_initial_model_for_weight_conversion` does: A' = [A; A₀], B' = [B, −B₀] with
 * r' = 2r and alpha' = 2·alpha (·√2 with rsLoRA), which applies to the ORIGINAL base model.
 */
export function loraToPeft(
  instance: AdapterInstance,
  ctx: PeftContext,
): { adapterConfig: Record<string, unknown>; tensors: Record<string, tf.Tensor> } {
  const config = instance.config as LoraConfig;
  const principal = config.initLoraWeights === 'pissa' || config.initLoraWeights === 'olora';
  const tensors: Record<string, tf.Tensor> = {};
  for (const [module, adapterLayer] of instance.layers) {
    const layer = adapterLayer as LoraLayer;
    const key = (suffix: string) => `${PEFT_MODEL_PREFIX}${module}.${suffix}`;
    const initial = principal ? layer.initialFactors : null;
    if (principal && !initial)
      throw new Error(`lora: ${module} has no initial ${config.initLoraWeights} factors`);
    const a = initial ? tf.concat([layer.a, initial.a], 0) : layer.a.clone();
    const b = initial ? tf.tidy(() => tf.concat([layer.b, tf.neg(initial.b)], 1)) : layer.b.clone();
    if (layer.isEmbedding) {
      tensors[key(loraSuffixes.embeddingA)] = a;
      tensors[key(loraSuffixes.embeddingB)] = b;
    } else {
      tensors[key(loraSuffixes.a)] = a;
      tensors[key(loraSuffixes.b)] = b;
      if (layer.bias) tensors[key(loraSuffixes.bias)] = layer.bias.clone();
    }
    for (const t of layer.variant?.tensors ?? []) tensors[key(t.suffix)] = t.variable.clone();
  }
  const rankFactor = principal ? 2 : 1;
  const alphaFactor = principal ? (config.useRslora ? Math.SQRT2 : 2) : 1;
  const scaleValues = (record: Record<string, number>, factor: number) =>
    Object.fromEntries(Object.entries(record).map(([k, v]) => [k, v * factor]));

  // The fields every PEFT version since 0.10 knows, with PEFT's defaults; newer fields only when set, so
  // older PEFT releases (which reject unknown keys) still load the file.
  const adapterConfig: Record<string, unknown> = {
    ...peftCommonConfig('LORA', config, ctx),
    alpha_pattern: scaleValues(config.alphaPattern, alphaFactor),
    init_lora_weights: principal ? true : config.initLoraWeights,
    loftq_config: {},
    lora_alpha: config.loraAlpha * alphaFactor,
    lora_dropout: config.dropout,
    megatron_config: null,
    megatron_core: 'megatron.core',
    r: config.r * rankFactor,
    rank_pattern: scaleValues(config.rankPattern, rankFactor),
    use_dora: config.useDora,
    use_rslora: config.useRslora,
  };
  if (config.loraBias) adapterConfig.lora_bias = true;
  return { adapterConfig, tensors };
}

/** Reads a PEFT LoRA adapter into this engine's config and native state (tensors are passed through). */
export function loraFromPeft(
  adapterConfig: Record<string, unknown>,
  tensors: Record<string, tf.Tensor>,
): { config: LoraConfig; state: Record<string, tf.Tensor> } {
  const c = adapterConfig;
  checkPeftConfig(c, 'LORA', unsupportedFields);
  let init = c.init_lora_weights ?? true;
  if (typeof init === 'string' && init !== 'gaussian') {
    const family = init.split('_niter_')[0];
    if (initsRelativeToResidual.has(family)) {
      throw new AdapterStateError(
        `adapter_config.json: init_lora_weights = "${init}" means the adapter applies to a modified base model; ` +
          're-save it with PEFT path_initial_model_for_weight_conversion to get a plain LoRA adapter',
      );
    }
    // Data-driven inits that leave the base weight alone (eva, orthogonal): the saved factors are all that matters.
    init = true;
  }
  const config = parsePeftConfig(loraConfigSchema, {
    r: c.r,
    loraAlpha: c.lora_alpha,
    dropout: c.lora_dropout ?? undefined,
    useRslora: c.use_rslora ?? undefined,
    useDora: c.use_dora ?? undefined,
    initLoraWeights: init,
    rankPattern: c.rank_pattern ?? undefined,
    alphaPattern: c.alpha_pattern ?? undefined,
    loraBias: c.lora_bias ?? undefined,
    ...peftTargetFields(c),
  });
  const known = Object.values(loraSuffixes);
  const state: Record<string, tf.Tensor> = {};
  for (const [fileKey, tensor] of Object.entries(tensors)) {
    // Older PEFT files keep DoRA's `.weight` on the magnitude key.
    const key = stripPeftPrefix(fileKey).replace(
      /\.lora_magnitude_vector\.weight$/,
      '.lora_magnitude_vector',
    );
    if (!known.some((suffix) => key.endsWith(`.${suffix}`))) {
      throw new AdapterStateError(`adapter_model.safetensors: unexpected LoRA tensor "${fileKey}"`);
    }
    state[key] = tensor;
  }
  return { config, state };
}

export const loraPeft: PeftFormat<LoraConfig> = {
  peftType: 'LORA',
  floatFields: ['lora_dropout'],
  toPeft: loraToPeft,
  fromPeft: loraFromPeft,
};
