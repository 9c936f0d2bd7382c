import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { pythonFloatRepr, pythonJsonDumps } from './pyjson.ts';

describe('pythonJsonDumps', () => {
  it("matches Python's json.dumps(indent=2, sort_keys=True) on a sample written by fixtures/make_golden.py", async () => {
    const value = {
      b: [1, 2.5, 1e-5, 1e16, 0.0001, -0, 123456789.125],
      a: { z: 'é\u2028😀\x7f', y: null },
      lora_dropout: 0,
      empty: {},
      list: [],
    };
    const golden = await fs.readFile(join(import.meta.dirname, 'fixtures', 'pyjson-sample.json'), 'utf8');
    expect(pythonJsonDumps(value, new Set(['lora_dropout']))).toBe(golden);
  });

  it("spells floats as Python's repr does", () => {
    expect(pythonFloatRepr(0)).toBe('0.0');
    expect(pythonFloatRepr(0.1)).toBe('0.1');
    expect(pythonFloatRepr(1e-5)).toBe('1e-05');
    expect(pythonFloatRepr(1.5e-7)).toBe('1.5e-07');
    expect(pythonFloatRepr(12345.5)).toBe('12345.5');
    expect(pythonFloatRepr(1e22)).toBe('1e+22');
    expect(pythonFloatRepr(-2)).toBe('-2.0');
  });
});
