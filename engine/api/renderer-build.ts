import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export const rendererRoot = fileURLToPath(new URL('../../renderer/', import.meta.url));
export const rendererDist = fileURLToPath(new URL('../../renderer/dist/', import.meta.url));

/** Builds the renderer with vite when `renderer/dist` is missing (or when asked); returns the folder to serve. */
export async function ensureRendererBuilt(
  opts: { force?: boolean; log?: (line: string) => void } = {},
): Promise<string> {
  if (!opts.force && existsSync(`${rendererDist}index.html`)) return rendererDist;
  opts.log?.('building the studio UI (renderer/dist is missing)…');
  const { build } = await import('vite');
  await build({ configFile: `${rendererRoot}vite.config.ts`, logLevel: 'warn' });
  if (!existsSync(`${rendererDist}index.html`))
    throw new Error(`vite build did not produce ${rendererDist}index.html`);
  return rendererDist;
}
