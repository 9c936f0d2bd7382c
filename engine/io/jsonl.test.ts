import { promises as fs } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { filterJsonLines, parseJsonLines, readJsonLines } from './jsonl.ts';

const invalid = (line: number, reason: string) => new Error(`f.jsonl:${line}: ${reason}`);

describe('parseJsonLines', () => {
  it('parses rows with their line numbers and skips blank lines', () => {
    expect(parseJsonLines('{"a":1}\n\n{"a":2}\n', invalid)).toEqual([
      { value: { a: 1 }, line: 1 },
      { value: { a: 2 }, line: 3 },
    ]);
  });

  it('drops a torn last line but rejects a broken earlier one, naming its line', () => {
    expect(parseJsonLines('{"a":1}\n{"a":', invalid)).toEqual([{ value: { a: 1 }, line: 1 }]);
    expect(() => parseJsonLines('{"a":1}\n{"a":\n{"a":3}\n', invalid)).toThrow(/^f\.jsonl:2: /);
  });
});

describe('readJsonLines / filterJsonLines', () => {
  it('a missing file has no rows and stays missing', async () => {
    const file = join(await fs.mkdtemp(join(tmpdir(), 'jsonl-')), 'none.jsonl');
    expect(await readJsonLines(file, invalid)).toEqual([]);
    await filterJsonLines(file, () => true, invalid);
    await expect(fs.access(file)).rejects.toThrow(/ENOENT/);
  });

  it('keeps the accepted rows and drops a torn last line by the reading rule', async () => {
    const file = join(await fs.mkdtemp(join(tmpdir(), 'jsonl-')), 'log.jsonl');
    await fs.writeFile(file, '{"step":1}\n{"kind":"x"}\n{"step":3}\n{"step":2}\n{"st');
    await filterJsonLines(file, (v) => (v as { step?: number }).step !== 3, invalid);
    expect(await fs.readFile(file, 'utf8')).toBe('{"step":1}\n{"kind":"x"}\n{"step":2}\n');
  });

  it('refuses to rewrite a log with a broken line in the middle, leaving it as it was', async () => {
    const file = join(await fs.mkdtemp(join(tmpdir(), 'jsonl-')), 'log.jsonl');
    const text = '{"step":1}\nnot json\n{"step":2}\n';
    await fs.writeFile(file, text);
    await expect(filterJsonLines(file, () => true, invalid)).rejects.toThrow(/^f\.jsonl:2: /);
    expect(await fs.readFile(file, 'utf8')).toBe(text);
  });
});
