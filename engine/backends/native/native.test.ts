import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { ensureGradients } from '../gradients.ts';
import { maxRelativeDiff, onCpu, randomValues, referenceMatMul } from '../parity.ts';
import { BufferPool, type NativeBackend } from './backend.ts';
import { activateNative, NATIVE_BACKEND } from './index.ts';
import { NATIVE_UNARY_MIN_ELEMENTS } from './library.ts';
import { smallProduct } from './matmul.ts';

/**
 * Every kernel the native backend replaces, against the tfjs `cpu` backend's (or, for matmul broadcasting, an
 * independent float64 product) on deterministic random inputs, including the layouts that take fallback paths.
 */

const TOL = 1e-5;
let seed = 1;
const data = (shape: number[], scale = 1) => {
  const v = randomValues(tf.util.sizeFromShape(shape), seed++);
  if (scale !== 1) for (let i = 0; i < v.length; i++) v[i] *= scale;
  return v;
};

type Inputs = { values: Float32Array | Int32Array; shape: number[]; dtype?: 'float32' | 'int32' }[];

/** Runs `f` on native and on cpu with the same inputs; returns both results' values and shapes. */
async function both(inputs: Inputs, f: (...t: tf.Tensor[]) => tf.Tensor | tf.Tensor[]) {
  const run = () =>
    tf.tidy(() => {
      const ts = inputs.map((i) => tf.tensor(i.values, i.shape, i.dtype ?? 'float32'));
      const out = f(...ts);
      return (Array.isArray(out) ? out : [out]).map((t) => ({
        values: t.dataSync().slice(),
        shape: t.shape,
        dtype: t.dtype,
      }));
    });
  expect(tf.getBackend()).toBe(NATIVE_BACKEND);
  const native = run();
  const cpu = await onCpu(run);
  return { native, cpu };
}

async function expectSame(inputs: Inputs, f: (...t: tf.Tensor[]) => tf.Tensor | tf.Tensor[], tol = TOL) {
  const { native, cpu } = await both(inputs, f);
  expect(native.length).toBe(cpu.length);
  native.forEach((n, i) => {
    expect(n.shape).toEqual(cpu[i].shape);
    expect(n.dtype).toBe(cpu[i].dtype);
    expect(maxRelativeDiff(n.values, cpu[i].values)).toBeLessThanOrEqual(tol);
  });
}

const f32 = (shape: number[], scale = 1) => ({ values: data(shape, scale), shape });

beforeAll(async () => {
  await ensureGradients();
  await activateNative();
});

