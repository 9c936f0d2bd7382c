export { formatBytes } from '../io/bytes.ts';

/** Rows of cells as left-aligned columns two spaces apart (no trailing spaces). */
export function table(rows: string[][]): string[] {
  const widths = rows[0].map((_, c) => Math.max(...rows.map((r) => r[c].length)));
  return rows.map((r) =>
    r
      .map((cell, c) => cell.padEnd(widths[c]))
      .join('  ')
      .trimEnd(),
  );
}
