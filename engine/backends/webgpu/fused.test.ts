import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { fusedOpsParity } from '../../testing/fused-ops.ts';
import { maxRelativeDiff, onCpu, randomValues } from '../parity.ts';
import type { GpuRuntime } from './runtime.ts';
import { F16_TOLERANCE, F32_TOLERANCE, f16Testable, gpuProbe, useGpu } from './testing.ts';

describe.skipIf(!gpuProbe.available)(
  `webgpu fused kernels against the composed ops on cpu (${gpuProbe.reason})`,
  () => {
    let rt: GpuRuntime;
    beforeAll(async () => {
      rt = await useGpu();
    });

    fusedOpsParity(F32_TOLERANCE);

    it.each([
      'f32',
      'f16',
    ] as const)('embedding lookups from a %s frozen copy split into chunks', async (dtype) => {
      if (dtype === 'f16' && !f16Testable(rt, 'f16 embedding lookups')) return;
      const values = randomValues(300 * 24, 31);
      const ids = Array.from({ length: 50 }, (_, i) => (i * 89) % 300);
      const expected = await onCpu(() =>
        tf.gather(tf.tensor2d(values, [300, 24]), tf.tensor1d(ids, 'int32')).dataSync(),
      );
      const saved = rt.maxBindingBytes;
      rt.maxBindingBytes = 64 * 24 * 4;
      const weight = tf.tensor2d(values, [300, 24]);
      expect(rt.freeze(weight, dtype).chunks.length).toBe(5);
      rt.maxBindingBytes = saved;
      const rows = tf.gather(weight, tf.tensor1d(ids, 'int32'));
      const diff = maxRelativeDiff(await rows.data(), expected);
      expect(diff).toBeLessThan(dtype === 'f16' ? F16_TOLERANCE : F32_TOLERANCE);
      expect(rt.backend.tensorMap.get(weight.dataId).resource ?? null).toBeNull();
      tf.dispose([rows, weight]);
    });
  },
);
