import { promises as fs } from 'node:fs';
import { dirname } from 'node:path';
import { type InvalidLine, type JsonLine, parseJsonLines } from '../common/jsonl.ts';
import { diskFull, writeFileAtomic } from './atomic.ts';
import { writeFs } from './fs.ts';

export { type InvalidLine, type JsonLine, parseJsonLines } from '../common/jsonl.ts';

/** Reads a JSON-lines file by the rule of `parseJsonLines`; a missing file has no lines. */
export async function readJsonLines(file: string, invalid: InvalidLine): Promise<JsonLine[]> {
  let text: string;
  try {
    text = await fs.readFile(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw error;
  }
  return parseJsonLines(text, invalid);
}

/**
 * Rewrites a JSON-lines file, atomically, with only the rows `keep` accepts (a torn last line goes by the same
 * rule as on reading). A missing file stays missing.
 */
export async function filterJsonLines(
  file: string,
  keep: (value: unknown) => boolean,
  invalid: InvalidLine,
): Promise<void> {
  let text: string;
  try {
    text = await fs.readFile(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw error;
  }
  const kept = parseJsonLines(text, invalid).filter(({ value }) => keep(value));
  await writeFileAtomic(file, kept.map(({ value }) => `${JSON.stringify(value)}\n`).join(''));
}

/**
 * Appends one row and flushes it to the disk before returning, so a crash right after loses nothing that
 * was reported. A failed append (a full disk) is cut back off, so no torn line is left behind.
 */
export async function appendJsonLine(file: string, value: unknown): Promise<void> {
  const bytes = Buffer.from(`${JSON.stringify(value)}\n`, 'utf8');
  const io = writeFs();
  try {
    await io.mkdir(dirname(file));
    const handle = await io.open(file, 'a');
    try {
      const { size } = await handle.stat();
      try {
        await handle.write(bytes);
        await handle.datasync();
      } catch (error) {
        await handle.truncate(size).catch(() => undefined);
        throw error;
      }
    } finally {
      await handle.close();
    }
  } catch (error) {
    throw await diskFull(error, file, bytes.byteLength);
  }
}
