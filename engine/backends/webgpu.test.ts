import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { ensureGradients } from './gradients.ts';
import { maxRelativeDiff, onCpu, randomValues } from './parity.ts';
import { adapterRoutes, initWebGpuBackend, probeWebGpu } from './webgpu.ts';

/**
 * Matmul parity of tfjs-backend-webgpu against `cpu`, on whatever adapter dawn.node finds. In CI without a GPU
 * a software adapter serves (Mesa llvmpipe through Dawn's OpenGL ES compatibility mode needs libegl1,
 * libegl-mesa0, libgles2 and libgl1-mesa-dri); with none the suite is skipped with the reason printed.
 */
const probe = await probeWebGpu({ compat: true });
if (!probe.available) console.log(`webgpu parity skipped: ${probe.reason}`);

type Case = [label: string, aShape: number[], bShape: number[], transposeA: boolean, transposeB: boolean];
const cases: Case[] = [
  ['2-D', [33, 20], [20, 17], false, false],
  ['2-D both transposed', [20, 33], [17, 20], true, true],
  ['rank 3 batched transposeB', [3, 12, 16], [3, 9, 16], false, true],
  ['rank 4 batched transposeA', [2, 2, 16, 12], [2, 2, 16, 9], true, false],
];

describe.skipIf(!probe.available)(`webgpu matmul parity (${probe.reason})`, () => {
  beforeAll(async () => {
    await ensureGradients();
    await initWebGpuBackend();
  });

  it.each(cases)('%s matches cpu, with gradients', async (_label, aShape, bShape, tA, tB) => {
    expect(tf.getBackend()).toBe('webgpu');
    const a = randomValues(tf.util.sizeFromShape(aShape), 1);
    const b = randomValues(tf.util.sizeFromShape(bShape), 2);
    // tfjs-backend-webgpu reads synchronously through OffscreenCanvas, which Node lacks: read with data()
    const run = async () => {
      const [y, ga, gb] = tf.tidy(() => {
        const f = (x: tf.Tensor, w: tf.Tensor) => tf.sum(tf.square(tf.matMul(x, w, tA, tB)));
        const ta = tf.tensor(a, aShape);
        const tb = tf.tensor(b, bShape);
        return [tf.matMul(ta, tb, tA, tB), ...tf.grads(f)([ta, tb])];
      });
      const values = await Promise.all([y.data(), ga.data(), gb.data()]);
      tf.dispose([y, ga, gb]);
      return values;
    };
    const expected = await await onCpu(run);
    const actual = await run();
    for (let i = 0; i < 3; i++) expect(maxRelativeDiff(actual[i], expected[i])).toBeLessThan(1e-4);
  });

  it('fused matMul with bias and relu matches cpu', async () => {
    const a = randomValues(9 * 12, 3);
    const b = randomValues(7 * 12, 4);
    const bias = randomValues(7, 5);
    const run = async () => {
      const y = tf.tidy(() =>
        tf.fused.matMul({
          a: tf.tensor2d(a, [9, 12]),
          b: tf.tensor2d(b, [7, 12]),
          transposeB: true,
          bias: tf.tensor1d(bias),
          activation: 'relu',
        }),
      );
      const values = await y.data();
      y.dispose();
      return values;
    };
    const expected = await await onCpu(run);
    expect(maxRelativeDiff(await run(), expected)).toBeLessThan(1e-4);
  });
});

describe('adapter routes', () => {
  const info = (vendor: string) => ({ vendor, architecture: '', device: '', description: '' });

  it('Windows tries Dawn’s Vulkan backend first, for NVIDIA adapters only, then Dawn’s default', () => {
    const routes = adapterRoutes('win32', true);
    expect(routes.map((r) => r.mode)).toEqual(['vulkan', 'native']);
    expect(routes[0].flags).toContain('backend=vulkan');
    expect(routes[0].accept?.(info('nvidia'))).toBe(true);
    expect(routes[0].accept?.(info('amd'))).toBe(false);
    expect(routes[1].accept).toBeUndefined();
  });

  it('Linux adds the OpenGL ES compatibility route only when asked; macOS has Dawn’s default alone', () => {
    expect(adapterRoutes('linux', true).map((r) => r.mode)).toEqual(['native', 'opengles-compat']);
    expect(adapterRoutes('linux', false).map((r) => r.mode)).toEqual(['native']);
    expect(adapterRoutes('darwin', true).map((r) => r.mode)).toEqual(['native']);
  });
});
