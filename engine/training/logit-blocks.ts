/**
 * How much of a causal-LM head's logits exist at once, shared by the loss (training/loss.ts) and the memory
 * estimate (adapters/memory.ts) so the estimate counts what the loss does. No tfjs here: the estimate runs from
 * config.json alone.
 */

/**
 * Logits of at most this many elements (32 MiB of float32) exist at once in a causal-LM loss: with a 151,936-token
 * vocabulary one 4 × 128 batch has 311 MB of logits, and as much again for their gradient.
 */
export const LOGIT_CHUNK_ELEMENTS = 1 << 23;

/**
 * Vocabulary rows per block of the streamed head loss over `tokens` rows of width `hidden`: the block's logits
 * [tokens, rows] and its widened weight rows [rows, hidden] each stay within `chunkElements`.
 */
export function headBlockRows(
  tokens: number,
  hidden: number,
  vocab: number,
  chunkElements = LOGIT_CHUNK_ELEMENTS,
): number {
  return Math.max(1, Math.min(vocab, Math.floor(chunkElements / Math.max(tokens, hidden))));
}
