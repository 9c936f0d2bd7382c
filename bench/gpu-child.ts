/**
 * GPU measurements on the WebGPU backend, one JSON document on stdout per command (progress on stderr). Run by the
 * `gpu` bench section and, bundled with a carried Node, by bench/gpu-device.sh on a GPU machine.
 *   gpu-child probe
 *   gpu-child gemm [sizes, e.g. 1024,2048,4096,8192]
 *   gpu-child check [quick]
 *   gpu-child train <model-dir> <batch> <seq> <steps>
 */
import * as tf from '@tensorflow/tfjs-core';
import { ensureGradients } from '../engine/backends/gradients.ts';
import { maxScaledDiff } from '../engine/backends/parity.ts';
import { type GemmOperand, type GemmVariant, gemm } from '../engine/backends/webgpu/gemm.ts';
import { activeRuntime, type GpuRuntime } from '../engine/backends/webgpu/runtime.ts';
import { initWebGpuBackend, probeWebGpu } from '../engine/backends/webgpu.ts';

const log = (line: string) => process.stderr.write(`${line}\n`);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/** Waits until the queue has run everything recorded so far: a one-element read of `t`. */
async function drain(t: tf.Tensor): Promise<void> {
  const probe = tf.slice(t, [0, 0], [1, 1]);
  await probe.data();
  probe.dispose();
}

interface GemmCase {
  variant: 'f32' | 'f16' | 'subgroup-matrix';
  shader: GemmVariant;
  operand: (t: tf.Tensor2D) => GemmOperand;
}

function cases(rt: GpuRuntime): GemmCase[] {
  const half = (t: tf.Tensor2D): GemmOperand => {
    const w = rt.freeze(t, 'f16');
    return { kind: 'frozen', dtype: 'f16', chunks: w.chunks };
  };
  const list: GemmCase[] = [
    { variant: 'f32', shader: 'tiled', operand: (t) => ({ kind: 'tensor', info: t }) },
  ];
  if (rt.caps.f16.used) list.push({ variant: 'f16', shader: 'tiled', operand: half });
  if (rt.caps.subgroupMatrix.used)
    list.push({ variant: 'subgroup-matrix', shader: 'subgroup-matrix', operand: half });
  return list;
}

/** Median seconds of one n³ product (A·Bᵀ, the Linear orientation), from back-to-back runs between drains. */
async function timeGemm(rt: GpuRuntime, c: GemmCase, n: number): Promise<number> {
  const a = tf.randomUniform([n, n], -1, 1) as tf.Tensor2D;
  const b = tf.randomUniform([n, n], -1, 1) as tf.Tensor2D;
  const out = tf.engine().makeTensorFromTensorInfo(rt.output([n, n]));
  const args = {
    a: c.operand(a),
    b: c.operand(b),
    c: out,
    m: n,
    n,
    k: n,
    batch: 1,
    batchedA: false,
    batchedB: false,
    transA: false,
    transB: true,
    variant: c.shader,
  };
  const reps = n >= 4096 ? 3 : 10;
  gemm(rt, args);
  await drain(out);
  const times: number[] = [];
  for (let r = 0; r < 3; r++) {
    const t0 = performance.now();
    for (let i = 0; i < reps; i++) gemm(rt, args);
    await drain(out);
    times.push((performance.now() - t0) / 1000 / reps);
  }
  tf.dispose([a, b, out]);
  return median(times);
}

async function gemmCommand(sizes: number[]) {
  const rt = activeRuntime()!;
  const rows = [];
  for (const c of cases(rt)) {
    for (const n of sizes) {
      const seconds = await timeGemm(rt, c, n);
      const tflops = (2 * n ** 3) / seconds / 1e12;
      log(`gemm ${c.variant} ${n}³: ${tflops.toFixed(2)} TFLOP/s (${(seconds * 1000).toFixed(2)} ms)`);
      rows.push({ variant: c.variant, n, ms: seconds * 1000, tflops });
    }
  }
  return { rows };
}

/**
 * On-device correctness where only a GPU can tell: each GEMM variant against the f32 tiled product, and the fused
 * training ops against their composed forms, forward and gradients, at a Llama-3.2-1B layer's shapes (`quick`:
 * smaller ones, for software adapters).
 */
