import type * as tf from '@tensorflow/tfjs-core';
import type { AdaptableLayer } from '../../models/layers.ts';
import { createLayers, TensorTableInstance } from '../instance.ts';
import { deriveSeed, normalTensor, Rng } from '../random.ts';
import { configNumber } from '../shared/config.ts';
import { svdFactors } from '../shared/factors.ts';
import { ownedVariable, trainableFirst } from '../shared/regenerable.ts';
import type { CreateOptions, MethodDefinition, ParameterCount, TargetModule, TensorCount } from '../types.ts';
import { type LoraxsConfig, loraxsConfigSchema, loraxsSuffixes } from './config.ts';
import { loraxsHandoffPeft } from './handoff-peft.ts';
import { LoraxsLayer } from './layer.ts';

export { type LoraxsConfig, loraxsConfigSchema, loraxsSuffixes } from './config.ts';
export { LoraxsLayer } from './layer.ts';

function rankAt(
  target: { name: string; inFeatures: number; outFeatures: number },
  config: LoraxsConfig,
): number {
  const limit = Math.min(target.inFeatures, target.outFeatures);
  if (config.r > limit) {
    throw new Error(`loraxs: r = ${config.r} exceeds min(in, out) = ${limit} at ${target.name}`);
  }
  return config.r;
}

function count(targets: TargetModule[], config: LoraxsConfig): ParameterCount {
  const perModule = targets.map((target) => {
    const r = rankAt(target, config);
    const tensors: TensorCount[] = [
      { name: loraxsSuffixes.a, shape: [r, target.inFeatures], trainable: false },
      { name: loraxsSuffixes.b, shape: [target.outFeatures, r], trainable: false },
      { name: loraxsSuffixes.core, shape: [r, r], trainable: true },
    ];
    return {
      module: target.name,
      trainable: r * r,
      frozen: r * (target.inFeatures + target.outFeatures),
      tensors,
    };
  });
  return {
    perModule,
    shared: [],
    trainable: perModule.reduce((s, m) => s + m.trainable, 0),
    frozen: perModule.reduce((s, m) => s + m.frozen, 0),
  };
}

function create(layers: AdaptableLayer[], config: LoraxsConfig, options: CreateOptions): TensorTableInstance {
  const { adapterName, seed } = options;
  const scaling = config.alpha / config.r;
  const built = createLayers<LoraxsLayer>('loraxs', adapterName, layers, (tensors, attach) => {
    for (const base of layers) {
      const r = rankAt(base, config);
      const { a, b } = svdFactors(base, r, 'right');
      const av = ownedVariable(a, false);
      const bv = ownedVariable(b, false);
      const init = normalTensor([r, r], new Rng(deriveSeed(seed, base.name, 'loraxs')), 0, config.initStd);
      const core = ownedVariable(init as tf.Tensor2D, true);
      const key = (suffix: string) => `${base.name}.${suffix}`;
      tensors.push(
        { key: key(loraxsSuffixes.a), variable: av, trainable: false },
        { key: key(loraxsSuffixes.b), variable: bv, trainable: false },
        { key: key(loraxsSuffixes.core), variable: core, trainable: true, group: 'adapter' },
      );
      attach(new LoraxsLayer(adapterName, base, av, bv, core, scaling, config.dropout));
    }
  });
  return new TensorTableInstance(adapterName, 'loraxs', config, built.layers, trainableFirst(built.tensors));
}

export const loraxs: MethodDefinition<LoraxsConfig> = {
  name: 'loraxs',
  label: 'LoRA-XS',
  description:
    'LoRA-XS (Bałazy et al. 2024): frozen truncated-SVD factors of each weight with a trainable r × r core R ' +
    'between them; ΔW = (alpha/r)·B·R·A, r² parameters per module.',
  schema: loraxsConfigSchema,
  supportedKinds: ['Linear', 'Conv1D'],
  count,
  create,
  scaling({ config }) {
    const r = configNumber(config, 'r');
    const alpha = configNumber(config, 'alpha');
    if (r === undefined || alpha === undefined) {
      return { scale: null, kind: 'none', formula: 'no alpha / r in the config' };
    }
    return { scale: alpha / r, kind: 'fixed', formula: `alpha / r = ${alpha} / ${r}` };
  },
  handoffPeft: loraxsHandoffPeft,
  loraConversionRank: (_target, config) => config.r,
};
