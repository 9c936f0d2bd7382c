import * as tf from '@tensorflow/tfjs-core';
import type { AdaptableLayer } from '../../models/layers.ts';
import { createLayers } from '../instance.ts';
import { deriveSeed, Rng, uniformTensor } from '../random.ts';
import { configNumber } from '../shared/config.ts';
import { svdFactors } from '../shared/factors.ts';
import { ownedVariable, RegenerableInstance } from '../shared/regenerable.ts';
import { TorchGenerator } from '../shared/torch-random.ts';
import type { CreateOptions, MethodDefinition, ParameterCount, TargetModule, TensorCount } from '../types.ts';
import { type TinyloraConfig, tinyloraConfigSchema, tyingGroups } from './config.ts';
import { tinyloraPeft } from './export.ts';
import { TinyloraLayer } from './layer.ts';

export { pythonRound, type TinyloraConfig, tinyloraConfigSchema, tyingGroups } from './config.ts';
export { TinyloraLayer } from './layer.ts';

/** Per-module key suffixes (as PEFT's) and the model-level key of tying group g. */
export const tinyloraSuffixes = { a: 'tinylora_A', b: 'tinylora_B', p: 'tinylora_P' } as const;
export const tinyloraVKey = (group: number) => `tinylora_v.${group}`;

/** Rows × cols of the logical weight: Linear/Conv1D out × in, Embedding num_embeddings × dim. */
function logicalShape(target: { kind: string; inFeatures: number; outFeatures: number }): [number, number] {
  return target.kind === 'Embedding'
    ? [target.inFeatures, target.outFeatures]
    : [target.outFeatures, target.inFeatures];
}

/** PEFT's r_a = min(r, out, in): the SVD rank actually used at a module. */
export function effectiveRank(
  target: { kind: string; inFeatures: number; outFeatures: number },
  r: number,
): number {
  const [rows, cols] = logicalShape(target);
  return Math.min(r, rows, cols);
}

function count(targets: TargetModule[], config: TinyloraConfig): ParameterCount {
  const perModule = targets.map((target) => {
    const [rows, cols] = logicalShape(target);
    const ra = effectiveRank(target, config.r);
    const tensors: TensorCount[] = [
      { name: tinyloraSuffixes.a, shape: [ra, cols], trainable: false },
      { name: tinyloraSuffixes.b, shape: [rows, ra], trainable: false },
      { name: tinyloraSuffixes.p, shape: [config.u, ra, ra], trainable: false },
    ];
    return {
      module: target.name,
      trainable: 0,
      frozen: tensors.reduce((s, t) => s + tf.util.sizeFromShape(t.shape), 0),
      tensors,
    };
  });
  const { numGroups, groupOf } = tyingGroups(targets.length, config.weightTying);
  const shared: TensorCount[] = Array.from({ length: targets.length ? numGroups : 0 }, (_, g) => ({
    name: tinyloraVKey(g),
    shape: [config.u],
    trainable: true,
    modules: targets.filter((_, i) => groupOf[i] === g).map((t) => t.name),
  }));
  return {
    perModule,
    shared,
    trainable: shared.length * config.u,
    frozen: perModule.reduce((s, m) => s + m.frozen, 0),
  };
}

/**
 * The frozen projections of the module at `index`: torch.normal(0, 1/√r_a, (u, r_a, r_a)) from
 * torch.Generator().manual_seed(projectionSeed + index), as PEFT (see TorchGenerator for how exact that
 * is). PyTorch draws fewer than 16 normals by another path; those tiny P come from this engine's own RNG.
 */
export function tinyloraProjection(
  projectionSeed: number,
  index: number,
  u: number,
  ra: number,
): tf.Tensor3D {
  const n = u * ra * ra;
  const std = 1 / Math.sqrt(ra);
  const values =
    n >= 16
      ? new TorchGenerator(projectionSeed + index).normal(n, 0, std)
      : new Rng(deriveSeed(projectionSeed, index, 'tinylora_P')).normalArray(n, 0, std);
  return tf.tensor3d(values, [u, ra, ra]);
}

function create(
  layers: AdaptableLayer[],
  config: TinyloraConfig,
  options: CreateOptions,
): RegenerableInstance {
  const { adapterName, seed } = options;
  const { numGroups, groupOf } = tyingGroups(layers.length, config.weightTying);
  const built = createLayers<TinyloraLayer>('tinylora', adapterName, layers, (tensors, attach) => {
    const vs = Array.from({ length: layers.length ? numGroups : 0 }, (_, g) => {
      const init =
        config.initWeights === 'uniform'
          ? uniformTensor(
              [config.u],
              -config.initVBound,
              config.initVBound,
              new Rng(deriveSeed(seed, 'tinylora_v', g)),
            )
          : tf.zeros([config.u]);
      const v = ownedVariable(init as tf.Tensor1D, true);
      tensors.push({ key: tinyloraVKey(g), variable: v, trainable: true, group: 'adapter' });
      return v;
    });
    layers.forEach((base, index) => {
      const ra = effectiveRank(base, config.r);
      const { a, b } = svdFactors(base, ra, 'sqrt');
      const av = ownedVariable(a, false);
      const bv = ownedVariable(b, false);
      const pv = ownedVariable(tinyloraProjection(config.projectionSeed, index, config.u, ra), false);
      const key = (suffix: string) => `${base.name}.${suffix}`;
      tensors.push(
        { key: key(tinyloraSuffixes.a), variable: av, trainable: false },
        { key: key(tinyloraSuffixes.b), variable: bv, trainable: false },
        { key: key(tinyloraSuffixes.p), variable: pv, trainable: false },
      );
      const group = groupOf[index];
      attach(new TinyloraLayer(adapterName, base, av, bv, pv, vs[group], group, config.dropout));
    });
  });
  const { tensors } = built;
  const instance = new RegenerableInstance(adapterName, 'tinylora', config, built.layers, tensors);
  // P is regenerated from projectionSeed; A and B (derivable from W) are always saved, as PEFT does.
  return instance.allowMissing(
    tensors.filter((t) => t.key.endsWith(`.${tinyloraSuffixes.p}`)).map((t) => t.key),
  );
}

export const tinylora: MethodDefinition<TinyloraConfig> = {
  name: 'tinylora',
  label: 'TinyLoRA',
  description:
    'TinyLoRA (arXiv 2602.04118, as in PEFT): ΔW = B·(Σᵢ vᵢ·Pᵢ)·A over the frozen truncated SVD of each weight ' +
    'and frozen random r × r projections; only v (length u) trains, optionally tied across modules.',
  schema: tinyloraConfigSchema,
  supportedKinds: ['Linear', 'Conv1D', 'Embedding'],
  count,
  create,
  peft: tinyloraPeft,
  scaling({ config, moduleIndex, moduleCount, shared }) {
    const group = tyingGroups(moduleCount, configNumber(config, 'weightTying') ?? 0).groupOf[moduleIndex];
    const v = tinyloraVKey(group);
    return {
      scale: null,
      kind: 'none',
      formula: `none: ΔW = B·(Σᵢ vᵢPᵢ)·A with v of tying group ${group}`,
      sharedVectors: shared.has(v) ? [v] : [],
      group,
    };
  },
  loraConversionRank: (target, config) => effectiveRank(target, config.r),
};
