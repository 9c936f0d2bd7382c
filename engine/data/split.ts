import { DataError } from './errors.ts';
import { deriveSeed, permutation } from './shuffle.ts';

const SPLIT_STREAM = 0x5eed;

/**
 * Holds out a seeded fraction of a training file for validation: the same seed and size always give the same
 * split. Both parts keep file order.
 */
export function splitValidation<T>(
  examples: T[],
  fraction: number,
  seed: number,
  file: string,
): { train: T[]; validation: T[] } {
  if (!(fraction > 0 && fraction < 1))
    throw new DataError(`validation fraction must be in (0, 1), got ${fraction}`, file);
  if (examples.length < 2)
    throw new DataError('need at least 2 examples to hold out a validation part', file);
  const count = Math.min(examples.length - 1, Math.max(1, Math.round(examples.length * fraction)));
  const held = new Set(permutation(examples.length, deriveSeed(seed, SPLIT_STREAM)).slice(0, count));
  const train: T[] = [];
  const validation: T[] = [];
  examples.forEach((e, i) => {
    (held.has(i) ? validation : train).push(e);
  });
  return { train, validation };
}
