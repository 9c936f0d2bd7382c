import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const repoRoot = fileURLToPath(new URL('../../../', import.meta.url));
export const rendererDist = join(repoRoot, 'renderer', 'dist');
/** Vite, a devDependency: present in a checkout, absent where the studio is installed as a package. */
const viteCli = join(repoRoot, 'node_modules', 'vite', 'bin', 'vite.js');

/** The prebuilt renderer that browser mode serves, or null when it has not been built. */
export function builtRenderer(): string | null {
  return existsSync(join(rendererDist, 'index.html')) ? rendererDist : null;
}

/**
 * The folder to serve: the prebuilt renderer, built first when it is missing (or when asked) and this is a
 * development checkout. The build runs Vite's own command in a child process, so nothing here imports it.
 */
export async function ensureRendererBuilt(
  opts: { force?: boolean; log?: (line: string) => void } = {},
): Promise<string> {
  const built = builtRenderer();
  if (built && !opts.force) return built;
  if (!existsSync(viteCli)) {
    if (built) return built;
    throw new Error(
      `the studio UI is not built (${rendererDist} is missing) and Vite, which builds it, is not installed: run \`npm run build:renderer\` in a development checkout`,
    );
  }
  opts.log?.(built ? 'rebuilding the studio UI…' : 'building the studio UI (renderer/dist is missing)…');
  const config = join(repoRoot, 'renderer', 'vite.config.ts');
  const child = spawn(process.execPath, [viteCli, 'build', '--config', config, '--logLevel', 'warn'], {
    cwd: repoRoot,
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (chunk) => {
    stderr += chunk;
  });
  const code = await new Promise<number | null>((resolve) => {
    child.on('error', () => resolve(null));
    child.on('close', resolve);
  });
  if (stderr.trim()) opts.log?.(stderr.trim());
  if (code !== 0 || !builtRenderer()) {
    throw new Error(
      `vite build of the studio UI failed (exit ${code}): ${stderr.trim().split('\n').pop() ?? ''}`,
    );
  }
  return rendererDist;
}
