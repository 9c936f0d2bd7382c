import * as tf from '@tensorflow/tfjs-core';
import type { PaddedBatch } from '../data/batches.ts';
import type { Batch } from '../models/types.ts';

/** Tensors of one padded batch; the caller disposes them (`disposeBatch`). */
export interface BatchTensors {
  batch: Batch;
  lossMask: tf.Tensor2D;
  labels: tf.Tensor1D | null;
}

export function batchTensors(p: PaddedBatch): BatchTensors {
  const shape: [number, number] = [p.batchSize, p.seqLen];
  return {
    batch: {
      inputIds: tf.tensor2d(p.inputIds, shape, 'int32'),
      attentionMask: tf.tensor2d(p.attentionMask, shape, 'int32'),
    },
    lossMask: tf.tensor2d(p.lossMask, shape, 'float32'),
    labels: p.labels ? tf.tensor1d(p.labels, 'int32') : null,
  };
}

export function disposeBatch(t: BatchTensors): void {
  tf.dispose([t.batch.inputIds, t.batch.attentionMask, t.lossMask]);
  if (t.labels) t.labels.dispose();
}
