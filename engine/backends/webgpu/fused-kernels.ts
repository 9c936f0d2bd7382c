import * as tf from '@tensorflow/tfjs-core';
import { type AdamWStep, type FusedOps, registerFusedOps } from '../fused.ts';
import { attentionBackward, attentionFits, attentionForward } from './attention.ts';
import { tokenNll } from './cross-entropy.ts';
import { activation, adamw, fusedActivation, gated, rope, tokenNllGrad } from './elementwise.ts';
import { registerKernel } from './kernels.ts';
import { normForward, normInputGrad, normParamGradPartials } from './norm.ts';
import { activeRuntime, runtimeOf } from './runtime.ts';

type Inputs = tf.NamedTensorInfoMap;
type Attrs = tf.NamedAttrMap;

const run = (name: string, inputs: Record<string, tf.Tensor>, attrs: Attrs = {}) =>
  tf.engine().runKernel(name, inputs as unknown as tf.NamedTensorMap, attrs) as tf.Tensor | tf.Tensor[];

/** The kernel function of one of ours: inputs by name, the runtime of the backend it runs on. */
function kernel(
  name: string,
  f: (inputs: Inputs, attrs: Attrs, backend: object) => tf.TensorInfo | tf.TensorInfo[],
) {
  registerKernel(name, ({ inputs, attrs, backend }) => f(inputs, attrs ?? {}, backend));
}

const info = (inputs: Inputs, name: string) => inputs[name] as tf.TensorInfo;
/** A zero gradient for inputs that carry no trainable path (masks, tables, targets). */
const zeros = (t: tf.Tensor) => () => tf.zeros(t.shape);

function registerNorms(): void {
  for (const layer of [false, true]) {
    const name = layer ? 'StudioLayerNorm' : 'StudioRmsNorm';
    kernel(name, (inputs, attrs, backend) => {
      const r = normForward(
        runtimeOf(backend),
        info(inputs, 'x'),
        info(inputs, 'weight'),
        layer ? info(inputs, 'bias') : null,
        Number(attrs.eps),
      );
      return [r.y, r.mean, r.rstd];
    });
    tf.registerGradient({
      kernelName: name,
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
  kernel('StudioNormGrad', (inputs, attrs, backend) =>
    normInputGrad(
      runtimeOf(backend),
      Boolean(attrs.layer),
      info(inputs, 'dy'),
      info(inputs, 'x'),
      info(inputs, 'weight'),
      info(inputs, 'mean'),
      info(inputs, 'rstd'),
    ),
  );
  kernel('StudioNormParamGrad', (inputs, attrs, backend) =>
    normParamGradPartials(
      runtimeOf(backend),
      attrs.of as 'weight' | 'bias',
      info(inputs, 'dy'),
      info(inputs, 'x'),
      info(inputs, 'mean'),
      info(inputs, 'rstd'),
    ),
  );
}

function registerElementwise(): void {
  kernel('StudioRope', (inputs, attrs, backend) =>
    rope(
      runtimeOf(backend),
      info(inputs, 'x'),
      info(inputs, 'cos'),
      info(inputs, 'sin'),
      Boolean(attrs.transpose),
    ),
  );
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
  kernel('StudioActivation', (inputs, attrs, backend) =>
    activation(
      runtimeOf(backend),
      String(attrs.act),
      info(inputs, 'x'),
      inputs.dy as tf.TensorInfo | undefined,
    ),
  );
  tf.registerGradient({
    kernelName: 'StudioActivation',
    inputsToSave: ['x'],
    gradFunc: (dy, [x], attrs) => ({
      x: () => run('StudioActivation', { x, dy: dy as tf.Tensor }, attrs as Attrs) as tf.Tensor,
    }),
  });
  kernel('StudioGated', (inputs, attrs, backend) =>
    gated(
      runtimeOf(backend),
      String(attrs.act),
      info(inputs, 'gate'),
      info(inputs, 'up'),
      inputs.dy ? { dy: info(inputs, 'dy'), of: attrs.of as 'gate' | 'up' } : undefined,
    ),
  );
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
  kernel('StudioAdamW', (inputs, attrs, backend) =>
    adamw(
      runtimeOf(backend),
      info(inputs, 'p'),
      info(inputs, 'g'),
      info(inputs, 'm'),
      info(inputs, 'v'),
      attrs as unknown as AdamWStep,
    ),
  );
}

function registerLoss(): void {
  kernel('StudioTokenNll', (inputs, _attrs, backend) => {
    const r = tokenNll(
      runtimeOf(backend),
      info(inputs, 'logits'),
      info(inputs, 'targets'),
      info(inputs, 'weights'),
    );
    return [r.nll, r.lse];
  });
  kernel('StudioTokenNllGrad', (inputs, _attrs, backend) =>
    tokenNllGrad(
      runtimeOf(backend),
      info(inputs, 'logits'),
      info(inputs, 'lse'),
      info(inputs, 'targets'),
      info(inputs, 'weights'),
      info(inputs, 'dy'),
    ),
  );
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

function registerAttention(): void {
  kernel('StudioAttention', (inputs, attrs, backend) => {
    const r = attentionForward(
      runtimeOf(backend),
      info(inputs, 'q'),
      info(inputs, 'k'),
      info(inputs, 'v'),
      info(inputs, 'bias'),
      Number(attrs.scale),
    );
    return [r.o, r.lse];
  });
  kernel('StudioAttentionGrad', (inputs, attrs, backend) =>
    attentionBackward(
      runtimeOf(backend),
      info(inputs, 'q'),
      info(inputs, 'k'),
      info(inputs, 'v'),
      info(inputs, 'bias'),
      info(inputs, 'o'),
      info(inputs, 'lse'),
      info(inputs, 'dO'),
      Number(attrs.scale),
    ),
  );
}

/** The webgpu backend's fused ops for models/ops.ts and training/optimizer.ts. */
const ops: FusedOps = {
  attention(q, k, v, bias, scale) {
    const rt = activeRuntime();
    if (!rt || !attentionFits(rt, q.shape, k.shape, bias.shape)) return null;
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
};

/** Registers the fused kernels of the training step and their gradients for the webgpu backend. */
export function installFusedKernels(): void {
  registerNorms();
  registerElementwise();
  registerLoss();
  registerAttention();
  registerFusedOps('webgpu', ops);
}
