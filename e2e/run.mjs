#!/usr/bin/env node
/**
 * End-to-end journey against the real engine: browser mode (`studio serve`) driven by Playwright with Debian's
 * Chromium, then the same journey in Electron through Playwright's `_electron` when an Electron runtime exists.
 * Screenshots of every view go to e2e/artifacts/. Without Chromium it prints "not run: …" and fails only in CI.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { _electron, chromium } from 'playwright-core';
import { electronRuntime } from '../scripts/electron-runtime.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const artifacts = join(root, 'e2e', 'artifacts');
const chromiumPath = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const inCI = Boolean(process.env.CI);
const started = Date.now();
const TOTAL_LIMIT_MS = 4 * 60_000;

function log(line) {
  console.log(`[e2e ${((Date.now() - started) / 1000).toFixed(1).padStart(5)}s] ${line}`);
}

function notRun(reason) {
  console.log(`not run: ${reason}`);
  process.exit(inCI ? 1 : 0);
}

/** Starts `studio serve` on a free port with throwaway config and project folders; resolves with its URL. */
let serverChild = null;

function startServer(env) {
  const child = spawn(
    process.execPath,
    [join(root, 'bin', 'studio.mjs'), 'serve', '--port', '0', '--rebuild'],
    {
      cwd: root,
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  serverChild = child;
  let output = '';
  const url = new Promise((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`studio serve did not start in 90 s:\n${output}`)),
      90_000,
    );
    const onData = (chunk) => {
      output += chunk;
      const m = /running at (http:\/\/127\.0\.0\.1:\d+\/\?token=\S+)/.exec(output);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.on('exit', (code) => reject(new Error(`studio serve exited (${code}):\n${output}`)));
  });
  return { child, url, output: () => output };
}

/** The user journey, on any Playwright page showing the studio. */
async function journey(page, label, projectsDir) {
  const shot = async (name) => {
    await page.waitForTimeout(250);
    await page.screenshot({ path: join(artifacts, `${label}-${name}.png`), fullPage: true });
    log(`screenshot ${label}-${name}.png`);
  };
  const nav = (view) => page.getByTestId(`nav-${view}`).click();

  await page.getByTestId('open-demo').waitFor({ timeout: 30_000 });
  await shot('01-start');

  // 1. the demo project, one click away
  await page.getByTestId('open-demo').click();
  await page.getByTestId('data-preview').waitFor({ timeout: 60_000 });
  await page.getByTestId('model-tree').waitFor();
  await shot('02-project');

  // 2. TLoRA with r = 4 on q/v projections, and the budget
  await nav('adapter');
  await page.getByTestId('method-tlora').click();
  await page.locator('[data-field="r"] input').waitFor();
  await page.locator('[data-field="r"] input').fill('4');
  await page.locator('[data-field="r"] input').press('Enter');
  await page.locator('#target-pattern').fill(String.raw`.*\.(q_proj|v_proj)`);
  await page.getByRole('button', { name: 'Apply' }).click();
  // the demo model has 4 blocks: q_proj and v_proj in each
  await page.getByText('(8 modules)').waitFor({ timeout: 30_000 });
  const trainable = await page.getByTestId('budget-trainable').textContent();
  if (!trainable || trainable === '—') throw new Error('the budget shows no trainable count');
  log(`budget: ${trainable} trainable parameters`);
  await page.getByTestId('method-comparison').waitFor();
  await shot('03-adapter');

  // 3. train, watch the charts grow, pause and resume
  await page.getByTestId('train-now').click();
  await page.getByTestId('run-card').waitFor({ timeout: 60_000 });
  const points = () => page.getByTestId('chart-loss').getAttribute('data-points').then(Number);
  await page.waitForFunction(
    () => Number(document.querySelector('[data-testid="chart-loss"]')?.getAttribute('data-points') ?? 0) >= 4,
    null,
    { timeout: 90_000 },
  );
  const before = await points();
  await page.getByTestId('pause').click();
  await page.locator('.badge-paused').first().waitFor({ timeout: 60_000 });
  await shot('04-train-paused');
  const pausedAt = await points();
  await page.waitForTimeout(1500);
  if ((await points()) !== pausedAt) throw new Error('the loss chart kept growing while paused');
  await page.getByTestId('resume').click();
  await page.getByTestId('pause').waitFor({ timeout: 30_000 });
  await page.waitForFunction(
    (n) => Number(document.querySelector('[data-testid="chart-loss"]')?.getAttribute('data-points') ?? 0) > n,
    pausedAt,
    { timeout: 60_000 },
  );
  log(`charts updated live: ${before} → ${await points()} points`);
  await page.locator('.badge-completed').first().waitFor({ timeout: 150_000 });
  await shot('05-train-done');

  // 4. analysis
  await nav('analysis');
  await page.locator('[data-testid^="heatmap-"]').first().waitFor({ timeout: 60_000 });
  await page.getByTestId('eigen-card').getByRole('button', { name: 'Compute' }).click();
  await page.getByTestId('eigen-card').locator('.recharts-scatter').first().waitFor({ timeout: 60_000 });
  await shot('06-analysis');

  // 5. exports: a PEFT adapter and a merged model, verified. TLoRA has no PEFT type of its own, so its PEFT
  // adapter is the LoRA conversion (plain lora_A/lora_B that PEFT loads).
  await nav('export');
  const exported = [];
  // which formats the method has is known once the size estimate is in (the cards show '…' until then)
  await page
    .getByTestId('format-merged')
    .filter({ hasText: /\d B|KB|MB|GB/ })
    .waitFor({ timeout: 60_000 });
  const peftLike = (await page.getByTestId('format-peft').isDisabled()) ? 'lora' : 'peft';
  for (const format of [peftLike, 'merged']) {
    await page.getByTestId(`format-${format}`).click();
    const out = join(projectsDir, `export-${format}`);
    await page.getByLabel('export folder').fill(out);
    await page.getByTestId('export-run').click();
    const result = page.getByTestId(`export-result-${format}`);
    const failure = page.getByTestId('export-error');
    await result.or(failure).first().waitFor({ timeout: 120_000 });
    if (await failure.isVisible()) throw new Error(`${format} export failed: ${await failure.textContent()}`);
    const badge = await result.getByTestId('verification').textContent();
    if (badge !== 'verified') throw new Error(`${format} export: ${badge}`);
    exported.push({ format, out });
  }
  for (const { format, out } of exported) {
    const expected =
      format === 'merged'
        ? ['model.safetensors', 'config.json']
        : ['adapter_model.safetensors', 'adapter_config.json'];
    for (const file of expected) {
      const path = join(out, file);
      if (!existsSync(path) || statSync(path).size === 0) throw new Error(`missing ${path}`);
    }
    log(`${format} export verified, files in ${out}`);
  }
  JSON.parse(readFileSync(join(exported[0].out, 'adapter_config.json'), 'utf8'));
  await shot('07-export');

  // 6. runs history
  await nav('runs');
  await page.getByTestId('runs-table').waitFor();
  await shot('08-runs');

  // 7. try a prompt: base and adapted side by side
  await nav('try');
  await page.getByTestId('try-example').click();
  if (!(await page.locator('#prompt').inputValue()).trim()) throw new Error('the example prompt is empty');
  await page.getByTestId('try-run').click();
  await page.getByTestId('try-output').waitFor({ timeout: 60_000 });
  await shot('09-try');

  // 8. the dark theme and keyboard navigation (Alt+3 → Train)
  await page.getByRole('button', { name: /Dark theme/ }).click();
  await page.keyboard.press('Alt+3');
  await page.getByTestId('chart-loss').waitFor();
  await shot('10-train-dark');
}

