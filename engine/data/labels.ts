import { DataError } from './errors.ts';
import type { RawExample } from './formats.ts';

/** Label names in id order: numeric labels by value ("0", "1", …), other names alphabetically. */
export function collectLabelNames(examples: RawExample[]): string[] {
  const names = new Set<string>();
  for (const e of examples) if (e.kind === 'classification') names.add(e.label);
  const list = [...names];
  const numeric = list.every((n) => /^-?\d+$/.test(n));
  return numeric ? list.sort((a, b) => Number(a) - Number(b)) : list.sort();
}

/** Maps each classification example's label to its id; an unknown label names its file and line. */
export function labelIdOf(example: RawExample, names: readonly string[]): number {
  if (example.kind !== 'classification')
    throw new DataError('not a classification example', example.file, example.line);
  const id = names.indexOf(example.label);
  if (id < 0) {
    throw new DataError(
      `unknown label "${example.label}" (labels: ${names.join(', ')})`,
      example.file,
      example.line,
    );
  }
  return id;
}
