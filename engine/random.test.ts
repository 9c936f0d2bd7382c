import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';
import { mulberry32 } from './random.ts';

describe('mulberry32', () => {
  it('matches an independent implementation (Python, 32-bit integer arithmetic)', () => {
    // values printed by a Python port of the published algorithm (masking every product to 32 bits)
    const expected: Record<number, number[]> = {
      0: [0.26642920868471265, 0.0003297457005828619, 0.2232720274478197, 0.1462021479383111],
      42: [0.6011037519201636, 0.44829055899754167, 0.8524657934904099, 0.6697340414393693],
      4294967295: [0.8964226141106337, 0.189478256739676, 0.7156526781618595, 0.9440599093213677],
    };
    for (const [seed, values] of Object.entries(expected)) {
      const random = mulberry32(Number(seed));
      expect(values.map(() => random())).toEqual(values);
    }
  });

  it('is the only copy of the generator in the engine', () => {
    const root = import.meta.dirname;
    // the generator's increment, spelled so that this file does not contain it
    const increment = `0x${(1831565813).toString(16)}`;
    const copies: string[] = [];
    const walk = (dir: string) => {
      for (const entry of readdirSync(dir, { withFileTypes: true })) {
        const path = join(dir, entry.name);
        if (entry.isDirectory() && entry.name !== 'fixtures' && entry.name !== 'node_modules') walk(path);
        else if (/\.(ts|mjs)$/.test(entry.name) && readFileSync(path, 'utf8').includes(increment))
          copies.push(relative(root, path));
      }
    };
    walk(root);
    expect(copies).toEqual(['random.ts']);
  });
});
