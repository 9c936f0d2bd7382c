import { join } from 'node:path';
import type { Locator } from '@playwright/test';
import { trainingWords } from '../engine/project/settings-help.ts';
import { root } from './env.ts';
import { demoProject, expect, type StudioServer, shoot, test } from './fixtures.ts';

function deepLink(studio: StudioServer, view: string, project: string): string {
  return `${studio.origin}/#/${view}?${new URLSearchParams({ project })}`;
}

/** Replaces a field's text by typing it key by key, as a user does (never `fill`). */
async function typeInto(input: Locator, text: string): Promise<void> {
  await input.click();
  await input.press('ControlOrMeta+a');
  await input.press('Backspace');
  await input.pressSequentially(text);
}

/** The same number written with an exponent: 16 → 1.6e1, 0.05 → 5e-2. */
function exponentForm(text: string): string {
  const [mantissa, exponent] = Number(text).toExponential().split('e');
  return `${mantissa}e${Number(exponent)}`;
}

/**
 * Types into every numeric field inside `form`: text that is no number stays as typed, marked with its
 * reason, and blocks `blocked`; the value written with an exponent or a leading minus stays exactly as
 * typed (valid, or marked with the bound it breaks); the original value makes the field valid again.
 */
async function exerciseNumericFields(form: Locator, blocked: Locator): Promise<number> {
  const inputs = form.locator('input[data-numeric]');
  const count = await inputs.count();
  for (let i = 0; i < count; i++) {
    const input = inputs.nth(i);
    const name = await input.getAttribute('name');
    const field = form.locator(`[data-field="${name}"]`).first();
    const original = await input.inputValue();
    await test.step(`${name}: abc, an exponent, a minus, then ${original || 'empty'} again`, async () => {
      await typeInto(input, 'abc');
      await expect(input).toHaveValue('abc');
      await expect(input).toHaveAttribute('aria-invalid', 'true');
      await expect(field.getByTestId('field-error')).toContainText('“abc” is not a number');
      await expect(blocked).toBeDisabled();
      if (original) {
        const exponent = exponentForm(original);
        await typeInto(input, exponent);
        await expect(input).toHaveValue(exponent);
        await expect(input).not.toHaveAttribute('aria-invalid', 'true');
        await typeInto(input, `-${original}`);
        await expect(input).toHaveValue(`-${original}`);
        if ((await input.getAttribute('aria-invalid')) === 'true')
          await expect(field.getByTestId('field-error')).toContainText(/must be [≥>]/);
      }
      await typeInto(input, original);
      await expect(input).toHaveValue(original);
      await expect(input).not.toHaveAttribute('aria-invalid', 'true');
    });
  }
  return count;
}

async function openFolded(container: Locator): Promise<void> {
  const closed = container.locator('details:not([open]) > summary');
  while ((await closed.count()) > 0) await closed.first().click();
}

test('every numeric field of every form takes what is typed, keeps invalid text and blocks its action', async ({
  page,
  studio,
}) => {
  const project = await demoProject(studio, 'forms');
  let typed = 0;

  await test.step('adapter settings of every method', async () => {
    await page.goto(studio.url);
    await page.goto(deepLink(studio, 'adapter', project));
    const form = page.getByTestId('method-form');
    for (const method of ['lora', 'tlora', 'tinylora', 'vera', 'loraxs']) {
      await page.getByTestId(`method-${method}`).click();
      await expect(page.getByTestId(`method-${method}`)).toHaveAttribute('aria-pressed', 'true');
      await expect(form.locator('input[data-numeric]').first()).toBeVisible();
      typed += await exerciseNumericFields(form, page.getByTestId('train-now'));
    }
    await page.getByTestId('method-lora').click();
    await expect(page.getByTestId('train-now')).toBeEnabled();
  });

  await test.step('training settings, the folded ones too', async () => {
    await page.getByTestId('nav-train').click();
    const form = page.getByTestId('training-settings');
    await openFolded(form);
    typed += await exerciseNumericFields(form, page.getByTestId('start-run'));
  });

  await test.step('a learning rate typed as 0.0002 trains at 0.0002, not 2', async () => {
    const lr = page.locator('#training-learningRate');
    await typeInto(lr, '0.0002');
    await expect(lr).toHaveValue('0.0002');
    // a short run, longer than the demo's 4 warmup steps (a shorter one earns a warning)
    await typeInto(page.locator('#training-maxSteps'), '6');
    await shoot(page, 'forms-01-training-settings');
    await page.getByTestId('start-run').click();
    await expect(page.getByTestId('run-card').locator('.badge-completed')).toBeVisible({ timeout: 120_000 });
    const runs = await studio.call<{ config: { training: { learningRate: number; maxSteps: number } } }[]>(
      'runs.list',
      { projectDir: project },
    );
    expect(runs[0].config.training).toMatchObject({ learningRate: 0.0002, maxSteps: 6 });
  });

  await test.step('an invalid value shows its reason and lists itself where Start was', async () => {
    await typeInto(page.locator('#training-learningRate'), 'abc');
    await expect(page.getByTestId('start-run')).toBeDisabled();
    await expect(page.getByTestId('start-blocked')).toContainText('Learning rate: “abc” is not a number');
    await shoot(page, 'forms-02-invalid-learning-rate');
    await typeInto(page.locator('#training-learningRate'), '2e-2');
    await expect(page.getByTestId('start-blocked')).toHaveCount(0);
  });

  await test.step('decoding options of Try it', async () => {
    await page.getByTestId('nav-try').click();
    await page.locator('#prompt').fill('Verse: in the beginning');
    await page.locator('#try-mode').selectOption('sampled');
    await expect(page.getByTestId('try-run')).toBeEnabled();
    typed += await exerciseNumericFields(page.locator('.schema-form'), page.getByTestId('try-run'));
  });

  await test.step('the held-out fraction of a new project', async () => {
    await page.getByTestId('close-project').click();
    await page.locator('#new-dir').fill(join(studio.projectsDir, 'never-made'));
    await page.getByText('use the bundled demo model').click();
    await page.locator('#new-data').fill(join(root, 'assets', 'demo', 'data', 'train.jsonl'));
    await expect(page.getByTestId('create-project')).toBeEnabled();
    typed += await exerciseNumericFields(page.getByTestId('new-project'), page.getByTestId('create-project'));
  });
  expect(typed, 'numeric fields typed into').toBeGreaterThan(40);
});

