import * as tf from '@tensorflow/tfjs-core';
import { gatherFrozen } from './gather.ts';
import { matMul } from './matmul.ts';
import { runtimeOf } from './runtime.ts';

type Args = { inputs: tf.NamedTensorInfoMap; backend: object; attrs?: tf.NamedAttrMap };
type KernelFn = (args: Args) => tf.TensorInfo | tf.TensorInfo[];

/** Replaces the webgpu backend's `name` kernel with `make(stock)`, which may hand work back to the stock one. */
function replaceKernel(name: string, make: (stock: KernelFn) => KernelFn): void {
  const stock = tf.getKernel(name, 'webgpu');
  if (!stock) throw new Error(`tfjs-backend-webgpu has no ${name} kernel`);
  tf.unregisterKernel(name, 'webgpu');
  tf.registerKernel({
    kernelName: name,
    backendName: 'webgpu',
    kernelFunc: make(stock.kernelFunc as unknown as KernelFn) as unknown as tf.KernelFunc,
  });
}

/** Registers a kernel of our own (a fused op) for the webgpu backend. */
export function registerKernel(name: string, kernelFunc: KernelFn): void {
  if (tf.getKernel(name, 'webgpu')) return;
  tf.registerKernel({
    kernelName: name,
    backendName: 'webgpu',
    kernelFunc: kernelFunc as unknown as tf.KernelFunc,
  });
}

let installed = false;

/** Puts our kernels into tfjs's registry for `webgpu` (once per process). */
export function installKernels(register: (() => void)[] = []): void {
  if (installed) return;
  installed = true;
  replaceKernel(
    'BatchMatMul',
    (stock) => (args) =>
      matMul(runtimeOf(args.backend), {
        a: args.inputs.a as tf.TensorInfo,
        b: args.inputs.b as tf.TensorInfo,
        transA: Boolean(args.attrs?.transposeA),
        transB: Boolean(args.attrs?.transposeB),
      }) ?? stock(args),
  );
  replaceKernel(
    '_FusedMatMul',
    (stock) => (args) =>
      (args.inputs.preluActivationWeights
        ? null
        : matMul(runtimeOf(args.backend), {
            a: args.inputs.a as tf.TensorInfo,
            b: args.inputs.b as tf.TensorInfo,
            transA: Boolean(args.attrs?.transposeA),
            transB: Boolean(args.attrs?.transposeB),
            bias: args.inputs.bias as tf.TensorInfo | undefined,
            activation: String(args.attrs?.activation ?? 'linear'),
            alpha: Number(args.attrs?.leakyreluAlpha ?? 0.2),
          })) ?? stock(args),
  );
  // the stock AddN binds every input at once and fails past the device's storage-buffer limit (8 by default)
  replaceKernel('AddN', (stock) => (args) => {
    const all = args.inputs as unknown as tf.TensorInfo[];
    const rt = runtimeOf(args.backend);
    const group = Math.max(2, Math.min(8, rt.caps.limits.maxStorageBuffersPerShaderStage - 1));
    if (all.length <= group) return stock(args);
    let level = all;
    const partial: tf.TensorInfo[] = [];
    while (level.length > group) {
      const next: tf.TensorInfo[] = [];
      for (let i = 0; i < level.length; i += group) {
        const slice = level.slice(i, i + group);
        if (slice.length === 1) next.push(slice[0]);
        else {
          const sum = stock({ ...args, inputs: slice as unknown as tf.NamedTensorInfoMap }) as tf.TensorInfo;
          partial.push(sum);
          next.push(sum);
        }
      }
      level = next;
    }
    const out = stock({ ...args, inputs: level as unknown as tf.NamedTensorInfoMap }) as tf.TensorInfo;
    for (const t of partial) (args.backend as { disposeData(id: object): void }).disposeData(t.dataId);
    return out;
  });
  // embedding lookups read the frozen weight's own GPU copy (tfjs's f32 copy is never uploaded)
  replaceKernel('GatherV2', (stock) => (args) => {
    const x = args.inputs.x as tf.TensorInfo;
    const axis = tf.util.parseAxisParam(Number(args.attrs?.axis ?? 0), x.shape)[0];
    const batchDims = Number(args.attrs?.batchDims ?? 0);
    if (axis !== 0 || batchDims !== 0 || x.shape.length !== 2) return stock(args);
    return gatherFrozen(runtimeOf(args.backend), x, args.inputs.indices as tf.TensorInfo) ?? stock(args);
  });
  for (const r of register) r();
}
