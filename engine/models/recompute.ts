import * as tf from '@tensorflow/tfjs-core';
import type { ForwardContext } from './layers.ts';
import { weightedTokenNll } from './ops.ts';

/**
 * Trading compute for memory: ops whose forward pass keeps nothing of what they compute inside, and whose
 * backward pass runs that computation again under a tape of its own (activation checkpointing; a loss taken over
 * row chunks). tfjs has no nested gradients inside a backward pass: `engine.gradients` would replace the outer
 * pass's tape, which is still being walked, so it is put back afterwards.
 */

interface EngineState {
  activeTape: unknown;
}

/** Gradients of `f` w.r.t. `xs` given the upstream gradient `dy`, from inside another backward pass. */
export function innerGradients(f: () => tf.Tensor, xs: tf.Tensor[], dy: tf.Tensor): tf.Tensor[] {
  const engine = tf.engine() as unknown as {
    state: EngineState;
    gradients(
      f: () => tf.Tensor,
      xs: tf.Tensor[],
      dy: tf.Tensor,
      allowNoGradients: boolean,
    ): {
      value: tf.Tensor;
      grads: (tf.Tensor | undefined)[];
    };
  };
  const outerTape = engine.state.activeTape;
  try {
    const { value, grads } = engine.gradients(f, xs, dy, true);
    value.dispose();
    // an input f did not use gets zeros: a custom gradient owes one tensor per input
    return grads.map((g, i) => g ?? tf.zerosLike(xs[i]));
  } finally {
    engine.state.activeTape = outerTape;
  }
}

/** A context that records the dropout seeds it hands out, and one that replays them in the same order. */
function seedRecorder(ctx: ForwardContext): { record: ForwardContext; replay: () => ForwardContext } {
  const seeds: number[] = [];
  return {
    record: {
      ...ctx,
      checkpoint: undefined,
      nextSeed: () => {
        const s = ctx.nextSeed();
        seeds.push(s);
        return s;
      },
    },
    replay: () => {
      let i = 0;
      return {
        ...ctx,
        checkpoint: undefined,
        recomputing: true,
        nextSeed: () => {
          if (i >= seeds.length)
            throw new Error('checkpoint: the recomputation drew more dropout masks than the forward');
          return seeds[i++];
        },
      };
    },
  };
}

/**
 * `f(x, constants, ctx)` as one op that keeps only x and `constants` for the backward pass, which recomputes f
 * (same dropout masks) and differentiates it. `params` are the trainable variables f reads: their gradients flow
 * out of this op. `constants` are other tensors f reads (position tables, masks): f must read them from its
 * argument, not from a closure, because tensors made during the forward pass are gone by the backward pass.
 */
export function checkpointed<T extends tf.Tensor>(
  f: (x: T, constants: tf.Tensor[], ctx: ForwardContext) => T,
  x: T,
  constants: tf.Tensor[],
  params: tf.Variable[],
  ctx: ForwardContext,
): T {
  const seeds = seedRecorder(ctx);
  const op = tf.customGrad(((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const save = args[args.length - 1] as tf.GradSaveFunc;
    const input = args[0] as T;
    const value = f(input, constants, seeds.record);
    save([input, ...constants]);
    return {
      value,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [xs, ...cs] = saved;
        return innerGradients(() => f(xs as T, cs, seeds.replay()), [xs, ...params], dy);
      },
    };
  }) as Parameters<typeof tf.customGrad>[0]);
  return op(x, ...params) as T;
}

/**
 * Σ over rows of w·(−log softmax(head(rows))[target]) for hidden rows [N, d], int32 targets [N] and weights [N],
 * `chunk` rows at a time: the [N, vocabulary] logits never exist at once, in the forward or the backward pass.
 * `params` are the trainable variables `head` reads (an adapter on the output head), usually none.
 */
export function chunkedTokenNll(
  rows: tf.Tensor2D,
  head: (rows: tf.Tensor2D) => tf.Tensor2D,
  targets: tf.Tensor1D,
  weights: tf.Tensor1D,
  chunk: number,
  params: tf.Variable[] = [],
): tf.Scalar {
  const [n, d] = rows.shape;
  const size = Math.max(1, Math.floor(chunk));
  const spans: [number, number][] = [];
  for (let s = 0; s < n; s += size) spans.push([s, Math.min(size, n - s)]);
  const nll = (x: tf.Tensor2D, ids: tf.Tensor1D, w: tf.Tensor1D): tf.Scalar =>
    tf.tidy(() => weightedTokenNll(head(x), ids, w));
  const rowsOf = (t: tf.Tensor2D, [start, len]: [number, number]) => tf.slice(t, [start, 0], [len, d]);
  const itemsOf = (t: tf.Tensor1D, [start, len]: [number, number]) => tf.slice(t, [start], [len]);
  const op = tf.customGrad(((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const save = args[args.length - 1] as tf.GradSaveFunc;
    const x = args[0] as tf.Tensor2D;
    let total = tf.scalar(0);
    for (const span of spans) {
      const next = tf.tidy(() =>
        tf.add(total, nll(rowsOf(x, span), itemsOf(targets, span), itemsOf(weights, span))),
      );
      total.dispose();
      total = next as tf.Scalar;
    }
    // targets and weights are saved too: tensors made inside the taped function are gone by the backward pass
    save([x, targets, weights]);
    return {
      value: total,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [xs, ids, w] = saved as [tf.Tensor2D, tf.Tensor1D, tf.Tensor1D];
        const dRows: tf.Tensor[] = [];
        let dParams: tf.Tensor[] = params.map((p) => tf.zerosLike(p));
        for (const span of spans) {
          const x = rowsOf(xs, span);
          const spanIds = itemsOf(ids, span);
          const spanWeights = itemsOf(w, span);
          const [dx, ...dp] = innerGradients(() => nll(x, spanIds, spanWeights), [x, ...params], dy);
          tf.dispose([x, spanIds, spanWeights]);
          dRows.push(dx);
          const summed = dParams.map((acc, i) => tf.add(acc, dp[i]));
          tf.dispose([...dParams, ...dp]);
          dParams = summed;
        }
        const dx = dRows.length === 1 ? dRows[0] : tf.concat(dRows, 0);
        if (dRows.length > 1) tf.dispose(dRows);
        return [dx, ...dParams];
      },
    };
  }) as Parameters<typeof tf.customGrad>[0]);
  return op(rows, ...params) as tf.Scalar;
}
