/**
 * The token ids every training-step bench feeds, row-major [batch, seq]: (i · 7919 + 13) mod vocab. The PEFT
 * yardstick (bench/peft_step.py) computes the same formula, so both sides train on the same tokens.
 */
export function syntheticIds(batch: number, seq: number, vocab: number): Int32Array {
  return new Int32Array(batch * seq).map((_, i) => (i * 7919 + 13) % vocab);
}
