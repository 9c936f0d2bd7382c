import { shapeSize } from '../shape.ts';
import type { ArchConfig } from './config.ts';
import type { AdaptableKind } from './layers.ts';
import type { ModuleInfo } from './types.ts';

/** Bias length: the output features (Conv1D stores in × out, Linear out × in, norms a vector). */
function biasLength(type: string, shape: number[]): number {
  if (type === 'Conv1D') return shape[1];
  return shape[0];
}

/** A module with a weight (and a bias when `bias`), under its transformers class name. */
export function weighted(
  name: string,
  type: string,
  shape: number[],
  bias: boolean,
  extra: Partial<ModuleInfo> = {},
): ModuleInfo {
  const size = shapeSize(shape);
  const info: ModuleInfo = {
    name,
    type,
    shape,
    params: size + (bias ? biasLength(type, shape) : 0),
    ...extra,
  };
  if (bias) info.hasBias = true;
  return info;
}

/**
 * A module adapters can attach to. `type` is its transformers class when that is a subclass of the kind
 * (Gemma's scaled embedding).
 */
export function adaptable(
  name: string,
  kind: AdaptableKind,
  shape: number[],
  bias: boolean,
  extra: Partial<ModuleInfo> = {},
  type: string = kind,
): ModuleInfo {
  const [inFeatures, outFeatures] = kind === 'Linear' ? [shape[1], shape[0]] : [shape[0], shape[1]];
  return weighted(name, type, shape, bias, { adaptable: kind, inFeatures, outFeatures, ...extra });
}

/** The head of a decoder: `lm_head` (tied to `embedding` when the config says so) or a seq-cls `score`. */
export function decoderHeadModules(a: ArchConfig, embedding: string): ModuleInfo[] {
  const d = a.hiddenSize;
  if (a.task === 'causal-lm') {
    return [
      adaptable('lm_head', 'Linear', [a.vocabSize, d], false, {
        isOutputHead: true,
        ...(a.tieWordEmbeddings ? { tiedTo: embedding } : {}),
      }),
    ];
  }
  return [adaptable('score', 'Linear', [a.numLabels ?? 2, d], false, { isOutputHead: true })];
}
