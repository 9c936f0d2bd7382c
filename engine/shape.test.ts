import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { shapeSize } from './shape.ts';

describe('shapeSize', () => {
  it('counts as tf.util.sizeFromShape does, a scalar and empty dimensions included', () => {
    for (const shape of [[], [7], [3, 4], [2, 0, 5], [1, 1, 1], [4, 3, 2, 1]]) {
      expect(shapeSize(shape)).toBe(tf.util.sizeFromShape(shape));
    }
  });
});
