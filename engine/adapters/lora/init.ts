import * as tf from '@tensorflow/tfjs-core';
import { fromTensor, qr, sliceCols, sliceRows, toTensor, truncatedSvd } from '../../linalg/index.ts';
import type { AdaptableLayer } from '../../models/layers.ts';
import { kaimingUniform, normalTensor, type Rng, uniformTensor } from '../random.ts';
import type { LoraConfig } from './config.ts';
import type { LoraFactors } from './layer.ts';

export type LoraInit = LoraConfig['initLoraWeights'];

/**
 * Initial A, B (and lora_B bias) for one module, as PEFT's `reset_lora_parameters`, `pissa_init` and
 * `olora_init`. PiSSA/OLoRA also write the residual W' − s·B·A into the base weight (see `principalInit`).
 */
export function initialFactors(
  layer: AdaptableLayer,
  init: LoraInit,
  r: number,
  scaling: number,
  loraBias: boolean,
  rng: Rng,
): LoraFactors {
  const inF = layer.inFeatures;
  const outF = layer.outFeatures;
  if (layer.kind === 'Embedding') {
    if (init === 'pissa' || init === 'olora') {
      throw new Error(`lora: initLoraWeights "${init}" is not supported for Embedding module ${layer.name}`);
    }
    // lora_embedding_A (r × num) and lora_embedding_B (dim × r): A = 0, B ~ N(0, 1); init false: both randn.
    const a = init === false ? normalTensor([r, inF], rng) : tf.zeros([r, inF]);
    return { a: a as tf.Tensor2D, b: normalTensor([outF, r], rng) as tf.Tensor2D, bias: null };
  }
  if (init === 'pissa' || init === 'olora') {
    return { ...principalInit(layer, init, r, scaling), bias: loraBias ? tf.zeros([outF]) : null };
  }
  let a: tf.Tensor2D;
  let b: tf.Tensor2D;
  let bias: tf.Tensor1D | null = null;
  if (init === 'gaussian') {
    // std 1/r (not 1/√r), as PEFT.
    a = normalTensor([r, inF], rng, 0, 1 / r) as tf.Tensor2D;
    b = tf.zeros([outF, r]);
  } else {
    a = kaimingUniform([r, inF], rng);
    if (init === true) {
      b = tf.zeros([outF, r]);
      if (loraBias) bias = tf.zeros([outF]);
    } else {
      // nn.Linear(r, out) defaults: weight and bias U(±1/√r). Not a no-op (PEFT: for debugging).
      const bound = 1 / Math.sqrt(r);
      b = uniformTensor([outF, r], -bound, bound, rng) as tf.Tensor2D;
      if (loraBias) bias = uniformTensor([outF], -bound, bound, rng) as tf.Tensor1D;
    }
  }
  return { a, b, bias };
}

/**
 * PiSSA: W' = U·S·Vᵀ, A = diag(√(S_r/s))·V_rᵀ, B = U_r·diag(√(S_r/s)); OLoRA: W' = Q·R, A = R[:r], B = Q[:, :r].
 * Both then replace the base weight with the residual W' − s·B·A (in float32 on the backend).
 * W' is the logical (out × in) weight; PEFT's OLoRA uses the stored weight, which for GPT-2 Conv1D has the
 * wrong shape for A and B, so this engine factorises the logical weight there too.
 */
function principalInit(
  layer: AdaptableLayer,
  init: 'pissa' | 'olora',
  r: number,
  scaling: number,
): { a: tf.Tensor2D; b: tf.Tensor2D } {
  const outF = layer.outFeatures;
  const inF = layer.inFeatures;
  if (r > Math.min(outF, inF)) {
    throw new Error(
      `lora: ${init} needs r ≤ min(out, in) = ${Math.min(outF, inF)} at ${layer.name}, got r = ${r}`,
    );
  }
  const w = layer.logicalWeight();
  let a: tf.Tensor2D;
  let b: tf.Tensor2D;
  try {
    if (init === 'pissa') {
      const { u, s, v } = truncatedSvd(w, r, { seed: 0 });
      const root = Array.from(s, (x) => Math.sqrt(x / scaling));
      const aData = new Float32Array(r * inF);
      const bData = new Float32Array(outF * r);
      for (let i = 0; i < r; i++) {
        for (let j = 0; j < inF; j++) aData[i * inF + j] = root[i] * v.data[j * v.cols + i];
        for (let j = 0; j < outF; j++) bData[j * r + i] = u.data[j * u.cols + i] * root[i];
      }
      a = tf.tensor2d(aData, [r, inF]);
      b = tf.tensor2d(bData, [outF, r]);
    } else {
      const { q, r: upper } = qr(fromTensor(w));
      a = toTensor(sliceRows(upper, 0, r));
      b = toTensor(sliceCols(q, 0, r));
    }
    const residual = tf.tidy(() => tf.sub(w, tf.mul(tf.matMul(b, a), scaling))) as tf.Tensor2D;
    layer.setLogicalWeight(residual);
  } finally {
    w.dispose();
  }
  return { a, b };
}
