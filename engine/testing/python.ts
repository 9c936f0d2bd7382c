import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';

/**
 * The Python interpreter for tests that check our output with the real libraries (transformers, PEFT, gguf,
 * accelerate). Looked up as `STUDIO_PYTHON`, then the repository's `.venv` (what `.ci/run` creates from
 * `scripts/fixtures/requirements.txt`), then `python3` on PATH.
 */
const REPO = resolve(import.meta.dirname, '..', '..');

function candidates(): string[] {
  const list: string[] = [];
  if (process.env.STUDIO_PYTHON) list.push(process.env.STUDIO_PYTHON);
  const venv = join(REPO, '.venv', 'bin', 'python');
  if (existsSync(venv)) list.push(venv);
  list.push('python3');
  return list;
}

export type PythonLookup = { python: string; reason?: undefined } | { python: null; reason: string };

const cache = new Map<string, PythonLookup>();

/** The first interpreter that imports every module in `modules`, or the reason none does. */
export function findPython(modules: string[]): PythonLookup {
  const key = modules.join(',');
  const hit = cache.get(key);
  if (hit) return hit;
  const reasons: string[] = [];
  let found: PythonLookup | null = null;
  for (const python of candidates()) {
    const probe = spawnSync(python, ['-c', modules.map((m) => `import ${m}`).join('; ')], {
      encoding: 'utf8',
      timeout: 120_000,
    });
    if (probe.status === 0) {
      found = { python };
      break;
    }
    const why = probe.error ? probe.error.message : (probe.stderr.trim().split('\n').pop() ?? 'failed');
    reasons.push(`${python}: ${why}`);
  }
  const result: PythonLookup = found ?? {
    python: null,
    reason: `no Python with ${modules.join(', ')} (${reasons.join('; ')}); install scripts/fixtures/requirements.txt into .venv or set STUDIO_PYTHON`,
  };
  cache.set(key, result);
  return result;
}

/**
 * For a test that needs the real libraries: the interpreter, or null after printing `not run: <reason>` so
 * the test can skip. Under `CI=true` a missing interpreter throws instead: CI must run these tests.
 */
export function pythonOrSkip(modules: string[]): string | null {
  const lookup = findPython(modules);
  if (lookup.python) return lookup.python;
  if (process.env.CI === 'true') throw new Error(`CI=true but ${lookup.reason}`);
  console.warn(`not run: ${lookup.reason}`);
  return null;
}
