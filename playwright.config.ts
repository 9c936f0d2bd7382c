import { defineConfig } from '@playwright/test';
import { chromiumArgs, chromiumPath } from './e2e/env.ts';

/**
 * End-to-end tests against the real engine: browser mode (`studio serve`, one per worker) driven with Debian's
 * Chromium (no browser download), and the Electron journey when an Electron runtime exists. Screenshots of
 * every stage go to e2e/artifacts/; a failing test keeps its trace in test-results/.
 */
export default defineConfig({
  testDir: 'e2e',
  outputDir: 'test-results',
  // the engine trains on the CPU: one worker keeps the two cores for it, and tests never share a project
  workers: 1,
  fullyParallel: false,
  forbidOnly: Boolean(process.env.CI),
  retries: 0,
  timeout: 4 * 60_000,
  globalTimeout: 20 * 60_000,
  expect: { timeout: 30_000 },
  reporter: [['list']],
  use: {
    browserName: 'chromium',
    headless: true,
    viewport: { width: 1280, height: 720 },
    launchOptions: { executablePath: chromiumPath, args: chromiumArgs },
    trace: 'retain-on-failure',
    screenshot: 'only-on-failure',
    actionTimeout: 30_000,
  },
});
