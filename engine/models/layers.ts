import * as tf from '@tensorflow/tfjs-core';
import type { FrozenWeight } from '../backends/frozen.ts';

/** The module kinds adapters attach to, named as in PyTorch / transformers. */
export type AdaptableKind = 'Linear' | 'Conv1D' | 'Embedding';

/** Per-call forward settings. Dropout is active only when `training`; masks are seeded for reproducibility. */
export interface ForwardContext {
  training: boolean;
  /** A fresh integer seed for one dropout mask; the sequence is deterministic for a given step. */
  nextSeed(): number;
  /**
   * Activation checkpointing: when set (training), each transformer block keeps only its input for the
   * backward pass and runs again there. `params(i)` are the trainable variables block i reads.
   */
  checkpoint?: { params(layerIndex: number): tf.Variable[] };
  /**
   * Set while a checkpointed block runs again in the backward pass, where only its tape is used: the block's
   * output value is never read, so a module whose output is only that (see `AdaptableLayer.forward`) may leave it
   * incomplete.
   */
  recomputing?: boolean;
}

export function inferenceContext(): ForwardContext {
  return { training: false, nextSeed: () => 0 };
}

/** A context whose dropout seeds derive from (base seed, step), so a resumed run draws the same masks. */
export function trainingContext(seed: number, step: number): ForwardContext {
  let counter = 0;
  return {
    training: true,
    nextSeed: () =>
      (Math.imul(seed ^ 0x9e3779b9, 2654435761) + Math.imul(step + 1, 40503) + counter++ * 7919) >>> 0,
  };
}

/** Inverted dropout (scale kept by 1/(1-p)), a no-op outside training or when p = 0. */
export function dropout<T extends tf.Tensor>(x: T, rate: number, ctx: ForwardContext): T {
  if (!ctx.training || rate <= 0) return x;
  return tf.dropout(x, rate, undefined, ctx.nextSeed()) as T;
}

/**
 * One adapter's contribution at one module. Shapes are in the module's logical orientation:
 * Linear and Conv1D act as y = x·Wᵀ with W (out × in); Embedding looks rows up in W (num_embeddings × dim).
 */
export interface AdapterLayer {
  readonly adapterName: string;
  /** Linear/Conv1D: x [N, in], base = the output so far [N, out] → adapted output [N, out]. */
  forward(x: tf.Tensor2D, base: tf.Tensor2D, ctx: ForwardContext): tf.Tensor2D;
  /**
   * Linear/Conv1D: the adapted module's whole output for x [N, in] as one op, the adapter's term summed inside
   * the base product and its input gradient inside the base's (no [N, out] or [N, in] add of its own either way);
   * null where this adapter cannot (dropout, a variant, a bias of its own). Used when it is the only live adapter.
   * With `valueUnread` the value may leave out the frozen product (nothing reads it; gradients are unchanged).
   */
  adaptedForward?(
    x: tf.Tensor2D,
    module: AdaptableLayer,
    ctx: ForwardContext,
    valueUnread?: boolean,
  ): tf.Tensor2D | null;
  /** Embedding: ids [N] int32, base = looked-up rows [N, dim] → adapted rows [N, dim]. */
  embed?(ids: tf.Tensor1D, base: tf.Tensor2D, ctx: ForwardContext): tf.Tensor2D;
  /** ΔW in logical orientation: (out × in) for Linear/Conv1D, (num_embeddings × dim) for Embedding. */
  deltaWeight(): tf.Tensor2D;
  /**
   * ΔW = left · right with left (rows × k) and right (k × cols), in the orientation of `deltaWeight`;
   * null when the update is not low-rank (DoRA rescales the base weight).
   */
  lowRankFactors(): { left: tf.Tensor2D; right: tf.Tensor2D } | null;
  /** The merged logical weight for base weight `w`; defaults to w + ΔW when absent. */
  mergeInto?(w: tf.Tensor2D): tf.Tensor2D;
  /** Inverse of `mergeInto`; defaults to w − ΔW when absent. */
  unmergeFrom?(merged: tf.Tensor2D): tf.Tensor2D;
}

/**
 * A frozen base module that adapters attach to. The base weight is kept as stored in the checkpoint
 * (Linear: out × in, Conv1D: in × out, Embedding: num × dim), in the checkpoint's dtype where the backend allows
 * (`FrozenWeight`), and never trained.
 */
export class AdaptableLayer {
  readonly adapters = new Map<string, AdapterLayer>();
  /** Adapters applied in forward, in order (PEFT sums active adapters in sequence). */
  activeAdapters: string[] = [];
  /** When false the module behaves as the base model (PEFT's `disable_adapter`). */
  adaptersEnabled = true;
  /** Adapters currently folded into `weight`. */
  readonly merged: string[] = [];
  /**
   * Modules holding the same weight (an input embedding and its tied `lm_head`, both vocab × dim): they share
   * one `FrozenWeight`, so a merge changes it for all of them, as with PyTorch's shared Parameter.
   */
  readonly tiedWith: AdaptableLayer[] = [];

