#!/usr/bin/env node
// `npm start`: the desktop app when an Electron runtime is installed, otherwise browser mode (`studio serve --open`).
import { spawn } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { electronRuntime } from './electron-runtime.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');

/**
 * @param {string} command
 * @param {string[]} args
 */
function run(command, args) {
  const child = spawn(command, args, { cwd: root, stdio: 'inherit' });
  for (const signal of /** @type {const} */ (['SIGINT', 'SIGTERM']))
    process.on(signal, () => child.kill(signal));
  child.on('exit', (code, signal) => process.exit(signal ? 1 : (code ?? 0)));
}

const extra = process.argv.slice(2);
if (electronRuntime()) {
  run(join(root, 'node_modules', '.bin', 'electron-forge'), ['start', ...extra]);
} else {
  console.log(
    'No Electron runtime is installed (node_modules/electron has no binary; `node node_modules/electron/install.js` fetches it), so the studio opens in browser mode instead.',
  );
  run(process.execPath, [join(root, 'bin', 'studio.mjs'), 'serve', '--open', ...extra]);
}
