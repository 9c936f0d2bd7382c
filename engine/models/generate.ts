import * as tf from '@tensorflow/tfjs-core';
import { mulberry32 } from '../random.ts';
import { type ForwardContext, inferenceContext } from './layers.ts';
import { TransformerModel } from './model.ts';
import type { KvCache } from './network.ts';
import { lastPositionRows } from './ops.ts';
import type { StudioTokenizer } from './tokenizer.ts';
import type { LoadedModel } from './types.ts';

export interface GenerateOptions {
  maxNewTokens?: number;
  /** 0 (default) decodes greedily; above 0 samples from softmax(logits / temperature). */
  temperature?: number;
  /** Sample among the k most likely tokens only (0 = all). */
  topK?: number;
  /** Seed of the sampling generator: the same seed gives the same text. */
  seed?: number;
  /** Ids that end generation; default: the tokenizer's EOS ids. */
  stopTokenIds?: number[];
  /** Add the tokenizer's special tokens (e.g. BOS) to a text prompt (default true). */
  addSpecialTokens?: boolean;
  /** Called after each new token with the text decoded so far (streaming display). */
  onToken?: (id: number, textSoFar: string) => void;
}

export interface GenerateResult {
  /** The new text, special tokens skipped. */
  text: string;
  /** The new token ids, including a final stop token when one was produced (as transformers returns them). */
  ids: number[];
  finishReason: 'eos' | 'length';
}

/** Picks the next token from one row of logits: argmax, or a temperature / top-k sample. */
export function pickToken(
  logits: Float32Array,
  temperature: number,
  topK: number,
  random: () => number,
): number {
  if (!(temperature > 0)) {
    let best = 0;
    for (let i = 1; i < logits.length; i++) if (logits[i] > logits[best]) best = i;
    return best;
  }
  let candidates = Array.from(logits.keys());
  if (topK > 0 && topK < logits.length) {
    candidates.sort((x, y) => logits[y] - logits[x]);
    candidates = candidates.slice(0, topK);
  }
  let max = Number.NEGATIVE_INFINITY;
  for (const i of candidates) max = Math.max(max, logits[i]);
  const weights = candidates.map((i) => Math.exp((logits[i] - max) / temperature));
  const total = weights.reduce((s, w) => s + w, 0);
  let r = random() * total;
  for (let j = 0; j < candidates.length; j++) {
    r -= weights[j];
    if (r <= 0) return candidates[j];
  }
  return candidates[candidates.length - 1];
}

/** Maximum sequence length of a model with learned positions (GPT-2), else Infinity. */
function positionLimit(model: LoadedModel): number {
  return model.positionLimit?.learned ? model.positionLimit.tokens : Number.POSITIVE_INFINITY;
}

/**
 * Next-token logits [B, vocab] of the new tokens `inputIds` (the whole sequences when `past` is null): the
 * LM head runs on each sequence's last position only, as nanoGPT's `lm_head(x[:, [-1], :])`. Models of this
 * engine extend the key/value cache (`cache`); any other LoadedModel returns a null cache and must be given
 * the whole sequences every time.
 */
function nextLogits(
  model: LoadedModel,
  inputIds: tf.Tensor2D,
  attentionMask: tf.Tensor2D,
  past: KvCache | undefined,
  ctx: ForwardContext,
): { logits: tf.Tensor2D; cache?: KvCache } {
  const [b, t] = inputIds.shape;
  if (model instanceof TransformerModel) {
    const out = model.decode(inputIds, attentionMask, past ?? null, ctx, { lastOnly: true });
    return { logits: tf.reshape(out.logits, [b, -1]) as tf.Tensor2D, cache: out.cache };
  }
  const rows = model.hidden({ inputIds, attentionMask }, ctx);
  return { logits: model.head(lastPositionRows(rows, b, t), ctx) };
}

function disposeCache(cache: KvCache | undefined): void {
  if (cache) for (const t of [...cache.keys, ...cache.values]) t.dispose();
}

/**
 * Continues a prompt with a causal language model, one token at a time, stopping at a stop token or after
 * `maxNewTokens`. Models of this engine reuse a key/value cache; any other LoadedModel recomputes the
 * whole sequence per token.
 */
