import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { _electron, test } from '@playwright/test';
import { electronRuntime } from '../scripts/electron-runtime.mjs';
import { root } from './env.ts';
import { demoJourney } from './journey.ts';

const main = join(root, '.vite', 'build', 'main.js');

test('desktop: the demo journey in Electron', async () => {
  const binary = electronRuntime();
  const reason = !binary
    ? 'no Electron runtime (node_modules/electron has no binary; it cannot be downloaded here)'
    : !existsSync(main)
      ? 'no packaged main bundle (.vite/build/main.js); run `npx electron-forge package` first'
      : null;
  if (reason) console.log(`Electron: not run: ${reason}`);
  test.skip(reason !== null, `not run: ${reason}`);
  const work = mkdtempSync(join(tmpdir(), 'studio-e2e-electron-'));
  const app = await _electron.launch({
    executablePath: binary ?? undefined,
    args: [main],
    env: {
      ...process.env,
      STUDIO_CONFIG_DIR: join(work, 'config'),
      STUDIO_PROJECTS_DIR: join(work, 'projects'),
    },
  });
  try {
    const page = await app.firstWindow();
    await demoJourney(page, 'electron', join(work, 'projects'));
  } finally {
    await app.close();
    rmSync(work, { recursive: true, force: true });
  }
});