describe('native backend binary kernels', () => {
  const pairs: [string, number[], number[]][] = [
    ['same shape', [7, 13], [7, 13]],
    ['scalar right', [7, 13], []],
    ['scalar left', [], [7, 13]],
    ['bias row', [9, 11], [11]],
    ['per-row column', [9, 11], [9, 1]],
    ['block in the middle', [2, 3, 4, 5], [3, 1, 1]],
    ['attention bias', [2, 3, 6, 6], [2, 1, 6, 6]],
    ['left operand broadcast', [2, 1, 1, 6], [2, 3, 6, 6]],
    ['outer product', [5, 1], [1, 7]],
    ['both broadcast, rank 3', [3, 1, 5], [1, 4, 1]],
  ];
  const ops: [string, (a: tf.Tensor, b: tf.Tensor) => tf.Tensor][] = [
    ['add', tf.add],
    ['sub', tf.sub],
    ['mul', tf.mul],
    ['div', tf.div],
    ['maximum', tf.maximum],
    ['minimum', tf.minimum],
    ['squaredDifference', tf.squaredDifference],
    ['greater', tf.greater],
    ['greaterEqual', tf.greaterEqual],
    ['less', tf.less],
    ['lessEqual', tf.lessEqual],
    ['equal', tf.equal],
    ['notEqual', tf.notEqual],
  ];
  for (const [label, a, b] of pairs) {
    it(`match cpu: ${label} [${a}] ∘ [${b}]`, async () => {
      for (const [, op] of ops) await expectSame([f32(a), f32(b)], op);
    });
  }

  // from NATIVE_UNARY_MIN_ELEMENTS elements, Add/Sub/Mul/Div run on the native library's broadcasting kernels
  const large: [string, number[], number[]][] = [
    ['same shape', [150, 130], [150, 130]],
    ['scalar right', [150, 130], []],
    ['scalar left', [], [150, 130]],
    ['bias row', [150, 130], [130]],
    ['per-row column', [150, 130], [150, 1]],
    ['block in the middle', [3, 40, 9, 17], [40, 1, 1]],
    ['left operand a bias row', [130], [150, 130]],
    ['both blocks (JS loops)', [150, 1], [1, 130]],
  ];
  for (const [label, a, b] of large) {
    it(`match cpu on large operands: ${label} [${a}] ∘ [${b}]`, async () => {
      for (const op of [tf.add, tf.sub, tf.mul, tf.div]) await expectSame([f32(a), f32(b)], op);
    });
  }

  it('match cpu on int32 operands (handed to the cpu kernels)', async () => {
    const ints = (shape: number[]) => ({
      values: Int32Array.from(data(shape), (v) => Math.round(v * 10)),
      shape,
      dtype: 'int32' as const,
    });
    await expectSame([ints([4, 5]), ints([5])], tf.add);
    await expectSame([ints([4, 5]), ints([4, 5])], tf.mul);
  });

  it('take float32 casts of int32 and bool values into large native products (a batch-1 attention mask)', async () => {
    const ints = {
      values: Int32Array.from({ length: 128 }, (_, i) => i % 3),
      shape: [1, 1, 1, 128],
      dtype: 'int32' as const,
    };
    const wide = f32([1, 1, 128, 128]);
    await expectSame([ints, wide], (x, y) => tf.mul(tf.cast(x, 'float32'), y));
    await expectSame([ints, wide], (x, y) => tf.mul(tf.cast(tf.cast(x, 'bool'), 'float32'), y));
  });

  it('propagate NaN through maximum and minimum as the cpu backend does', async () => {
    const a = { values: Float32Array.from([Number.NaN, 1, 2]), shape: [3] };
    const b = { values: Float32Array.from([0, Number.NaN, 3]), shape: [3] };
    const { native, cpu } = await both([a, b], (x, y) => [tf.maximum(x, y), tf.minimum(x, y)]);
    expect(Array.from(native[0].values)).toEqual(Array.from(cpu[0].values));
    expect(Array.from(native[1].values)).toEqual(Array.from(cpu[1].values));
  });
});

describe('native backend unary kernels', () => {
  const ops: [string, (x: tf.Tensor) => tf.Tensor, number][] = [
    ['neg', tf.neg, 1],
    ['square', tf.square, 1],
    ['sqrt', (x) => tf.sqrt(tf.abs(x)), 1],
    ['rsqrt', (x) => tf.rsqrt(tf.add(tf.abs(x), 0.1)), 1],
    ['reciprocal', (x) => tf.reciprocal(tf.add(tf.abs(x), 0.1)), 1],
    ['abs', tf.abs, 1],
    ['relu', tf.relu, 1],
    ['sin', tf.sin, 3],
    ['cos', tf.cos, 3],
    ['log', (x) => tf.log(tf.add(tf.abs(x), 0.1)), 1],
    ['exp', tf.exp, 5],
    ['tanh', tf.tanh, 5],
    ['sigmoid', tf.sigmoid, 5],
    ['erf', tf.erf, 3],
  ];
  for (const size of [37, NATIVE_UNARY_MIN_ELEMENTS + 5]) {
    it(`match cpu on ${size} elements`, async () => {
      for (const [, op, scale] of ops) await expectSame([f32([size], scale)], op, 2e-6);
    });
  }
});

describe('native backend reductions', () => {
  const shape = [3, 4, 5];
  const axes: (number | number[])[] = [0, 1, 2, -1, [0, 1], [1, 2], [0, 1, 2], [0, 2]];
  for (const axis of axes) {
    it(`sum, mean, max, min over axis ${JSON.stringify(axis)} match cpu`, async () => {
      for (const keep of [false, true]) {
        await expectSame([f32(shape)], (x) => [
          tf.sum(x, axis, keep),
          tf.mean(x, axis, keep),
          tf.max(x, axis, keep),
          tf.min(x, axis, keep),
        ]);
      }
    });
  }

  it('softmax over the last axis matches cpu, small and large', async () => {
    await expectSame([f32([6, 9], 4)], (x) => tf.softmax(x));
    await expectSame([f32([2, 3, 64, 128], 4)], (x) => tf.softmax(x), 2e-6);
  });
});