export async function generate(
  model: LoadedModel,
  tokenizer: StudioTokenizer,
  prompt: string | number[],
  opts: GenerateOptions = {},
): Promise<GenerateResult> {
  if (model.spec.task !== 'causal-lm') {
    throw new Error(`generate: ${model.spec.architecture} is not a causal language model`);
  }
  const promptIds =
    typeof prompt === 'string'
      ? tokenizer.encode(prompt, { addSpecialTokens: opts.addSpecialTokens ?? true })
      : prompt;
  if (promptIds.length === 0) throw new Error('generate: the prompt is empty');
  const maxNew = Math.min(opts.maxNewTokens ?? 64, positionLimit(model) - promptIds.length);
  const stop = new Set(opts.stopTokenIds ?? tokenizer.eosTokenIds);
  const random = mulberry32(opts.seed ?? 0);
  const temperature = opts.temperature ?? 0;
  const topK = opts.topK ?? 0;
  const ctx = inferenceContext();
  const ids: number[] = [];
  let finishReason: GenerateResult['finishReason'] = 'length';
  let cache: KvCache | undefined;
  try {
    for (let step = 0; step < maxNew; step++) {
      const all = [...promptIds, ...ids];
      const fresh: number[] = cache ? all.slice(-1) : all;
      const past: KvCache | undefined = cache;
      const out: { logits: tf.Tensor2D; cache?: KvCache } = tf.tidy(() =>
        nextLogits(
          model,
          tf.tensor2d([fresh], [1, fresh.length], 'int32'),
          tf.ones([1, all.length], 'int32') as tf.Tensor2D,
          past,
          ctx,
        ),
      );
      disposeCache(past);
      cache = out.cache;
      const last = (await out.logits.data()) as Float32Array;
      out.logits.dispose();
      const next = pickToken(last, temperature, topK, random);
      ids.push(next);
      if (opts.onToken) opts.onToken(next, tokenizer.decode(ids, { skipSpecialTokens: true }));
      if (stop.has(next)) {
        finishReason = 'eos';
        break;
      }
    }
  } finally {
    disposeCache(cache);
  }
  return { text: tokenizer.decode(ids, { skipSpecialTokens: true }), ids, finishReason };
}

/**
 * Greedy continuations of many prompts at once (evaluation's exact match): prompts are left-padded into one
 * batch and decoded with a shared key/value cache, each row stopping at a stop token. Gives the ids
 * `generate(…, { temperature: 0 })` gives each prompt alone (stop token included), in one forward pass per new
 * token instead of one per prompt and token. Models other than this engine's have no cache: they recompute the
 * whole batch per token.
 */
export async function generateGreedyBatch(
  model: LoadedModel,
  prompts: number[][],
  opts: { maxNewTokens: number; stopTokenIds: number[]; padTokenId: number },
): Promise<number[][]> {
  if (prompts.some((p) => p.length === 0)) throw new Error('generate: a prompt is empty');
  const out = prompts.map((): number[] => []);
  if (prompts.length === 0) return out;
  const width = Math.max(...prompts.map((p) => p.length));
  const maxNew = Math.min(opts.maxNewTokens, positionLimit(model) - width);
  const stop = new Set(opts.stopTokenIds);
  const done = prompts.map(() => false);
  const ctx = inferenceContext();
  let cache: KvCache | undefined;
  const mask: number[][] = prompts.map((p) => [...new Array(width - p.length).fill(0), ...p.map(() => 1)]);
  let fresh: number[][] = prompts.map((p) => [...new Array(width - p.length).fill(opts.padTokenId), ...p]);
  try {
    for (let step = 0; step < maxNew && done.includes(false); step++) {
      const b = prompts.length;
      const t = fresh[0].length;
      const past: KvCache | undefined = cache;
      const inputIds = fresh.flat();
      const maskIds = mask.flat();
      const result: { next: tf.Tensor; cache?: KvCache } = tf.tidy(() => {
        const ids = tf.tensor2d(inputIds, [b, t], 'int32');
        const attention = tf.tensor2d(maskIds, [b, mask[0].length], 'int32');
        const out = nextLogits(model, ids, attention, past, ctx);
        return { next: tf.argMax(out.logits, 1), cache: out.cache };
      });
      disposeCache(past);
      cache = result.cache;
      const next = Array.from(await result.next.data());
      result.next.dispose();
      next.forEach((id, row) => {
        if (done[row]) return;
        out[row].push(id);
        if (stop.has(id)) done[row] = true;
      });
      // finished rows keep decoding a masked pad so the batch keeps its shape
      for (let row = 0; row < b; row++) mask[row].push(done[row] ? 0 : 1);
      const fed = next.map((id, row) => (done[row] ? opts.padTokenId : id));
      fresh = cache ? fed.map((id) => [id]) : fresh.map((ids, row) => [...ids, fed[row]]);
    }
  } finally {
    disposeCache(cache);
  }
  return out;
}
