import * as tf from '@tensorflow/tfjs-core';
import { type FusedOps, registerFusedOps } from './fused.ts';

/**
 * The fused ops' kernels as tfjs sees them, shared by every backend that implements them (webgpu, native): one
 * name per kernel with the same inputs, attributes and outputs, their gradients (registered once: tfjs keys
 * gradients by kernel name, not by backend) and the `FusedOps` table that calls them. A backend registers its
 * own kernel functions under these names.
 *
 * - StudioLayerNorm / StudioRmsNorm {x, weight, bias?} {eps} → [y, mean [N], rstd [N]] (mean 0 for RMS)
 * - StudioNormGrad {dy, x, weight, mean, rstd} {layer} → dx
 * - StudioNormParamGrad {dy, x, mean, rstd} {of: weight|bias} → partial sums [P, d] (summed over axis 0)
 * - StudioRope {x, cos, sin} {transpose} → y
 * - StudioActivation {x, dy?} {act} → f(x), or dy·f′(x)
 * - StudioGated {gate, up, dy?} {act, of?} → act(gate)·up, or the gradient of `of`
 * - StudioAdamW {p, g, m, v} {AdamWStep} → [p′, m′, v′]
 * - StudioTokenNll {logits, targets, weights} → [nll [N], lse [N]]; StudioTokenNllGrad {…, lse, dy} → dlogits
 * - StudioAttention {q, k, v, bias} {scale} → [o, lse [B,H,Tq]]; StudioAttentionGrad {…, o, lse, dO} → [dq, dk, dv]
 */

type Attrs = tf.NamedAttrMap;

const run = (name: string, inputs: Record<string, tf.Tensor>, attrs: Attrs = {}) =>
  tf.engine().runKernel(name, inputs as unknown as tf.NamedTensorMap, attrs) as tf.Tensor | tf.Tensor[];

/** A zero gradient for inputs that carry no trainable path (masks, tables, targets). */
const zeros = (t: tf.Tensor) => () => tf.zeros(t.shape);

let gradientsRegistered = false;

function registerGradients(): void {
  if (gradientsRegistered) return;
  gradientsRegistered = true;
  for (const layer of [false, true]) {
    tf.registerGradient({
      kernelName: layer ? 'StudioLayerNorm' : 'StudioRmsNorm',
      inputsToSave: ['x', 'weight'],
      outputsToSave: [false, true, true],
      gradFunc: (dys, saved) => {
        const dy = (Array.isArray(dys) ? dys[0] : dys) as tf.Tensor;
        const [x, weight, mean, rstd] = saved;
        const param = (of: 'weight' | 'bias') => () =>
          tf.sum(run('StudioNormParamGrad', { dy, x, mean, rstd }, { of }) as tf.Tensor, 0);
        const grads: Record<string, () => tf.Tensor> = {
          x: () => run('StudioNormGrad', { dy, x, weight, mean, rstd }, { layer }) as tf.Tensor,
          weight: param('weight'),
        };
        if (layer) grads.bias = param('bias');
        return grads;
      },
    });
  }
  tf.registerGradient({
    kernelName: 'StudioRope',
    inputsToSave: ['cos', 'sin'],
    gradFunc: (dy, saved) => {
      const [cos, sin] = saved;
      return {
        x: () => run('StudioRope', { x: dy as tf.Tensor, cos, sin }, { transpose: true }) as tf.Tensor,
        cos: zeros(cos),
        sin: zeros(sin),
      };
    },
  });
  tf.registerGradient({
    kernelName: 'StudioActivation',
    inputsToSave: ['x'],
    gradFunc: (dy, [x], attrs) => ({
      x: () => run('StudioActivation', { x, dy: dy as tf.Tensor }, attrs as Attrs) as tf.Tensor,
    }),
  });
  tf.registerGradient({
    kernelName: 'StudioGated',
    inputsToSave: ['gate', 'up'],
    gradFunc: (dy, [gate, up], attrs) => {
      const of = (which: 'gate' | 'up') => () =>
        run(
          'StudioGated',
          { gate, up, dy: dy as tf.Tensor },
          { act: (attrs as Attrs).act, of: which },
        ) as tf.Tensor;
      return { gate: of('gate'), up: of('up') };
    },
  });
  tf.registerGradient({
    kernelName: 'StudioTokenNll',
    inputsToSave: ['logits', 'targets', 'weights'],
    outputsToSave: [false, true],
    gradFunc: (dys, saved) => {
      const dy = (Array.isArray(dys) ? dys[0] : dys) as tf.Tensor;
      const [logits, targets, weights, lse] = saved;
      return {
        logits: () => run('StudioTokenNllGrad', { logits, lse, targets, weights, dy }) as tf.Tensor,
        targets: zeros(targets),
        weights: zeros(weights),
      };
    },
  });
}

