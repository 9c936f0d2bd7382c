import * as tf from '@tensorflow/tfjs-core';
import type { AdaptableLayer } from '../../models/layers.ts';
import { createLayers, TensorTableInstance } from '../instance.ts';
import { deriveSeed, kaimingUniform, Rng } from '../random.ts';
import { ownedVariable } from '../shared/regenerable.ts';
import type { CreateOptions, MethodDefinition, ParameterCount, TargetModule, TensorCount } from '../types.ts';
import { type MosloraConfig, mosloraConfigSchema } from './config.ts';
import { MosloraLayer } from './layer.ts';

export { type MosloraConfig, mosloraConfigSchema } from './config.ts';
export { MosloraLayer } from './layer.ts';

/** Native per-module keys, named as the reference's modules (`<module>.<suffix>`). */
export const mosloraSuffixes = { a: 'lora_A.weight', mixer: 'lora_AB.weight', b: 'lora_B.weight' } as const;

function moduleTensors(target: TargetModule, r: number): TensorCount[] {
  return [
    { name: mosloraSuffixes.a, shape: [r, target.inFeatures], trainable: true },
    { name: mosloraSuffixes.mixer, shape: [r, r], trainable: true },
    { name: mosloraSuffixes.b, shape: [target.outFeatures, r], trainable: true },
  ];
}

function count(targets: TargetModule[], config: MosloraConfig): ParameterCount {
  const perModule = targets.map((target) => {
    const tensors = moduleTensors(target, config.r);
    const trainable = tensors.reduce((s, t) => s + t.shape[0] * t.shape[1], 0);
    return { module: target.name, trainable, frozen: 0, tensors };
  });
  return { perModule, shared: [], trainable: perModule.reduce((s, m) => s + m.trainable, 0), frozen: 0 };
}

/** A and M as the reference (kaiming-uniform with a = √5, i.e. U(±1/√fan_in)), B = 0: a no-op at start. */
function create(
  layers: AdaptableLayer[],
  config: MosloraConfig,
  options: CreateOptions,
): TensorTableInstance {
  const { adapterName, seed } = options;
  const { r } = config;
  const scaling = config.loraAlpha / r;
  const built = createLayers<MosloraLayer>('moslora', adapterName, layers, (tensors, attach) => {
    for (const base of layers) {
      const rng = new Rng(deriveSeed(seed, base.name, 'moslora'));
      const a = ownedVariable(kaimingUniform([r, base.inFeatures], rng), true);
      const mixer = ownedVariable(kaimingUniform([r, r], rng), true);
      const b = ownedVariable(tf.zeros([base.outFeatures, r]) as tf.Tensor2D, true);
      const key = (suffix: string) => `${base.name}.${suffix}`;
      tensors.push(
        { key: key(mosloraSuffixes.a), variable: a, trainable: true },
        { key: key(mosloraSuffixes.mixer), variable: mixer, trainable: true },
        { key: key(mosloraSuffixes.b), variable: b, trainable: true },
      );
      attach(new MosloraLayer(adapterName, base, a, mixer, b, scaling, config.dropout));
    }
  });
  return new TensorTableInstance(adapterName, 'moslora', config, built.layers, built.tensors);
}

export const moslora: MethodDefinition<MosloraConfig> = {
  name: 'moslora',
  label: 'MoSLoRA',
  description:
    'Mixture-of-subspaces LoRA (Wu et al. 2024): LoRA with a trainable r × r mixer M between A and B, ' +
    'ΔW = (loraAlpha/r)·B·M·A; r² more parameters per module than LoRA.',
  schema: mosloraConfigSchema,
  supportedKinds: ['Linear', 'Conv1D'],
  count,
  create,
  scaling({ config }) {
    const { r, loraAlpha } = config;
    if (typeof r !== 'number' || typeof loraAlpha !== 'number') {
      return { scale: null, kind: 'none', formula: 'no loraAlpha / r in the config' };
    }
    return { scale: loraAlpha / r, kind: 'fixed', formula: `loraAlpha / r = ${loraAlpha} / ${r}` };
  },
  loraConversionRank: (_target, config) => config.r,
};
