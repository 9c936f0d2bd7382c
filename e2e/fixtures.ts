import type { ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test as base, expect, type Page } from '@playwright/test';
import { spawnServe } from '../engine/testing/serve.ts';
import { artifacts, chromiumPath } from './env.ts';

/** A `studio serve` of this worker, with throwaway home, config and projects folders. */
export interface StudioServer {
  /** The token URL printed by `studio serve`. */
  url: string;
  origin: string;
  token: string;
  work: string;
  home: string;
  projectsDir: string;
  /** Calls the API from the test process, as the page would (token header, the studio's own Origin). */
  call<T = unknown>(method: string, input?: unknown): Promise<T>;
}

async function startStudio(work: string): Promise<{ child: ChildProcess; server: StudioServer }> {
  const home = join(work, 'home');
  const projectsDir = join(work, 'projects');
  mkdirSync(home, { recursive: true });
  const { child, url } = await spawnServe(['--rebuild'], {
    HOME: home,
    STUDIO_CONFIG_DIR: join(work, 'config'),
    STUDIO_PROJECTS_DIR: projectsDir,
  });
  const parsed = new URL(url);
  const token = parsed.searchParams.get('token') ?? '';
  const origin = parsed.origin;
  const call = async <T>(method: string, input: unknown = {}): Promise<T> => {
    const response = await fetch(`${origin}/api/call/${method}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-studio-token': token, origin },
      body: JSON.stringify(input),
    });
    const reply = (await response.json()) as { ok: boolean; result?: T; error?: { message: string } };
    if (!reply.ok) throw new Error(`${method}: ${reply.error?.message}`);
    return reply.result as T;
  };
  return { child, server: { url, origin, token, work, home, projectsDir, call } };
}

/** Every page error and console error fails the test; 4xx replies are API errors the UI shows in place. */
function watchProblems(page: Page): string[] {
  const problems: string[] = [];
  page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
  page.on('console', (message) => {
    if (message.type() !== 'error') return;
    if (/Failed to load resource: the server responded with a status of 4\d\d/.test(message.text())) return;
    problems.push(`console error: ${message.text()}`);
  });
  return problems;
}

export const sizes = [
  { width: 1280, height: 720 },
  { width: 1440, height: 900 },
] as const;

/** Screenshots of what the user sees at both window sizes, then back to the first. */
export async function shoot(page: Page, name: string): Promise<void> {
  for (const size of [...sizes].reverse()) {
    await page.setViewportSize(size);
    // two frames: resize observers (charts) have laid out again
    await page.evaluate(
      () => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(() => r(null)))),
    );
    await page.screenshot({ path: join(artifacts, `${name}-${size.width}x${size.height}.png`) });
  }
}

export const test = base.extend<
  { chromium: undefined; freshStart: undefined; problems: string[] },
  { studio: StudioServer }
>({
  // set up before the page: without Chromium a test is "not run" locally and fails in CI
  chromium: [
    // biome-ignore lint/correctness/noEmptyPattern: Playwright fixtures take their dependencies destructured
    async ({}, use) => {
      if (!existsSync(chromiumPath)) {
        const reason = `Chromium not found at ${chromiumPath} (install it with: apt-get install -y chromium)`;
        if (process.env.CI) throw new Error(reason);
        console.log(`not run: ${reason}`);
        base.skip(true, `not run: ${reason}`);
      }
      await use(undefined);
    },
    { auto: true },
  ],
  studio: [
    // biome-ignore lint/correctness/noEmptyPattern: Playwright fixtures take their dependencies destructured
    async ({}, use) => {
      mkdirSync(artifacts, { recursive: true });
      const work = mkdtempSync(join(tmpdir(), 'studio-e2e-'));
      const { child, server } = await startStudio(work);
      await use(server);
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await exited;
      rmSync(work, { recursive: true, force: true });
    },
    { scope: 'worker', timeout: 120_000 },
  ],
  // tests share one engine: each starts from the start page, whatever project the one before left open
  freshStart: [
    async ({ studio }, use) => {
      await studio.call('settings.update', { lastProject: null });
      await use(undefined);
    },
    { auto: true },
  ],
  problems: [
    async ({ page }, use) => {
      const problems = watchProblems(page);
      await use(problems);
      expect(problems, 'the page reported errors').toEqual([]);
    },
    { auto: true },
  ],
});

export { expect };

/** A demo project of its own for one test, with training settings changed as given. */
export async function demoProject(
  studio: StudioServer,
  name: string,
  training: Record<string, unknown> = {},
): Promise<string> {
  const dir = join(studio.projectsDir, name);
  await studio.call('projects.createDemo', { dir });
  if (Object.keys(training).length > 0) await studio.call('projects.update', { dir, training });
  return dir;
}

interface RunState {
  id: string;
  dir: string;
  status: string;
  step: number;
}

/** Starts a run through the API; the page sees it through the engine like any other run. */
export function startRun(studio: StudioServer, projectDir: string, training: Record<string, unknown> = {}) {
  return studio.call<RunState>('runs.start', { projectDir, overrides: { training } });
}

/** Trains a run to its end through the API. */
export async function trainedRun(
  studio: StudioServer,
  projectDir: string,
  training: Record<string, unknown> = {},
): Promise<RunState> {
  const run = await startRun(studio, projectDir, training);
  await expect
    .poll(async () => (await studio.call<{ run: RunState }>('runs.status', { runDir: run.dir })).run.status, {
      timeout: 180_000,
      intervals: [500],
    })
    .toBe('completed');
  return run;
}