async function checkCommand(quick: boolean) {
  const rt = activeRuntime()!;
  const results: { check: string; scaledError: number; tolerance: number; ok: boolean }[] = [];
  const record = (
    check: string,
    actual: ArrayLike<number>,
    expected: ArrayLike<number>,
    tolerance: number,
  ) => {
    const scaledError = maxScaledDiff(actual, expected);
    results.push({ check, scaledError, tolerance, ok: scaledError <= tolerance });
    log(`check ${check}: ${scaledError.toExponential(2)} (tolerance ${tolerance})`);
  };
  const n = quick ? 200 : 1000;
  const a = tf.randomUniform([n, n + 24], -1, 1) as tf.Tensor2D;
  const b = tf.randomUniform([n - 40, n + 24], -1, 1) as tf.Tensor2D;
  const product = async (c: GemmCase) => {
    const out = rt.output([n, n - 40]);
    gemm(rt, {
      a: c.operand(a),
      b: c.operand(b),
      c: out,
      m: n,
      n: n - 40,
      k: n + 24,
      batch: 1,
      batchedA: false,
      batchedB: false,
      transA: false,
      transB: true,
      variant: c.shader,
    });
    const t = tf.engine().makeTensorFromTensorInfo(out);
    const values = await t.data();
    t.dispose();
    return values;
  };
  const [f32, ...others] = cases(rt);
  const reference = await product(f32);
  for (const c of others) record(`gemm ${c.variant} vs f32`, await product(c), reference, 2e-3);
  tf.dispose([a, b]);

  const { attend, attentionBias, rmsNorm, gatedActivation, weightedTokenNll } = await import(
    '../engine/models/ops.ts'
  );
  const fusedAndComposed = async (name: string, f: () => tf.Tensor[]) => {
    const run = async () => {
      const out = tf.tidy(f);
      const values = await Promise.all(out.map((t) => t.data()));
      tf.dispose(out);
      return values;
    };
    const fused = await run();
    process.env.STUDIO_FUSED = 'off';
    const composed = await run();
    delete process.env.STUDIO_FUSED;
    for (let i = 0; i < fused.length; i++)
      record(`${name} [${i}] fused vs composed`, fused[i], composed[i], 1e-4);
  };
  const [B, H, HKV, T, D] = quick ? [2, 4, 2, 64, 64] : [2, 32, 8, 512, 64];
  const [rows, width, vocab] = quick ? [64, 256, 5000] : [1024, 2048, 128256];
  const q = tf.randomNormal([B, H, T, D]) as tf.Tensor4D;
  const k = tf.randomNormal([B, HKV, T, D]) as tf.Tensor4D;
  const v = tf.randomNormal([B, HKV, T, D]) as tf.Tensor4D;
  const real = Math.floor((T * 3) / 4);
  const mask = tf.concat([
    tf.ones([1, T], 'int32'),
    tf.concat([tf.ones([1, real], 'int32'), tf.zeros([1, T - real], 'int32')], 1),
  ]);
  const bias = attentionBias(mask as tf.Tensor2D, { causal: true });
  await fusedAndComposed(`attention GQA ${H}/${HKV} causal+padding`, () => {
    const g = tf.grads((qi: tf.Tensor, ki: tf.Tensor, vi: tf.Tensor) =>
      tf.sum(tf.mul(attend(qi as tf.Tensor4D, ki as tf.Tensor4D, vi as tf.Tensor4D, bias), q)),
    );
    return [attend(q, k, v, bias), ...g([q, k, v])];
  });
  const x = tf.randomNormal([rows, width]) as tf.Tensor2D;
  const w = tf.randomUniform([width], 0.5, 1.5) as tf.Tensor1D;
  await fusedAndComposed('rmsNorm', () => [
    rmsNorm(x, w, 1e-5),
    tf.grad((xi: tf.Tensor) => tf.sum(tf.mul(rmsNorm(xi as tf.Tensor2D, w, 1e-5), x)))(x),
  ]);
  const up = tf.randomNormal([rows, width]);
  await fusedAndComposed('SwiGLU', () => [
    gatedActivation('silu', x, up),
    ...tf.grads((g: tf.Tensor, u: tf.Tensor) => tf.sum(gatedActivation('silu', g, u)))([x, up]),
  ]);
  const logits = tf.mul(tf.randomNormal([rows / 4, vocab]), 3) as tf.Tensor2D;
  const targets = tf.tensor1d(
    Array.from({ length: rows / 4 }, (_, i) => (i * 5003) % vocab),
    'int32',
  );
  const weights = tf.ones([rows / 4]) as tf.Tensor1D;
  await fusedAndComposed(`token NLL, ${vocab} classes`, () => [
    weightedTokenNll(logits, targets, weights),
    tf.grad((l: tf.Tensor) => weightedTokenNll(l as tf.Tensor2D, targets, weights))(logits),
  ]);
  tf.dispose([q, k, v, mask, bias, x, w, up, logits, targets, weights]);
  return { results, ok: results.every((r) => r.ok) };
}

/**
 * LoRA r16 on every linear module, trained by the studio's own Trainer (the path `studio train` takes) on
 * synthetic sequences. The batch runs as micro-batches when its logits would not fit one storage binding.
 */
