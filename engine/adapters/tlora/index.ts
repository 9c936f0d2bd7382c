import * as tf from '@tensorflow/tfjs-core';
import type { AdaptableLayer } from '../../models/layers.ts';
import { createLayers } from '../instance.ts';
import { deriveSeed, normalTensor, Rng } from '../random.ts';
import { ownedVariable, RegenerableInstance, trainableFirst } from '../shared/regenerable.ts';
import type { CreateOptions, MethodDefinition, ParameterCount, TargetModule, TensorCount } from '../types.ts';
import { kaimingNormalStd, type TloraConfig, tloraConfigSchema, tloraSuffixes } from './config.ts';
import { tloraHandoffPeft } from './handoff-peft.ts';
import { TloraLayer } from './layer.ts';

export { type TloraConfig, tloraConfigSchema, tloraSuffixes } from './config.ts';
export { TloraLayer } from './layer.ts';

function moduleTensors(target: TargetModule, r: number): TensorCount[] {
  return [
    { name: tloraSuffixes.a, shape: [target.inFeatures, r], trainable: false },
    { name: tloraSuffixes.b, shape: [r, r], trainable: true },
    { name: tloraSuffixes.c, shape: [r, target.outFeatures], trainable: false },
    { name: tloraSuffixes.scaling, shape: [1], trainable: true },
  ];
}

function count(targets: TargetModule[], config: TloraConfig): ParameterCount {
  const perModule = targets.map((target) => {
    const tensors = moduleTensors(target, config.r);
    const sum = (trainable: boolean) =>
      tensors
        .filter((t) => t.trainable === trainable)
        .reduce((s, t) => s + tf.util.sizeFromShape(t.shape), 0);
    return { module: target.name, trainable: sum(true), frozen: sum(false), tensors };
  });
  return {
    perModule,
    shared: [],
    trainable: perModule.reduce((s, m) => s + m.trainable, 0),
    frozen: perModule.reduce((s, m) => s + m.frozen, 0),
  };
}

/**
 * The frozen A (in × r, std 1/√(3r)) and C (r × out, std 1/√(3·out)) of the module at `index`: kaiming-normal
 * with a = √5 as the reference, drawn from seeds derived from (projectionSeed, module index), so they can
 * be regenerated from the config alone.
 */
export function tloraProjections(
  projectionSeed: number,
  index: number,
  inF: number,
  outF: number,
  r: number,
): { a: tf.Tensor2D; c: tf.Tensor2D } {
  const a = normalTensor(
    [inF, r],
    new Rng(deriveSeed(projectionSeed, index, 'tlora', tloraSuffixes.a)),
    0,
    kaimingNormalStd(r),
  );
  const c = normalTensor(
    [r, outF],
    new Rng(deriveSeed(projectionSeed, index, 'tlora', tloraSuffixes.c)),
    0,
    kaimingNormalStd(outF),
  );
  return { a: a as tf.Tensor2D, c: c as tf.Tensor2D };
}

function create(layers: AdaptableLayer[], parsed: TloraConfig, options: CreateOptions): RegenerableInstance {
  const { adapterName } = options;
  // Record the seed actually used, so the adapter config alone regenerates A and C.
  const config: TloraConfig = { ...parsed, projectionSeed: parsed.projectionSeed ?? options.seed >>> 0 };
  const { r } = config;
  const built = createLayers<TloraLayer>('tlora', adapterName, layers, (tensors, attach) => {
    layers.forEach((base, index) => {
      const { a, c } = tloraProjections(config.projectionSeed!, index, base.inFeatures, base.outFeatures, r);
      const randomA = ownedVariable(a, false);
      const randomC = ownedVariable(c, false);
      const loraB = ownedVariable(tf.zeros([r, r]) as tf.Tensor2D, true);
      const scaling = ownedVariable(tf.ones([1]) as tf.Tensor1D, true);
      const key = (suffix: string) => `${base.name}.${suffix}`;
      tensors.push(
        { key: key(tloraSuffixes.a), variable: randomA, trainable: false },
        { key: key(tloraSuffixes.b), variable: loraB, trainable: true, group: 'adapter' },
        { key: key(tloraSuffixes.c), variable: randomC, trainable: false },
        { key: key(tloraSuffixes.scaling), variable: scaling, trainable: true, group: 'scaling' },
      );
      attach(new TloraLayer(adapterName, base, randomA, loraB, randomC, scaling, config.dropout));
    });
  });
  const tensors = trainableFirst(built.tensors);
  const instance = new RegenerableInstance(adapterName, 'tlora', config, built.layers, tensors);
  return instance.allowMissing(tensors.filter((t) => !t.trainable).map((t) => t.key));
}

export const tlora: MethodDefinition<TloraConfig> = {
  name: 'tlora',
  label: 'TLoRA',
  description:
    'Tri-matrix LoRA (Islam 2025): ΔW = α·(A·B·C)ᵀ with frozen random A and C, a trainable r × r core B ' +
    '(zero-init) and a trainable scalar α per module; r² + 1 parameters per module.',
  schema: tloraConfigSchema,
  supportedKinds: ['Linear', 'Conv1D'],
  count,
  create,
  scaling({ tensors }) {
    const alpha = tensors.get(tloraSuffixes.scaling);
    return alpha
      ? { scale: alpha.data[0], kind: 'learned', formula: `learned α (${tloraSuffixes.scaling})` }
      : { scale: null, kind: 'none', formula: 'no learned α in the state' };
  },
  handoffPeft: tloraHandoffPeft,
  loraConversionRank: (_target, config) => config.r,
};
