import type { Locator, Page } from '@playwright/test';
import { demoProject, expect, shoot, startRun, test } from './fixtures.ts';

/**
 * A long run that keeps going until the test cancels it: no evaluation or checkpoint along the way, and small
 * steps, since the engine answers the page between two steps.
 */
const longRun = {
  maxSteps: 100_000,
  batchSize: 1,
  maxSeqLen: 32,
  evalEvery: 0,
  checkpointEvery: 0,
  analysisEvery: 0,
};

function escaped(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** The hash the app writes for a view of the project (and run). */
function hashOf(view: string, project: string, run?: string): string {
  return `#/${view}?${new URLSearchParams({ project, ...(run ? { run } : {}) })}`;
}

function routeOf(view: string, project: string, run?: string): RegExp {
  return new RegExp(`${escaped(hashOf(view, project, run))}$`);
}

async function progressStep(page: Page): Promise<number> {
  return Number((await page.getByTestId('progress-step').textContent())?.split('/')[0]);
}

/** The chip shows all of itself inside the sidebar: nothing cut off, nothing past its edge. */
async function expectInside(chip: Locator, box: Locator): Promise<void> {
  const fits = await chip.evaluate((el) => el.scrollWidth <= el.clientWidth);
  expect(fits, 'the chip has no overflowing content').toBe(true);
  const inner = await chip.boundingBox();
  const outer = await box.boundingBox();
  expect(inner && outer && inner.x >= outer.x && inner.x + inner.width <= outer.x + outer.width).toBe(true);
}

test('state survives a reload: deep links, the engine remembers the project, the live run chip, a second tab', async ({
  page,
  context,
  studio,
}) => {
  const project = await demoProject(studio, 'reload');
  const run = await startRun(studio, project, longRun);
  try {
    await test.step("a fresh window opens the engine's last project on its live run", async () => {
      await page.goto(studio.url);
      await expect(page).toHaveURL(routeOf('train', project, run.id));
      await expect(page.getByTestId('run-card').locator('.badge-running')).toBeVisible();
      await expect(page.getByTestId('progress-step')).toHaveText(/^[1-9]\d* \//);
      const step = await progressStep(page);
      await expect.poll(() => progressStep(page)).toBeGreaterThan(step);
    });

    await test.step('a reload mid-run comes back to the live run, its history and its chip', async () => {
      await page.reload();
      await expect(page).toHaveURL(routeOf('train', project, run.id));
      await expect(page.getByTestId('run-card').locator('.badge-running')).toBeVisible();
      await expect(page.getByTestId('chart-loss')).toHaveAttribute('data-points', /^[1-9]\d*$/);
      const step = await progressStep(page);
      await expect.poll(() => progressStep(page)).toBeGreaterThan(step);
      await expect(page.getByTestId('run-chip')).toBeVisible();
      await expectInside(page.getByTestId('run-chip'), page.locator('.sidebar'));
      await shoot(page, 'state-01-reload-mid-run');
    });

    await test.step('the view is in the URL; Back returns to the one before', async () => {
      await page.getByTestId('nav-runs').click();
      await expect(page).toHaveURL(routeOf('runs', project, run.id));
      await expect(page.getByTestId('runs-table')).toBeVisible();
      await page.goBack();
      await expect(page).toHaveURL(routeOf('train', project, run.id));
      await expect(page.getByTestId('run-card')).toBeVisible();
    });

    await test.step('a deep link opens its view and run', async () => {
      await page.goto(`${studio.origin}/${hashOf('export', project, run.id)}`);
      await expect(page.getByRole('heading', { name: 'Export' })).toBeVisible();
      await expect(page.getByLabel('Run')).toHaveValue(run.dir);
    });

    await test.step("the live run's chip opens its Train view", async () => {
      await page.getByTestId('nav-project').click();
      await page.getByTestId('run-chip').click();
      await expect(page).toHaveURL(routeOf('train', project, run.id));
      await expect(page.getByTestId('run-card').locator('.badge-running')).toBeVisible();
    });

    await test.step('a second tab shows the same project and live run', async () => {
      const second = await context.newPage();
      await second.goto(`${studio.origin}/`);
      await expect(second).toHaveURL(routeOf('train', project, run.id));
      await expect(second.getByTestId('run-card').locator('.badge-running')).toBeVisible();
      await expect(second.getByTestId('run-chip')).toBeVisible();
      await shoot(second, 'state-02-second-tab');
      await second.close();
      // a background tab gets no animation frames: the first tab comes back to the front
      await page.bringToFront();
    });

    await test.step('a closed project stays closed after a reload; the recent entry reads left to right', async () => {
      await page.getByTestId('close-project').click();
      await expect(page.getByTestId('open-demo')).toBeVisible();
      await page.reload();
      await expect(page.getByTestId('open-demo')).toBeVisible();
      await expect(page.getByTestId('project-name')).toHaveText('no project');
      const entry = page.getByTestId('recent-entry').first();
      const name = await entry.locator('.recent-name').boundingBox();
      const path = await entry.locator('.recent-path').boundingBox();
      expect(name && path && Math.abs(name.x - path.x) < 1, 'name and path start at the same left edge').toBe(
        true,
      );
      // the live run of the closed project is still one click away
      await expectInside(page.getByTestId('run-chip'), page.locator('.sidebar'));
      await shoot(page, 'state-03-start-page');
      await page.getByTestId('run-chip').click();
      await expect(page).toHaveURL(routeOf('train', project, run.id));
    });
  } finally {
    await studio.call('runs.cancel', { runDir: run.dir });
  }
});
