import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

describe('training', () => {
  it('imports nothing from analysis, not even types or dynamically (the recorder is injected)', () => {
    const dir = import.meta.dirname;
    const offending = readdirSync(dir)
      .filter((f) => f.endsWith('.ts') && !f.endsWith('.test.ts'))
      .filter((f) => /(from|import\()\s*['"][^'"]*\/analysis\//.test(readFileSync(join(dir, f), 'utf8')));
    expect(offending).toEqual([]);
  });
});