async function trainCommand(dir: string, batch: number, seq: number, steps: number) {
  const rt = activeRuntime()!;
  const { loadModel } = await import('../engine/models/index.ts');
  const { attachAdapter } = await import('../engine/adapters/index.ts');
  const { Trainer } = await import('../engine/training/trainer.ts');
  const { TrainingSettings } = await import('../engine/common/project-schema.ts');
  const t0 = performance.now();
  const model = await loadModel(dir);
  const loadSeconds = (performance.now() - t0) / 1000;
  log(`train: loaded ${dir} in ${loadSeconds.toFixed(1)} s`);
  const instance = attachAdapter(
    model,
    'lora',
    { r: 16, loraAlpha: 32, targetModules: 'all-linear' },
    {
      adapterName: 'default',
      seed: 0,
    },
  );
  const vocab = model.spec.vocabSize;
  let micro = batch;
  while (micro > 1 && (micro * seq * vocab * 4 > rt.maxBindingBytes || batch % micro !== 0)) micro--;
  const examples = Array.from({ length: batch * (steps + 2) }, (_, e) => {
    const inputIds = Array.from({ length: seq }, (_, i) => (e * 7919 + i * 104729 + 13) % vocab);
    return {
      inputIds,
      lossMask: inputIds.map((_, i) => (i === 0 ? 0 : 1)),
      file: 'synthetic',
      line: e + 1,
      truncated: false,
    };
  });
  const trainer = new Trainer({
    model,
    instance,
    task: 'causal-lm',
    train: examples,
    validation: [],
    settings: TrainingSettings.parse({
      batchSize: micro,
      gradAccumSteps: batch / micro,
      maxSteps: steps + 2,
      maxSeqLen: seq,
      learningRate: 1e-4,
      shuffle: false,
    }),
    padTokenId: 0,
  });
  const times: number[] = [];
  let loss = Number.NaN;
  for (let s = 0; s < steps + 2; s++) {
    const started = performance.now();
    const r = await trainer.step();
    const seconds = (performance.now() - started) / 1000;
    loss = r.loss;
    log(
      `train: step ${s + 1} ${seconds.toFixed(3)} s, loss ${r.loss.toFixed(4)}${s < 2 ? ' (warm-up)' : ''}`,
    );
    // two warm-up steps: pipelines compile and the buffer pool fills during the first
    if (s >= 2) times.push(seconds);
  }
  const stepSeconds = median(times);
  const memory = tf.memory() as tf.MemoryInfo & { numBytesInGPU?: number; numBytesInGPUAllocated?: number };
  const result = {
    batch,
    seq,
    microBatch: micro,
    steps,
    stepSeconds,
    tokensPerSecond: (batch * seq) / stepSeconds,
    loss,
    loadSeconds,
    trainable: instance.trainable().reduce((n, p) => n + p.variable.size, 0),
    gpuBytesAllocated: rt.backend.bufferManager.numBytesAllocated,
    frozenWeights: [...rt.frozen.values()].reduce(
      (n, w) => n + w.rows * w.cols * (w.dtype === 'f16' ? 2 : 4),
      0,
    ),
    tensors: memory.numTensors,
  };
  trainer.dispose();
  instance.dispose();
  model.dispose();
  return result;
}

async function main() {
  const [command, ...args] = process.argv.slice(2);
  const usage =
    'usage: gpu-child probe | gemm [sizes] | check [quick] | train <model-dir> <batch> <seq> <steps>';
  if (!['probe', 'gemm', 'check', 'train'].includes(command ?? '')) throw new Error(usage);
  await ensureGradients();
  const probe = await probeWebGpu();
  if (command === 'probe' || !probe.available) {
    const caps = probe.available ? await initWebGpuBackend() : null;
    return { probe, capabilities: caps };
  }
  const capabilities = await initWebGpuBackend();
  const adapter = { ...capabilities.adapter, software: probe.software };
  if (command === 'gemm') {
    const sizes = (args[0] ?? '1024,2048,4096,8192').split(',').map(Number);
    return { adapter, ...(await gemmCommand(sizes)) };
  }
  if (command === 'check') return { adapter, ...(await checkCommand(args[0] === 'quick')) };
  const [dir, batch, seq, steps] = args;
  if (!dir || !batch || !seq || !steps) throw new Error(usage);
  return { adapter, ...(await trainCommand(dir, Number(batch), Number(seq), Number(steps))) };
}

try {
  process.stdout.write(`${JSON.stringify(await main())}\n`);
  process.exit(0);
} catch (error) {
  process.stdout.write(`${JSON.stringify({ error: (error as Error).message })}\n`);
  process.exit(1);
}