/** The fused activation for a transformers activation name (`ACT2FN`), or null. */
export function fusedActivation(name: string): string | null {
  switch (name) {
    case 'silu':
    case 'swish':
      return 'silu';
    case 'gelu':
      return 'gelu';
    case 'gelu_new':
    case 'gelu_pytorch_tanh':
    case 'gelu_fast':
      return 'gelu_tanh';
    default:
      return null;
  }
}

export interface FusedBackend {
  /** Whether the backend's attention kernel takes q, k and bias of these shapes. */
  attentionFits(q: number[], k: number[], bias: number[]): boolean;
}

function opsFor(backend: FusedBackend): FusedOps {
  return {
    attention(q, k, v, bias, scale) {
      if (!backend.attentionFits(q.shape, k.shape, bias.shape)) return null;
      // one custom gradient for q, k and v: their gradients share the recomputed probabilities
      const op = tf.customGrad(((qi: tf.Tensor, ki: tf.Tensor, vi: tf.Tensor, save: tf.GradSaveFunc) => {
        const [o, lse] = run('StudioAttention', { q: qi, k: ki, v: vi, bias }, { scale }) as tf.Tensor[];
        save([qi, ki, vi, bias, o, lse]);
        return {
          value: o,
          gradFunc: (dO: tf.Tensor, saved: tf.Tensor[]) => {
            const [qs, ks, vs, bs, os, ls] = saved;
            return run(
              'StudioAttentionGrad',
              { q: qs, k: ks, v: vs, bias: bs, o: os, lse: ls, dO },
              { scale },
            ) as tf.Tensor[];
          },
        };
      }) as unknown as Parameters<typeof tf.customGrad>[0]);
      return tf.tidy(() => op(q, k, v) as tf.Tensor4D);
    },
    rmsNorm: (x, weight, eps) =>
      tf.tidy(() => (run('StudioRmsNorm', { x, weight }, { eps }) as tf.Tensor[])[0] as tf.Tensor2D),
    layerNorm: (x, weight, bias, eps) =>
      tf.tidy(() => (run('StudioLayerNorm', { x, weight, bias }, { eps }) as tf.Tensor[])[0] as tf.Tensor2D),
    rope: (x, cos, sin) => run('StudioRope', { x, cos, sin }, { transpose: false }) as tf.Tensor4D,
    activation(name, x) {
      const act = fusedActivation(name);
      return act ? (run('StudioActivation', { x }, { act }) as tf.Tensor) : null;
    },
    gated(name, gate, up) {
      const act = fusedActivation(name);
      return act ? (run('StudioGated', { gate, up }, { act }) as tf.Tensor) : null;
    },
    tokenNll: (logits, targets, weights) =>
      tf.tidy(
        () => tf.sum((run('StudioTokenNll', { logits, targets, weights }) as tf.Tensor[])[0]) as tf.Scalar,
      ),
    adamw: (p, g, m, v, step) =>
      run('StudioAdamW', { p, g, m, v }, { ...step }) as [tf.Tensor, tf.Tensor, tf.Tensor],
    squaredSum: (xs) =>
      tf.getKernel('StudioSquaredSum', tf.getBackend())
        ? (run('StudioSquaredSum', Object.fromEntries(xs.map((x, i) => [`x${i}`, x]))) as tf.Scalar)
        : null,
  };
}

/**
 * Makes the fused ops available while `backendName` is active; its kernels must already be registered under
 * the names above.
 */
export function installFusedOps(backendName: string, backend: FusedBackend): void {
  registerGradients();
  registerFusedOps(backendName, opsFor(backend));
}