describe('native backend data movement', () => {
  it('transposes every permutation of ranks 2 to 4 as cpu does', async () => {
    await expectSame([f32([33, 70])], (x) => tf.transpose(x));
    for (const perm of [
      [0, 2, 1],
      [2, 0, 1],
      [1, 2, 0],
    ])
      await expectSame([f32([3, 4, 5])], (x) => tf.transpose(x, perm));
    for (const perm of [
      [0, 2, 1, 3],
      [3, 2, 1, 0],
      [0, 1, 3, 2],
    ])
      await expectSame([f32([2, 3, 4, 5])], (x) => tf.transpose(x, perm));
  });

  it('gathers rows and scatter-adds their gradient as cpu does', async () => {
    const ids = { values: Int32Array.from([3, 0, 3, 9, 1]), shape: [5], dtype: 'int32' as const };
    await expectSame([f32([10, 6]), ids], (w, i) => tf.gather(w, i));
    await expectSame([f32([5, 6]), ids], (x, i) => tf.unsortedSegmentSum(x, i as tf.Tensor1D, 10));
    await expectSame([f32([10, 6]), ids], (w, i) =>
      tf.grad((v: tf.Tensor) => tf.sum(tf.mul(tf.gather(v, i), 2)))(w),
    );
  });

  it('refuses an embedding index out of range', () => {
    const w = tf.zeros([4, 2]);
    expect(() => tf.gather(w, tf.tensor1d([4], 'int32'))).toThrow(/index value 4 is not in \[0, 3\]/);
    w.dispose();
  });

  it('slices, splits, concatenates and tiles as cpu does', async () => {
    await expectSame([f32([4, 6, 5])], (x) => tf.slice(x, [1, 2, 0], [2, 3, 5]));
    await expectSame([f32([4, 6, 5])], (x) => tf.slice(x, [0, 1, 2], [4, 4, 2]));
    await expectSame([f32([8, 12])], (x) => tf.split(x, 3, 1));
    await expectSame([f32([8, 12])], (x) => tf.split(x, [2, 6], 0));
    for (const axis of [0, 1, 2])
      await expectSame([f32([2, 3, 4]), f32([2, 3, 4])], (a, b) => tf.concat([a, b, a], axis));
    await expectSame([f32([2, 1, 3, 4])], (x) => tf.tile(x, [1, 3, 2, 1]));
    await expectSame([f32([3])], (x) => tf.tile(x, [4]));
  });
});

describe('native backend matmul', () => {
  const cases: [string, number[], number[], boolean, boolean][] = [
    ['tiny 2-D (plain loop)', [3, 4], [4, 2], false, false],
    ['2-D', [37, 29], [29, 23], false, false],
    ['2-D transposeB', [37, 29], [23, 29], false, true],
    ['2-D transposeA', [29, 37], [29, 23], true, false],
    ['rank 3 batched both transposed', [3, 19, 17], [3, 13, 19], true, true],
    ['rank 3 × rank 2 (batch folded)', [4, 30, 16], [16, 28], false, false],
    ['rank 4 cross broadcast', [2, 1, 15, 17], [1, 3, 17, 14], false, false],
    ['LoRA x·Aᵀ (small-dimension kernel)', [300, 700], [16, 700], false, true],
    ['LoRA h·Bᵀ (small-dimension kernel)', [300, 16], [700, 16], false, true],
    ['LoRA dB = dyᵀ·h (small-dimension kernel)', [300, 70], [300, 16], true, false],
    ['2-D with every dimension large (GEMM library)', [80, 90], [100, 90], false, true],
  ];
  for (const [label, aShape, bShape, ta, tb] of cases) {
    it(`${label} equals a float64 product`, () => {
      const a = data(aShape);
      const b = data(bShape);
      const out = tf.tidy(() =>
        tf.matMul(tf.tensor(a, aShape), tf.tensor(b, bShape), ta, tb).dataSync().slice(),
      );
      const ref = referenceMatMul(a, aShape, b, bShape, ta, tb);
      expect(maxRelativeDiff(out, ref.values)).toBeLessThanOrEqual(2e-5);
    });
  }

  it('sends products with a small dimension, and no large transposed b, to the compiled kernel', () => {
    expect(smallProduct(true, 256, 16, 3072)).toBe(true);
    expect(smallProduct(true, 256, 8192, 16)).toBe(true);
    expect(smallProduct(false, 16, 3072, 256)).toBe(true);
    expect(smallProduct(true, 64, 4096, 4096)).toBe(false);
    expect(smallProduct(false, 256, 3072, 3072)).toBe(false);
  });

  it('fused matmul with bias and relu matches cpu', async () => {
    await expectSame([f32([20, 30]), f32([40, 30]), f32([40])], (a, b, bias) =>
      tf.fused.matMul({ a, b, transposeB: true, bias, activation: 'relu' }),
    );
  });
});