  constructor(
    /** Hugging Face module name, e.g. `model.layers.0.self_attn.q_proj`. */
    readonly name: string,
    readonly kind: AdaptableKind,
    readonly weight: FrozenWeight,
    public bias: tf.Tensor1D | null,
    /** The checkpoint key this weight was read from (e.g. `h.0.attn.c_attn.weight`). */
    readonly weightKey: string,
  ) {}

  /** Input features (Embedding: num_embeddings). */
  get inFeatures(): number {
    return this.kind === 'Linear' ? this.weight.shape[1] : this.weight.shape[0];
  }

  /** Output features (Embedding: embedding_dim). */
  get outFeatures(): number {
    return this.kind === 'Linear' ? this.weight.shape[0] : this.weight.shape[1];
  }

  /**
   * The weight as PyTorch's `transpose(W, fan_in_fan_out)`: out × in for Linear/Conv1D, num × dim for Embedding.
   * A new float32 tensor: the caller disposes it.
   */
  logicalWeight(): tf.Tensor2D {
    const stored = this.weight.toTensor();
    if (this.kind !== 'Conv1D') return stored;
    const t = tf.transpose(stored);
    stored.dispose();
    return t;
  }

  /**
   * Replaces the base weight with `w` given in logical orientation (takes ownership of `w`), rounded to the
   * weight's dtype; a tied module sees the change.
   */
  setLogicalWeight(w: tf.Tensor2D): void {
    const stored = this.kind === 'Conv1D' ? tf.transpose(w) : w;
    this.weight.replace(stored);
    if (stored !== w) stored.dispose();
    w.dispose();
  }

  /**
   * Forward pass of a Linear/Conv1D module on flattened rows x [N, in]. `valueUnread`: the caller's output is
   * only a recomputed block's output (`ForwardContext.recomputing`) and only gradients flow through it, so an
   * adapter that computes the whole module may skip the frozen product (a 3B's down_proj: a quarter of a
   * recomputed block's frozen work). Modules without such an adapter compute their value as always.
   */
  forward(x: tf.Tensor2D, ctx: ForwardContext, valueUnread = false): tf.Tensor2D {
    return tf.tidy(() => {
      const live = this.liveAdapters();
      const whole =
        live.length === 1 ? this.adapters.get(live[0])!.adaptedForward?.(x, this, ctx, valueUnread) : null;
      if (whole) return whole;
      let y = this.weight.matmul(x, this.kind === 'Linear', this.bias);
      for (const name of live) y = this.adapters.get(name)!.forward(x, y, ctx);
      return y;
    });
  }

  /** Embedding lookup of ids [N] → [N, dim]. */
  embed(ids: tf.Tensor1D, ctx: ForwardContext): tf.Tensor2D {
    return tf.tidy(() => {
      let y = this.weight.gather(ids);
      for (const name of this.liveAdapters()) {
        const adapter = this.adapters.get(name)!;
        if (!adapter.embed) throw new Error(`adapter "${name}" on ${this.name} does not support Embedding`);
        y = adapter.embed(ids, y, ctx);
      }
      return y;
    });
  }

  /** Whether any adapter takes part in this module's forward pass. */
  hasLiveAdapters(): boolean {
    return this.liveAdapters().length > 0;
  }

  private liveAdapters(): string[] {
    if (!this.adaptersEnabled) return [];
    return this.activeAdapters.filter((n) => !this.merged.includes(n) && this.adapters.has(n));
  }

  /** Folds an adapter into the base weight (forward then skips it). */
  merge(adapterName: string): void {
    const adapter = this.adapters.get(adapterName);
    if (!adapter) throw new Error(`no adapter "${adapterName}" on ${this.name}`);
    if (this.merged.includes(adapterName)) return;
    const merged = tf.tidy(() => {
      const w = this.logicalWeight();
      return adapter.mergeInto ? adapter.mergeInto(w) : tf.add(w, adapter.deltaWeight());
    });
    this.setLogicalWeight(merged as tf.Tensor2D);
    this.merged.push(adapterName);
  }

  /** Restores the base weight from before `merge`. */
  unmerge(adapterName: string): void {
    const index = this.merged.indexOf(adapterName);
    if (index < 0) return;
    const adapter = this.adapters.get(adapterName)!;
    const restored = tf.tidy(() => {
      const w = this.logicalWeight();
      return adapter.unmergeFrom ? adapter.unmergeFrom(w) : tf.sub(w, adapter.deltaWeight());
    });
    this.setLogicalWeight(restored as tf.Tensor2D);
    this.merged.splice(index, 1);
  }
}
