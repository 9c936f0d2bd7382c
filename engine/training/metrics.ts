/** Fraction of equal predictions. */
export function accuracy(pred: readonly number[], gold: readonly number[]): number {
  if (gold.length === 0) return Number.NaN;
  let ok = 0;
  for (let i = 0; i < gold.length; i++) if (pred[i] === gold[i]) ok++;
  return ok / gold.length;
}

/** Binary F1 with label 1 as the positive class (sklearn's default); 0 when there are no positives at all. */
export function binaryF1(pred: readonly number[], gold: readonly number[]): number {
  let tp = 0;
  let fp = 0;
  let fn = 0;
  for (let i = 0; i < gold.length; i++) {
    if (pred[i] === 1 && gold[i] === 1) tp++;
    else if (pred[i] === 1) fp++;
    else if (gold[i] === 1) fn++;
  }
  const denom = 2 * tp + fp + fn;
  return denom === 0 ? 0 : (2 * tp) / denom;
}

/** Normalises a generated answer for exact match: trimmed, inner whitespace collapsed. */
export function normalizeAnswer(text: string): string {
  return text.trim().replace(/\s+/g, ' ');
}

/**
 * Exact match of a greedy continuation against the expected answer: equal after normalisation, or the answer
 * followed by a word boundary (generation may run on past the answer until EOS or the token limit).
 */
export function exactMatch(generated: string, answer: string): boolean {
  const want = normalizeAnswer(answer);
  const got = normalizeAnswer(generated);
  if (got === want) return true;
  return want.length > 0 && got.startsWith(want) && got[want.length] === ' ';
}
