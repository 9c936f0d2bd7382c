/** One parsed line of a JSON-lines file, with its 1-based line number for error messages. */
export interface JsonLine {
  value: unknown;
  line: number;
}

/** Builds the error for an unparsable line (which names the file). */
export type InvalidLine = (line: number, reason: string) => Error;

/**
 * Parses append-only JSON-lines text. Blank lines are skipped; an unparsable last line is a torn append from a
 * crash and is dropped, while an unparsable earlier line is an error built by `invalid` (which names the file).
 */
export function parseJsonLines(text: string, invalid: InvalidLine): JsonLine[] {
  const lines = text.split('\n');
  const out: JsonLine[] = [];
  lines.forEach((raw, i) => {
    if (raw.trim() === '') return;
    try {
      out.push({ value: JSON.parse(raw), line: i + 1 });
    } catch (error) {
      if (i === lines.length - 1) return;
      throw invalid(i + 1, (error as Error).message);
    }
  });
  return out;
}
