import { describe, expect, it } from 'vitest';
import { parseJsonLines } from './jsonl.ts';

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
