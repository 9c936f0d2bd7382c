import type { AdaptableLayer } from '../../models/layers.ts';
import { shapeSize } from '../../shape.ts';
import { createLayers, TensorTableInstance } from '../instance.ts';
import { deriveSeed, Rng } from '../random.ts';
import type { MethodDefinition, ParameterCount, TargetModule, TensorCount } from '../types.ts';
import { type LoraConfig, loraConfigSchema, loraScaling, moduleRankAlpha } from './config.ts';
import { dora } from './dora.ts';
import { loraPeft, loraSuffixes } from './export.ts';
import { initialFactors } from './init.ts';
import { LoraLayer } from './layer.ts';
import type { LoraVariant } from './variants.ts';

export { type LoraConfig, loraConfigSchema } from './config.ts';
export { DoraLayer } from './dora.ts';
export { LoraLayer } from './layer.ts';
export type { LoraVariant, LoraVariantLayer } from './variants.ts';

/** PEFT's `resolve_lora_variant`: the variant a config asks for, or null for plain LoRA. */
export function loraVariant(config: Pick<LoraConfig, 'useDora'>): LoraVariant | null {
  return config.useDora ? dora : null;
}

const isPrincipal = (config: LoraConfig) =>
  config.initLoraWeights === 'pissa' || config.initLoraWeights === 'olora';

/** The tensors of one module, named by their PEFT suffix (which is also the native key suffix). */
function moduleTensors(target: TargetModule, config: LoraConfig): TensorCount[] {
  const { r } = moduleRankAlpha(config, target.name);
  const { inFeatures: inF, outFeatures: outF } = target;
  const tensors: TensorCount[] =
    target.kind === 'Embedding'
      ? [
          { name: loraSuffixes.embeddingA, shape: [r, inF], trainable: true },
          { name: loraSuffixes.embeddingB, shape: [outF, r], trainable: true },
        ]
      : [
          { name: loraSuffixes.a, shape: [r, inF], trainable: true },
          { name: loraSuffixes.b, shape: [outF, r], trainable: true },
        ];
  if (config.loraBias && target.kind !== 'Embedding') {
    tensors.push({ name: loraSuffixes.bias, shape: [outF], trainable: true });
  }
  tensors.push(...(loraVariant(config)?.count(target) ?? []));
  return tensors;
}

function count(targets: TargetModule[], config: LoraConfig): ParameterCount {
  const perModule = targets.map((target) => {
    const tensors = moduleTensors(target, config);
    return {
      module: target.name,
      trainable: tensors.reduce((sum, t) => sum + shapeSize(t.shape), 0),
      frozen: 0,
      tensors,
    };
  });
  return { perModule, shared: [], trainable: perModule.reduce((s, m) => s + m.trainable, 0), frozen: 0 };
}

function create(
  layers: AdaptableLayer[],
  config: LoraConfig,
  options: { adapterName: string; seed: number },
): TensorTableInstance {
  const { adapterName, seed } = options;
  if (config.loraBias && layers.some((l) => l.kind === 'Embedding')) {
    throw new Error('lora: loraBias is not supported on Embedding modules');
  }
  const built = createLayers<LoraLayer>(
    'lora',
    adapterName,
    layers,
    (tensors, attach) => {
      for (const base of layers) {
        const { r, alpha } = moduleRankAlpha(config, base.name);
        const scaling = loraScaling(alpha, r, config.useRslora);
        const rng = new Rng(deriveSeed(seed, base.name, 'lora'));
        const factors = initialFactors(base, config.initLoraWeights, r, scaling, config.loraBias, rng);
        const initial = isPrincipal(config) ? { a: factors.a.clone(), b: factors.b.clone() } : null;
        const layer = new LoraLayer(
          adapterName,
          base,
          { r, alpha, scaling, dropout: config.dropout, loraBias: config.loraBias },
          factors,
          loraVariant(config),
        );
        if (initial) {
          layer.setInitialDelta(initial.a, initial.b);
          initial.a.dispose();
          initial.b.dispose();
        }
        attach(layer);
        const key = (suffix: string) => `${base.name}.${suffix}`;
        const embedding = base.kind === 'Embedding';
        tensors.push({
          key: key(embedding ? loraSuffixes.embeddingA : loraSuffixes.a),
          variable: layer.a,
          trainable: true,
        });
        tensors.push({
          key: key(embedding ? loraSuffixes.embeddingB : loraSuffixes.b),
          variable: layer.b,
          trainable: true,
        });
        if (layer.bias) tensors.push({ key: key(loraSuffixes.bias), variable: layer.bias, trainable: true });
        for (const t of layer.variant?.tensors ?? []) {
          tensors.push({ key: key(t.suffix), variable: t.variable, trainable: t.trainable });
        }
      }
    },
    (layer) => {
      layer.restoreBase();
      layer.disposeCaches();
    },
  );
  const created = [...built.layers.values()];
  return new TensorTableInstance(adapterName, 'lora', config, built.layers, built.tensors, {
    detach: () => {
      for (const layer of created) layer.restoreBase();
    },
    dispose: () => {
      for (const layer of created) layer.disposeCaches();
    },
  });
}

export const lora: MethodDefinition<LoraConfig> = {
  name: 'lora',
  label: 'LoRA',
  description:
    'Low-rank update ΔW = (alpha/r)·B·A on each target (Hu et al. 2021), with rsLoRA scaling, DoRA, ' +
    'PiSSA/OLoRA initialisation and per-module rank/alpha patterns, as PEFT.',
  schema: loraConfigSchema,
  supportedKinds: ['Linear', 'Conv1D', 'Embedding'],
  count,
  create,
  peft: loraPeft,
  scaling({ config, module }) {
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
    };
  },
  loraConversionRank(target, config) {
    if (config.useDora) return null;
    const { r } = moduleRankAlpha(config, target.name);
    // PiSSA/OLoRA export as [A; A₀], [B, −B₀] relative to the original base weight.
    return isPrincipal(config) ? 2 * r : r;
  },
};

/** Typed access to a LoRA instance's layers (for tests and the analysis of LoRA-specific tensors). */
export function loraLayers(instance: { layers: ReadonlyMap<string, unknown> }): Map<string, LoraLayer> {
  return new Map([...instance.layers].map(([k, v]) => [k, v as LoraLayer]));
}
