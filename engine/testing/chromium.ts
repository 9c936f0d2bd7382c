import { existsSync } from 'node:fs';

/** Debian's Chromium (no browser download): `CHROMIUM_PATH`, else /usr/bin/chromium. */
export const chromiumPath = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

/** Flags for a quiet headless Chromium in a container (no sandbox, GPU, updates or first-run pages). */
export const chromiumArgs = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--no-first-run',
];

/**
 * For a test that drives the real browser: its path, or null after printing `not run: <reason>` so the test
 * can skip. Under `CI=true` a missing Chromium throws instead: CI must run these tests.
 */
export function chromiumOrSkip(): string | null {
  if (existsSync(chromiumPath)) return chromiumPath;
  const reason = `no Chromium at ${chromiumPath} (set CHROMIUM_PATH)`;
  if (process.env.CI === 'true') throw new Error(`CI=true but ${reason}`);
  console.warn(`not run: ${reason}`);
  return null;
}