describe('native backend buffer pool', () => {
  it('rounds sizes to classes under 13 % apart and reuses a given-back buffer of the same class', () => {
    for (const bytes of [70_000, 1 << 20, 3_000_001, 123_456_789]) {
      const size = BufferPool.classOf(bytes);
      expect(size).toBeGreaterThanOrEqual(bytes);
      expect(size / bytes).toBeLessThan(1.13);
    }
    const pool = new BufferPool(1 << 24);
    const a = pool.take(100_000)!;
    pool.give(a);
    expect(pool.held).toBe(a.byteLength);
    expect(pool.take(99_000)).toBe(a);
    expect(pool.held).toBe(0);
    expect(pool.take(100)).toBeNull();
    // over the cap, a given-back buffer is left to the garbage collector
    const big = pool.take(1 << 24)!;
    pool.give(big);
    pool.give(pool.take(1 << 24)!);
    expect(pool.held).toBeLessThanOrEqual(1 << 24);
  });

  it('says it is memory, and how much, when an allocation fails', () => {
    const pool = new BufferPool();
    pool.give(pool.take(1 << 20)!);
    // 2^50 bytes: more than any machine has, so V8 refuses it
    expect(() => pool.take(2 ** 50)).toThrow(
      expect.objectContaining({
        code: 'out_of_memory',
        message: expect.stringMatching(/1048576\.00 GiB.*batch size/),
      }),
    );
    expect(pool.held).toBe(0);
  });

  it('recycles a disposed kernel output but never an array a reader has seen', () => {
    const backend = tf.backend() as NativeBackend;
    const x = tf.ones([64, 1024]);
    const y = tf.add(x, 1);
    const yBuffer = backend.values(y as unknown as tf.TensorInfo).buffer;
    y.dispose();
    const z = tf.add(x, 2);
    expect(backend.values(z as unknown as tf.TensorInfo).buffer).toBe(yBuffer);
    const seen = z.dataSync();
    z.dispose();
    const w = tf.add(x, 3);
    expect(backend.values(w as unknown as tf.TensorInfo).buffer).not.toBe(seen.buffer);
    expect(seen[0]).toBe(3);
    tf.dispose([x, w]);
  });

  it('hands out zeros from a recycled buffer that held other values', () => {
    const backend = tf.backend() as NativeBackend;
    const x = tf.ones([64, 1024]);
    const y = tf.add(x, 1);
    const yBuffer = backend.values(y as unknown as tf.TensorInfo).buffer;
    y.dispose();
    const zeros = tf.zerosLike(x);
    expect(backend.values(zeros as unknown as tf.TensorInfo).buffer).toBe(yBuffer);
    expect(zeros.dataSync().every((v) => v === 0)).toBe(true);
    const ints = tf.zerosLike(tf.cast(x, 'int32'));
    expect(ints.dtype).toBe('int32');
    expect(ints.dataSync().every((v) => v === 0)).toBe(true);
    tf.dispose([x, zeros, ints]);
  });
});