test('settings in plain words: labels with units, the field name as a hint, help, groups, folded extras', async ({
  page,
  studio,
}) => {
  const project = await demoProject(studio, 'words');
  await page.goto(studio.url);
  await page.goto(deepLink(studio, 'train', project));
  const form = page.getByTestId('training-settings');
  const batch = form.locator('[data-field="batchSize"]');
  await expect(batch.locator('label')).toHaveText('Batch size (examples)batchSize');
  await expect(batch.locator('code.field-key')).toHaveText('batchSize');
  await expect(batch.locator('.field-help')).toHaveText('examples per micro-batch');
  await expect(form.locator('legend')).toHaveText([
    'Data',
    'Optimisation',
    'Schedule',
    'Evaluation',
    'Checkpoints and analysis',
  ]);
  const beta = form.locator('[data-field="beta1"]');
  await expect(beta).toBeHidden();
  await form.getByText('More optimisation settings').click();
  await expect(beta.locator('label')).toContainText('Adam β₁');
  // no label is a bare camelCase field name any more
  await expect(form.locator('.field-label', { hasText: /^[a-z]+[A-Z]\w*$/ })).toHaveCount(0);
  // one labelled field per training setting
  await expect(form.locator('.field-label')).toHaveCount(Object.keys(trainingWords).length);
  await shoot(page, 'forms-03-settings-in-words');
});

test('sanity warnings: beside the field, and once more before Start', async ({ page, studio }) => {
  const project = await demoProject(studio, 'warnings');
  await page.goto(studio.url);

  await test.step('a rank above the modules’ width names the largest useful rank', async () => {
    await page.goto(deepLink(studio, 'adapter', project));
    const rank = page.locator('#adapter-r');
    await typeInto(rank, '100000');
    const warning = page.locator('[data-field="r"]').getByTestId('field-warning');
    await expect(warning).toContainText('r = 100000 is above min(in, out)');
    await expect(warning).toContainText('Largest useful rank: self_attn.q_proj 128, self_attn.v_proj 64');
    await shoot(page, 'warnings-01-rank');
  });

  await test.step('a learning rate far above the sweeps', async () => {
    await page.getByTestId('nav-train').click();
    await typeInto(page.locator('#training-learningRate'), '1e9');
    await expect(page.locator('[data-field="learningRate"]').getByTestId('field-warning')).toContainText(
      "over 10× the highest the README's lora sweeps tried",
    );
    await shoot(page, 'warnings-02-learning-rate');
  });

  await test.step('Start asks once more, listing both; Back starts nothing', async () => {
    await page.getByTestId('start-run').click();
    const panel = page.getByTestId('start-warnings');
    await expect(panel.locator('li')).toHaveCount(2);
    await expect(panel).toContainText('Largest useful rank');
    await expect(panel).toContainText('Learning rate 1e9 is over');
    await shoot(page, 'warnings-03-before-start');
    await page.getByTestId('start-back').click();
    await expect(panel).toHaveCount(0);
    expect(await studio.call('runs.list', { projectDir: project })).toEqual([]);
  });

  await test.step('sensible values start at once', async () => {
    await typeInto(page.locator('#training-learningRate'), '2e-2');
    // longer than the demo's 4 warmup steps
    await typeInto(page.locator('#training-maxSteps'), '8');
    await page.getByTestId('nav-adapter').click();
    await typeInto(page.locator('#adapter-r'), '8');
    await expect(page.getByTestId('field-warning')).toHaveCount(0);
    await page.getByTestId('train-now').click();
    await expect(page.getByTestId('start-warnings')).toHaveCount(0);
    await expect(page.getByTestId('run-card').locator('.badge-completed')).toBeVisible({ timeout: 120_000 });
  });
});
