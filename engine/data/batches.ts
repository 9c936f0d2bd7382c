import { deriveSeed, permutation } from './shuffle.ts';
import type { EncodedExample } from './tokenize.ts';

/** A padded batch as plain arrays (row-major [B, T]); the trainer turns it into tensors. */
export interface PaddedBatch {
  batchSize: number;
  seqLen: number;
  inputIds: Int32Array;
  attentionMask: Int32Array;
  /** Causal LM targets mask, already padded with 0. */
  lossMask: Float32Array;
  /** Classification labels, one per row. */
  labels: Int32Array | null;
  /** Number of target tokens (causal LM) or examples (classification) the batch's loss sums over. */
  targetCount: number;
  /** Real (non-padding) tokens. */
  tokenCount: number;
}

/** Right-pads examples to the longest in the batch. */
export function padBatch(examples: EncodedExample[], padTokenId: number): PaddedBatch {
  const B = examples.length;
  const T = Math.max(1, ...examples.map((e) => e.inputIds.length));
  const inputIds = new Int32Array(B * T).fill(padTokenId);
  const attentionMask = new Int32Array(B * T);
  const lossMask = new Float32Array(B * T);
  const classification = examples.every((e) => e.label !== undefined);
  const labels = classification ? Int32Array.from(examples, (e) => e.label!) : null;
  let targets = 0;
  let tokens = 0;
  examples.forEach((e, b) => {
    e.inputIds.forEach((id, t) => {
      inputIds[b * T + t] = id;
      attentionMask[b * T + t] = 1;
      lossMask[b * T + t] = e.lossMask[t];
      targets += e.lossMask[t];
    });
    tokens += e.inputIds.length;
  });
  return {
    batchSize: B,
    seqLen: T,
    inputIds,
    attentionMask,
    lossMask,
    labels,
    targetCount: classification ? B : targets,
    tokenCount: tokens,
  };
}

/** Where a run is in its data: epoch and offset into that epoch's shuffled order. */
export interface DataPosition {
  epoch: number;
  offset: number;
}

const ORDER_STREAM = 0x0d3a;

/**
 * Seeded epoch-by-epoch data order. Each epoch's order is a function of (seed, epoch) alone, so a position
 * saved in a checkpoint is enough to continue the exact same sequence of batches.
 */
export class DataCursor {
  private order: number[];
  private orderEpoch: number;

  constructor(
    readonly size: number,
    readonly batchSize: number,
    readonly seed: number,
    readonly shuffle: boolean,
    public position: DataPosition = { epoch: 0, offset: 0 },
  ) {
    if (size <= 0) throw new Error('DataCursor needs at least one example');
    this.orderEpoch = position.epoch;
    this.order = this.orderFor(position.epoch);
  }

  private orderFor(epoch: number): number[] {
    if (!this.shuffle) return Array.from({ length: this.size }, (_, i) => i);
    return permutation(this.size, deriveSeed(this.seed, ORDER_STREAM + epoch * 0x10001));
  }

  /** Micro-batches per epoch (the last one may be short). */
  get batchesPerEpoch(): number {
    return Math.ceil(this.size / this.batchSize);
  }

  /** Indices of the next micro-batch; a batch never spans two epochs. */
  next(): { indices: number[]; epoch: number } {
    if (this.position.offset >= this.size) this.position = { epoch: this.position.epoch + 1, offset: 0 };
    if (this.orderEpoch !== this.position.epoch) {
      this.order = this.orderFor(this.position.epoch);
      this.orderEpoch = this.position.epoch;
    }
    const { epoch, offset } = this.position;
    const indices = this.order.slice(offset, offset + this.batchSize);
    this.position = { epoch, offset: offset + indices.length };
    return { indices, epoch };
  }
}
