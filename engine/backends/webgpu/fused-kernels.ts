import type * as tf from '@tensorflow/tfjs-core';
import type { AdamWStep } from '../fused.ts';
import { installFusedOps } from '../fused-kernels.ts';
import { attentionBackward, attentionFits, attentionForward } from './attention.ts';
import { tokenNll } from './cross-entropy.ts';
import { activation, adamw, gated, rope, tokenNllGrad } from './elementwise.ts';
import { registerKernel } from './kernels.ts';
import { normForward, normInputGrad, normParamGradPartials } from './norm.ts';
import { activeRuntime, runtimeOf } from './runtime.ts';

type Inputs = tf.NamedTensorInfoMap;
type Attrs = tf.NamedAttrMap;

/** The kernel function of one of ours: inputs by name, the runtime of the backend it runs on. */
function kernel(
  name: string,
  f: (inputs: Inputs, attrs: Attrs, backend: object) => tf.TensorInfo | tf.TensorInfo[],
) {
  registerKernel(name, ({ inputs, attrs, backend }) => f(inputs, attrs ?? {}, backend));
}

const info = (inputs: Inputs, name: string) => inputs[name] as tf.TensorInfo;

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
  kernel('StudioActivation', (inputs, attrs, backend) =>
    activation(
      runtimeOf(backend),
      String(attrs.act),
      info(inputs, 'x'),
      inputs.dy as tf.TensorInfo | undefined,
    ),
  );
  kernel('StudioGated', (inputs, attrs, backend) =>
    gated(
      runtimeOf(backend),
      String(attrs.act),
      info(inputs, 'gate'),
      info(inputs, 'up'),
      inputs.dy ? { dy: info(inputs, 'dy'), of: attrs.of as 'gate' | 'up' } : undefined,
    ),
  );
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

/** Registers the fused kernels of the training step and their gradients for the webgpu backend. */
export function installFusedKernels(): void {
  registerNorms();
  registerElementwise();
  registerLoss();
  registerAttention();
  installFusedOps('webgpu', {
    attentionFits(q, k, bias) {
      const rt = activeRuntime();
      return rt !== null && attentionFits(rt, q, k, bias);
    },
  });
}
