// Where the Electron binary is, for `npm start` and the end-to-end journey.
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');

/**
 * The Electron binary, or null when there is none: the electron package writes path.txt once its binary is
 * downloaded (npm install runs no install scripts here, so usually it is not).
 * @returns {string | null}
 */
export function electronRuntime() {
  const pkg = join(root, 'node_modules', 'electron');
  const pathFile = join(pkg, 'path.txt');
  if (!existsSync(pathFile)) return null;
  const binary = join(pkg, 'dist', readFileSync(pathFile, 'utf8').trim());
  return existsSync(binary) ? binary : null;
}
