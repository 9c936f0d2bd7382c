import * as tf from '@tensorflow/tfjs-core';
import type { AdaptableLayer } from '../../models/layers.ts';
import { createLayers } from '../instance.ts';
import { deriveSeed, normalTensor, Rng } from '../random.ts';
import { ownedVariable, RegenerableInstance, trainableFirst } from '../shared/regenerable.ts';
import { TorchGenerator } from '../shared/torch-random.ts';
import type { CreateOptions, MethodDefinition, ParameterCount, TargetModule, TensorCount } from '../types.ts';
import { projectionDims, type VeraConfig, veraBound, veraConfigSchema } from './config.ts';
import { veraPeft } from './export.ts';
import { VeraLayer } from './layer.ts';

export { type VeraConfig, veraConfigSchema } from './config.ts';
export { VeraLayer } from './layer.ts';

/** Per-module key suffixes and model-level keys, as PEFT's (native keys are the same without prefixes). */
export const veraSuffixes = { lambdaB: 'vera_lambda_b', lambdaD: 'vera_lambda_d' } as const;
export const veraSharedKeys = { a: 'vera_A', b: 'vera_B' } as const;

function count(targets: TargetModule[], config: VeraConfig): ParameterCount {
  const perModule = targets.map((target) => {
    const tensors: TensorCount[] = [
      { name: veraSuffixes.lambdaB, shape: [target.outFeatures], trainable: true },
      { name: veraSuffixes.lambdaD, shape: [config.r], trainable: true },
    ];
    return { module: target.name, trainable: target.outFeatures + config.r, frozen: 0, tensors };
  });
  const { inMax, outMax } = projectionDims(targets);
  const names = targets.map((t) => t.name);
  const shared: TensorCount[] = targets.length
    ? [
        { name: veraSharedKeys.a, shape: [config.r, inMax], trainable: false, modules: names },
        { name: veraSharedKeys.b, shape: [outMax, config.r], trainable: false, modules: names },
      ]
    : [];
  return {
    perModule,
    shared,
    trainable: perModule.reduce((s, m) => s + m.trainable, 0),
    frozen: targets.length ? config.r * (inMax + outMax) : 0,
  };
}

/**
 * vera_A (r × in_max) then vera_B (out_max × r) from one torch.Generator().manual_seed(key) stream, each
 * uniform_(−bound, bound) with PEFT's kaiming bound for its fan_in (in_max, then r): PEFT's exact matrices.
 */
export function veraProjections(
  key: number,
  r: number,
  inMax: number,
  outMax: number,
): { a: tf.Tensor2D; b: tf.Tensor2D } {
  const gen = new TorchGenerator(key);
  const boundA = veraBound(inMax);
  const a = gen.uniform(r * inMax, -boundA, boundA);
  const boundB = veraBound(r);
  const b = gen.uniform(outMax * r, -boundB, boundB);
  return { a: tf.tensor2d(a, [r, inMax]), b: tf.tensor2d(b, [outMax, r]) };
}

function create(layers: AdaptableLayer[], config: VeraConfig, options: CreateOptions): RegenerableInstance {
  const { adapterName, seed } = options;
  const { r } = config;
  const { inMax, outMax } = projectionDims(layers);
  const built = createLayers<VeraLayer>('vera', adapterName, layers, (tensors, attach) => {
    const projections = veraProjections(config.projectionPrngKey, r, inMax, outMax);
    const veraA = ownedVariable(projections.a, false);
    const veraB = ownedVariable(projections.b, false);
    tensors.push(
      { key: veraSharedKeys.a, variable: veraA, trainable: false },
      { key: veraSharedKeys.b, variable: veraB, trainable: false },
    );
    for (const base of layers) {
      let lambdaD: tf.Tensor1D;
      let lambdaB: tf.Tensor1D;
      if (config.initWeights) {
        lambdaD = tf.fill([r], config.dInitial);
        lambdaB = tf.zeros([base.outFeatures]);
      } else {
        lambdaD = normalTensor([r], new Rng(deriveSeed(seed, base.name, 'vera_lambda_d'))) as tf.Tensor1D;
        lambdaB = tf.ones([base.outFeatures]);
      }
      const dv = ownedVariable(lambdaD, true);
      const bv = ownedVariable(lambdaB, true);
      tensors.push(
        { key: `${base.name}.${veraSuffixes.lambdaB}`, variable: bv, trainable: true, group: 'adapter' },
        { key: `${base.name}.${veraSuffixes.lambdaD}`, variable: dv, trainable: true, group: 'adapter' },
      );
      attach(new VeraLayer(adapterName, base, veraA, veraB, dv, bv, config.dropout));
    }
  });
  const instance = new RegenerableInstance(
    adapterName,
    'vera',
    config,
    built.layers,
    trainableFirst(built.tensors),
  );
  return instance.allowMissing([veraSharedKeys.a, veraSharedKeys.b]);
}

export const vera: MethodDefinition<VeraConfig> = {
  name: 'vera',
  label: 'VeRA',
  description:
    'Vector-based random matrix adaptation (Kopiczko et al. 2024), as PEFT: shared frozen random A and B, ' +
    'trainable scaling vectors λ_d (r) and λ_b (out) per module; ΔW = diag(λ_b)·B·diag(λ_d)·A.',
  schema: veraConfigSchema,
  supportedKinds: ['Linear', 'Conv1D'],
  count,
  create,
  peft: veraPeft,
  scaling: () => ({
    scale: null,
    kind: 'none',
    formula: 'none: λ_b (per output) and λ_d (per rank) scale B and A',
  }),
  loraConversionRank: (_target, config) => config.r,
};
