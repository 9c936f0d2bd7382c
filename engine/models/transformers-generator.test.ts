import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { pythonOrSkip } from '../testing/python.ts';

const REPO = resolve(import.meta.dirname, '..', '..');
const COMMITTED = join(import.meta.dirname, 'fixtures', 'transformers');

/** sha256 of every file below `dir`, by relative path. */
function digests(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (d: string) => {
    for (const name of readdirSync(d)) {
      const path = join(d, name);
      if (statSync(path).isDirectory()) walk(path);
      else out[relative(dir, path)] = createHash('sha256').update(readFileSync(path)).digest('hex');
    }
  };
  walk(dir);
  return out;
}

describe('scripts/fixtures/transformers_models.py', () => {
  it('reproduces the committed transformers fixtures byte for byte', () => {
    const python = pythonOrSkip(['torch', 'transformers', 'peft']);
    if (!python) return;
    const out = mkdtempSync(join(tmpdir(), 'transformers-fixtures-'));
    try {
      const run = spawnSync(python, ['scripts/fixtures/transformers_models.py', '--out', out], {
        cwd: REPO,
        encoding: 'utf8',
        timeout: 600_000,
      });
      expect(run.status, run.stderr).toBe(0);
      expect(digests(out)).toEqual(digests(COMMITTED));
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  }, 600_000);
});
