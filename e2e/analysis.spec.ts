import { demoProject, expect, shoot, test, trainedRun } from './fixtures.ts';

/** A short run that records analysis snapshots along the way. */
const shortRun = {
  maxSteps: 24,
  analysisEvery: 4,
  checkpointEvery: 12,
  evalEvery: 0,
  exactMatchExamples: 0,
};

test('analysis you can read: sections, labelled heatmaps with a colour scale and hover values, full-width detail', async ({
  page,
  studio,
}) => {
  const project = await demoProject(studio, 'analysis');
  const lora = await trainedRun(studio, project, shortRun);
  await studio.call('projects.update', { dir: project, method: 'tlora', methodConfig: { r: 4 } });
  const tlora = await trainedRun(studio, project, shortRun);
  const link = (section: string) =>
    `${studio.origin}/#/analysis?${new URLSearchParams({ project, run: tlora.id, section })}`;
  await page.goto(studio.url);
  await page.goto(link('norms'));

  await test.step('sections with their own navigation, in the URL', async () => {
    const tabs = page.getByRole('tablist', { name: 'analysis sections' }).getByRole('tab');
    await expect(tabs).toHaveText([
      'Norms',
      'Scaling factors',
      'Spectra',
      'Eigenvalues',
      'Distributions',
      'Comparison',
    ]);
    await expect(page.getByTestId('section-norms')).toHaveAttribute('aria-selected', 'true');
    await page.getByTestId('section-spectra').click();
    await expect(page).toHaveURL(/section=spectra$/);
    await page.reload();
    await expect(page.getByTestId('section-spectra')).toHaveAttribute('aria-selected', 'true');
    await expect(page.getByTestId('spectrum')).toBeVisible();
    await shoot(page, 'analysis-01-spectra');
    await page.getByTestId('section-norms').click();
  });

  await test.step('heatmaps: layer and step axes, a colour scale with its unit, legible labels', async () => {
    const map = page.locator('[data-testid^="heatmap-‖ΔW‖_F"]').first();
    await expect(map.locator('.hm-axis')).toHaveText(['layer', 'step']);
    await expect(map.getByTestId('colour-scale')).toContainText('Frobenius norm of ΔW');
    // the demo model has 4 blocks: layers 0 to 3, one row each
    await expect(map.locator('.hm-label').first()).toHaveText('0');
    const box = await map.locator('.hm-label').first().boundingBox();
    expect(box?.height, 'axis labels are legible, not a few pixels high').toBeGreaterThanOrEqual(11);
    await shoot(page, 'analysis-02-norms');
  });

  await test.step('hovering a cell reads out its layer, step and value', async () => {
    const map = page.locator('[data-testid^="heatmap-‖ΔW‖_F"]').first();
    // 4 layers: the second cell of the second row is layer 1 at the second snapshot
    const columns = (await map.locator('rect.hm-cell').count()) / 4;
    const cell = map.locator('rect.hm-cell').nth(columns + 1);
    const value = Number(await cell.getAttribute('data-value'));
    await cell.hover();
    await expect(cell).toHaveClass(/on/);
    await expect(map.getByTestId('heatmap-readout')).toHaveText(/^layer 1 · step 8: /);
    const shown = Number((await map.getByTestId('heatmap-readout').textContent())?.split(': ')[1]);
    expect(Math.abs(shown - value) / Math.abs(value)).toBeLessThan(0.01);
  });

  await test.step('a full-width detail view of a chart', async () => {
    const card = page.locator('[data-testid^="heatmap-‖ΔW‖_F"]').first();
    await card.getByRole('button', { name: /full width/ }).click();
    const detail = page.getByTestId('chart-detail');
    await expect(detail).toBeVisible();
    const wide = await detail.boundingBox();
    const viewport = page.viewportSize();
    expect(wide && viewport && wide.width > viewport.width * 0.85).toBe(true);
    const small = await card.locator('rect.hm-cell').first().boundingBox();
    const large = await detail.locator('rect.hm-cell').first().boundingBox();
    expect(large && small && large.width > small.width * 1.5 && large.height > small.height).toBe(true);
    await shoot(page, 'analysis-03-detail');
    await page.keyboard.press('Escape');
    await expect(detail).toHaveCount(0);
  });

  await test.step('scaling factors, eigenvalues, distributions', async () => {
    await page.getByTestId('section-scaling').click();
    await expect(page.locator('[data-testid^="heatmap-scaling factor"]').first()).toBeVisible();
    await expect(page.getByTestId('bars-scaling')).toBeVisible();
    await shoot(page, 'analysis-04-scaling');
    await page.getByTestId('section-eigen').click();
    await page.getByTestId('eigen-card').getByRole('button', { name: 'Compute' }).click();
    await expect(page.getByTestId('eigen-card').locator('.recharts-scatter').first()).toBeVisible({
      timeout: 90_000,
    });
    await page.getByTestId('section-distributions').click();
    await expect(page.locator('[data-testid^="histogram-"]').first()).toBeVisible();
    await shoot(page, 'analysis-05-distributions');
  });

  await test.step('comparison with another run', async () => {
    await page.getByTestId('section-comparison').click();
    await page.getByLabel('run to compare with').selectOption(lora.dir);
    await page.getByRole('button', { name: 'Compare' }).click();
    await expect(page.locator('[data-testid^="similarity-"]').first()).toBeVisible({ timeout: 60_000 });
    await shoot(page, 'analysis-06-comparison');
  });
});
