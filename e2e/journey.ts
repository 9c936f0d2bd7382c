import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { expect, type Page, test } from '@playwright/test';
import { shoot } from './fixtures.ts';

/** Steps shown in the chart of the training loss (its rows, after thinning). */
function chartPoints(page: Page) {
  return page.getByTestId('chart-loss');
}

/**
 * The demo journey on any Playwright page showing the studio: demo project, TLoRA on q/v, train with pause and
 * resume, analysis, two verified exports, runs, try-it, dark theme. `label` prefixes the screenshots.
 */
export async function demoJourney(page: Page, label: string, projectsDir: string): Promise<void> {
  const nav = (view: string) => page.getByTestId(`nav-${view}`).click();

  await test.step('start page', async () => {
    await expect(page.getByTestId('open-demo')).toBeEnabled();
    await shoot(page, `${label}-01-start`);
  });

  await test.step('the demo project, one click away', async () => {
    await page.getByTestId('open-demo').click();
    await expect(page.getByTestId('data-preview')).toBeVisible({ timeout: 60_000 });
    await expect(page.getByTestId('model-tree')).toBeVisible();
    await shoot(page, `${label}-02-project`);
  });

  await test.step('TLoRA with r = 4 on q/v projections, and its budget', async () => {
    await nav('adapter');
    await page.getByTestId('method-tlora').click();
    const rank = page.locator('[data-field="r"] input');
    await rank.fill('');
    await rank.pressSequentially('4');
    await expect(rank).toHaveValue('4');
    await page.locator('#target-pattern').fill(String.raw`.*\.(q_proj|v_proj)`);
    await page.getByRole('button', { name: 'Apply' }).click();
    // the demo model has 4 blocks: q_proj and v_proj in each
    await expect(page.getByText('(8 modules)')).toBeVisible();
    await expect(page.getByTestId('budget-trainable')).toHaveText(/\d/);
    await expect(page.getByTestId('method-comparison')).toBeVisible();
    await shoot(page, `${label}-03-adapter`);
  });

  await test.step('train: the charts grow live, pause and resume', async () => {
    await page.getByTestId('train-now').click();
    await expect(page.getByTestId('run-card')).toBeVisible({ timeout: 60_000 });
    await expect(chartPoints(page)).toHaveAttribute('data-points', /^([4-9]|\d{2,})$/, { timeout: 90_000 });
    await page.getByTestId('pause').click();
    await expect(page.getByTestId('run-card').locator('.badge-paused')).toBeVisible({ timeout: 60_000 });
    // paused: the step shown is the step of the last loss point
    const shownStep = async () =>
      Number((await page.getByTestId('progress-step').textContent())?.split('/')[0]);
    await expect
      .poll(
        async () => (await shownStep()) === Number(await chartPoints(page).getAttribute('data-last-step')),
      )
      .toBe(true);
    const step = await shownStep();
    await shoot(page, `${label}-04-train-paused`);
    await page.getByTestId('resume').click();
    await expect(page.getByTestId('pause')).toBeVisible();
    await expect(page.getByTestId('progress-step')).not.toHaveText(new RegExp(`^${step} /`));
    await expect(page.getByTestId('run-card').locator('.badge-completed')).toBeVisible({ timeout: 180_000 });
    await expect(page.getByTestId('progress-step')).toHaveText('96 / 96');
    await shoot(page, `${label}-05-train-done`);
  });

  await test.step('analysis', async () => {
    await nav('analysis');
    await expect(page.locator('[data-testid^="heatmap-"]').first()).toBeVisible({ timeout: 60_000 });
    await page.getByTestId('section-eigen').click();
    await page.getByTestId('eigen-card').getByRole('button', { name: 'Compute' }).click();
    await expect(page.getByTestId('eigen-card').locator('.recharts-scatter').first()).toBeVisible({
      timeout: 60_000,
    });
    await shoot(page, `${label}-06-analysis`);
  });

  await test.step('exports: the LoRA conversion and the merged model, verified', async () => {
    await nav('export');
    // TLoRA has no PEFT type of its own: its PEFT-loadable adapter is the LoRA conversion
    await expect(page.getByTestId('format-peft')).toBeDisabled();
    await expect(page.getByTestId('format-lora')).toBeEnabled();
    for (const format of ['lora', 'merged']) {
      await page.getByTestId(`format-${format}`).click();
      const out = join(projectsDir, `export-${format}`);
      await page.getByLabel('export folder').fill(out);
      await page.getByTestId('export-run').click();
      const result = page.getByTestId(`export-result-${format}`);
      await expect(result.getByTestId('verification')).toHaveText('verified', { timeout: 120_000 });
      const files =
        format === 'merged'
          ? ['model.safetensors', 'config.json']
          : ['adapter_model.safetensors', 'adapter_config.json'];
      for (const file of files) {
        const path = join(out, file);
        expect(existsSync(path) && statSync(path).size > 0, `${path} written`).toBe(true);
      }
    }
    const config = JSON.parse(readFileSync(join(projectsDir, 'export-lora', 'adapter_config.json'), 'utf8'));
    expect(config.peft_type).toBe('LORA');
    await shoot(page, `${label}-07-export`);
  });

  await test.step('runs history', async () => {
    await nav('runs');
    await expect(page.getByTestId('runs-table')).toBeVisible();
    await shoot(page, `${label}-08-runs`);
  });

  await test.step('run elsewhere: the hand-off folder and how to launch it', async () => {
    const out = join(projectsDir, 'handoff-fsdp');
    await page.getByTestId('handoff-strategy').selectOption('fsdp');
    await page.getByLabel('Hand-off folder', { exact: true }).fill(out);
    await page.getByTestId('handoff-write').click();
    const result = page.getByTestId('handoff-result');
    await expect(result).toContainText(`files to ${out}`, { timeout: 60_000 });
    await expect(result).toContainText('./launch-accelerate.sh');
    for (const file of ['train.py', 'requirements.txt', 'accelerate-config.yaml', 'slurm.sbatch']) {
      expect(existsSync(join(out, file)), `${file} in the hand-off folder`).toBe(true);
    }
    await shoot(page, `${label}-08b-run-elsewhere`);
  });

  await test.step('import: the exported PEFT adapter comes back as a run marked imported', async () => {
    const rows = page.getByTestId('runs-table').locator('tbody tr');
    const before = await rows.count();
    await page.getByLabel('a PEFT adapter folder').check();
    await page.getByLabel('Folder', { exact: true }).fill(join(projectsDir, 'export-lora'));
    await page.getByTestId('import-submit').click();
    await expect(rows).toHaveCount(before + 1, { timeout: 60_000 });
    await expect(rows.first()).toContainText('imported');
  });

  await test.step('try a prompt: base and adapted side by side', async () => {
    await nav('try');
    await page.getByTestId('try-example').click();
    await expect(page.locator('#prompt')).not.toHaveValue(/^\s*$/);
    await page.getByTestId('try-run').click();
    await expect(page.getByTestId('try-output')).toBeVisible({ timeout: 60_000 });
    await shoot(page, `${label}-09-try`);
  });

  await test.step('dark theme and keyboard navigation (Alt+3 → Train)', async () => {
    await page.getByRole('button', { name: /Dark theme/ }).click();
    await expect(page.locator('html')).toHaveAttribute('data-theme', 'dark');
    await page.keyboard.press('Alt+3');
    await expect(page.getByTestId('chart-loss')).toBeVisible();
    await shoot(page, `${label}-10-train-dark`);
  });
}