async function browserMode() {
  if (!existsSync(chromiumPath)) {
    notRun(`Chromium not found at ${chromiumPath} (install it with: apt-get install -y chromium)`);
  }
  const work = mkdtempSync(join(tmpdir(), 'studio-e2e-'));
  const projectsDir = join(work, 'projects');
  const env = {
    ...process.env,
    STUDIO_CONFIG_DIR: join(work, 'config'),
    STUDIO_PROJECTS_DIR: projectsDir,
  };
  const server = startServer(env);
  const url = await server.url;
  log(`studio serve at ${url.replace(/token=.*/, 'token=…')}`);
  const browser = await chromium.launch({
    executablePath: chromiumPath,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
  const problems = [];
  try {
    const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
    page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
    page.on('console', (message) => {
      if (message.type() === 'error') problems.push(`console error: ${message.text()}`);
    });
    // a request without the token is refused
    const refused = await fetch(url.replace(/\?token=.*/, ''));
    if (refused.status !== 401) throw new Error(`a request without the token got ${refused.status}, not 401`);
    await page.goto(url);
    try {
      await journey(page, 'browser', projectsDir);
    } catch (error) {
      await page.screenshot({ path: join(artifacts, 'browser-failure.png') }).catch(() => undefined);
      throw error;
    }
    if (problems.length > 0) throw new Error(`the page reported errors:\n${problems.join('\n')}`);
  } finally {
    await browser.close();
    server.child.kill('SIGTERM');
    await new Promise((r) => server.child.once('exit', r));
    rmSync(work, { recursive: true, force: true });
  }
}

async function electronMode() {
  const binary = electronRuntime();
  if (!binary) {
    log(
      'Electron: not run: no Electron runtime (node_modules/electron has no binary; it cannot be downloaded here)',
    );
    return;
  }
  const main = join(root, '.vite', 'build', 'main.js');
  if (!existsSync(main)) {
    log(
      'Electron: not run: no packaged main bundle (.vite/build/main.js); run `npx electron-forge package` first',
    );
    return;
  }
  const work = mkdtempSync(join(tmpdir(), 'studio-e2e-electron-'));
  const app = await _electron.launch({
    executablePath: binary,
    args: [main],
    env: {
      ...process.env,
      STUDIO_CONFIG_DIR: join(work, 'config'),
      STUDIO_PROJECTS_DIR: join(work, 'projects'),
    },
  });
  try {
    const page = await app.firstWindow();
    await page.setViewportSize({ width: 1280, height: 800 });
    await journey(page, 'electron', join(work, 'projects'));
  } finally {
    await app.close();
    rmSync(work, { recursive: true, force: true });
  }
}

const watchdog = setTimeout(() => {
  console.error(`e2e: over the ${TOTAL_LIMIT_MS / 60_000} minute limit`);
  serverChild?.kill('SIGKILL');
  process.exit(1);
}, TOTAL_LIMIT_MS);
watchdog.unref();

mkdirSync(artifacts, { recursive: true });
try {
  await browserMode();
  log('browser mode: journey passed');
  await electronMode();
  log('done');
  process.exit(0);
} catch (error) {
  console.error(`e2e failed: ${error.stack ?? error}`);
  process.exit(1);
}
