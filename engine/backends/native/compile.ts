import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { cpus, homedir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * The native backend's C++ kernels (cc/) are compiled once per machine by its own C++ compiler into the user
 * cache and called through koffi: no binary ships and nothing is downloaded. Where no compiler builds them, the
 * callers fall back to their JS and onnxruntime routes and say why.
 */

/**
 * A compiled library's probe, run on first use and again after each switch: `set(false)` turns it off (tests
 * of the other routes), `set(null)` follows the environment again.
 */
export function probedOnce<S>(probe: (enabled: false | null) => S): {
  status(): S;
  set(on: false | null): void;
} {
  let status: S | null = null;
  let enabled: false | null = null;
  return {
    status: () => {
      status ??= probe(enabled);
      return status;
    },
    set(on) {
      enabled = on;
      status = null;
    },
  };
}

/** A kernel source beside this file, in cc/ (bundles of the engine carry that folder beside themselves). */
export function kernelSource(file: string): string {
  return fileURLToPath(new URL(`./cc/${file}`, import.meta.url));
}

/** Where compiled kernels are kept: `STUDIO_CACHE_DIR`, else `$XDG_CACHE_HOME` or ~/.cache, in adapter-studio. */
export function nativeCacheDir(env: NodeJS.ProcessEnv = process.env, home = homedir()): string {
  if (env.STUDIO_CACHE_DIR) return join(env.STUDIO_CACHE_DIR, 'native');
  return join(env.XDG_CACHE_HOME || join(home, '.cache'), 'adapter-studio', 'native');
}

/** The CPU's model and (on Linux) feature flags: a library built with -march=native is keyed by them too. */
function cpuSignature(): string {
  let flags = '';
  try {
    flags = /^flags\s*:(.*)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1] ?? '';
  } catch {
    // not Linux: the model name alone
  }
  return `${process.arch} ${cpus()[0]?.model ?? ''} ${flags}`;
}

/** The C++ compilers tried, in order: `$CXX`, then the usual names. */
function cxxCandidates(): string[] {
  return [process.env.CXX, 'c++', 'g++', 'clang++'].filter((c): c is string => Boolean(c));
}

/** Whether any of them runs here (tests: where one does, the kernels must build). */
export function cxxAvailable(): boolean {
  return cxxCandidates().some((cxx) => spawnSync(cxx, ['--version'], { timeout: 30_000 }).status === 0);
}

export interface CompileOptions {
  /** Flags tried first; where they fail, the build is retried without them (a compiler without -march=native). */
  preferredFlags?: string[];
  /** Key the library by this CPU as well (it was built for it). */
  perCpu?: boolean;
}

/**
 * Compiles `source` into the cache, once per source version and flags; a temp file renamed, so no half-written
 * library is ever loaded.
 */
export function compileNative(
  source: string,
  options: CompileOptions = {},
): { path: string } | { error: string } {
  if (!existsSync(source)) return { error: `the kernel source is missing (${source})` };
  const preferred = options.preferredFlags ?? [];
  const base = ['-O3', '-std=c++17', '-shared', '-fPIC', '-pthread'];
  const attempts = preferred.length ? [[...base, ...preferred], base] : [base];
  const text = readFileSync(source);
  const name = source.split(/[\\/]/).pop()!.replace(/\.cc$/, '');
  const dir = nativeCacheDir();
  const extension = process.platform === 'darwin' ? 'dylib' : 'so';
  const compilers = cxxCandidates();
  const failures: string[] = [];
  for (const flags of attempts) {
    const hash = createHash('sha256')
      .update(text)
      .update(flags.join(' '))
      .update(options.perCpu ? cpuSignature() : '')
      .digest('hex')
      .slice(0, 16);
    const path = join(dir, `${name}-${hash}.${extension}`);
    if (existsSync(path)) return { path };
    try {
      mkdirSync(dir, { recursive: true });
    } catch (error) {
      return { error: `cannot create the kernel cache ${dir}: ${(error as Error).message}` };
    }
    const tmp = `${path}.${process.pid}.tmp`;
    for (const cxx of compilers) {
      const run = spawnSync(cxx, [...flags, source, '-o', tmp], { encoding: 'utf8', timeout: 180_000 });
      if (run.status === 0) {
        renameSync(tmp, path);
        return { path };
      }
      rmSync(tmp, { force: true });
      const why = run.error
        ? run.error.message
        : (run.stderr.split('\n').find((l) => /error/i.test(l)) ?? `exit ${run.status}`);
      failures.push(`${cxx}: ${why.trim()}`);
    }
  }
  return { error: `no C++ compiler could build ${name}.cc (${[...new Set(failures)].join('; ')})` };
}
