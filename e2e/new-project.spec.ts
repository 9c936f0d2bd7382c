import { cpSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Page } from '@playwright/test';
import { root } from './env.ts';
import { expect, shoot, test } from './fixtures.ts';

const demo = join(root, 'assets', 'demo');

/** Opens the engine's folder browser of a path field and walks into `folders` by clicking them. */
async function browseTo(page: Page, field: string, folders: string[]) {
  await page.getByTestId(`browse-${field}`).click();
  const browser = page.getByTestId('folder-browser');
  await expect(browser).toBeVisible();
  for (const folder of folders) {
    await browser.locator('.browse-entry', { hasText: folder }).first().click();
    await expect(page.getByTestId('browser-dir')).toHaveText(new RegExp(`/${folder}$`));
  }
  return browser;
}

test('a new project without typing a path: folder browser, bad inputs named, the split it will make', async ({
  page,
  studio,
}) => {
  // the user's files, in the home folder the engine browses
  const models = join(studio.home, 'models');
  const data = join(studio.home, 'data');
  mkdirSync(data, { recursive: true });
  cpSync(join(demo, 'model'), join(models, 'verse-model'), { recursive: true });
  cpSync(join(demo, 'data', 'train.jsonl'), join(data, 'verses.jsonl'));
  cpSync(join(demo, 'data', 'validation.jsonl'), join(data, 'held-out.jsonl'));
  writeFileSync(join(data, 'broken.jsonl'), '{"prompt": "a", "completion": "b"}\n{"prompt": "c", oops\n');
  writeFileSync(join(data, 'notes.txt'), 'not a dataset');
  await page.goto(studio.url);

  await test.step('the project folder: created inside a folder picked in the browser', async () => {
    const browser = await browseTo(page, 'new-dir', []);
    await expect(page.getByTestId('browser-dir')).toHaveText(studio.home);
    await browser.getByRole('button', { name: 'Create it in this folder' }).click();
    await expect(page.locator('#new-dir')).toHaveValue(join(studio.home, 'my-project'));
  });

  await test.step('the model: a folder recognised by its config.json, with architecture and size', async () => {
    const browser = await browseTo(page, 'new-model', ['models']);
    const entry = browser.locator('li[data-kind="model"]');
    await expect(entry).toContainText('verse-model');
    await expect(entry).toContainText(/LlamaForCausalLM · 4\.\d+ MB/);
    await shoot(page, 'new-project-01-model-browser');
    await entry.getByRole('button').click();
    await expect(page.locator('#new-model')).toHaveValue(join(models, 'verse-model'));
  });

  await test.step('a malformed dataset is named with its line before anything is created', async () => {
    const browser = await browseTo(page, 'new-data', ['data']);
    await expect(browser.locator('li[data-kind="dataset"]')).toHaveCount(3);
    await expect(browser.locator('li', { hasText: 'verses.jsonl' })).toContainText('1,800 rows');
    await expect(browser).toContainText('and 1 other file');
    await browser.locator('li', { hasText: 'broken.jsonl' }).getByRole('button').click();
    await expect(page.getByTestId('split-line')).toContainText(
      `${join(data, 'broken.jsonl')}:2: malformed JSON`,
    );
    await shoot(page, 'new-project-02-broken-dataset');
  });

  await test.step('a good dataset shows the split the engine will make; a bad fraction blocks Create', async () => {
    const browser = await browseTo(page, 'new-data', []);
    await browser.locator('li', { hasText: 'verses.jsonl' }).getByRole('button').click();
    const split = page.getByTestId('split-line');
    await expect(split).toContainText(
      '1,800 examples: 1,620 to train on, 180 held out for validation (10 %, seed 0)',
    );
    const fraction = page.locator('#new-project-valFraction');
    await fraction.click();
    await fraction.press('ControlOrMeta+a');
    await fraction.pressSequentially('1.5');
    await expect(fraction).toHaveAttribute('aria-invalid', 'true');
    await expect(page.locator('[data-field="valFraction"]').getByTestId('field-error')).toHaveText(
      'Held-out fraction must be < 1',
    );
    await expect(page.getByTestId('create-project')).toBeDisabled();
    await fraction.press('ControlOrMeta+a');
    await fraction.pressSequentially('0.25');
    await expect(split).toContainText('1,350 to train on, 450 held out');
    await shoot(page, 'new-project-03-split');
  });

  await test.step('or a validation file, picked the same way', async () => {
    await page.getByLabel('a validation file').check();
    const browser = await browseTo(page, 'new-validation', ['data']);
    await browser.locator('li', { hasText: 'held-out.jsonl' }).getByRole('button').click();
    await expect(page.getByTestId('split-line')).toContainText(
      '1,800 training examples; 240 validation examples from held-out.jsonl',
    );
  });

  await test.step('a folder outside the allowed roots is refused by the engine', async () => {
    await page.locator('#new-model').fill('/etc/ssl');
    await page.getByTestId('browse-new-model').click();
    const browser = page.getByTestId('folder-browser');
    await expect(browser.getByRole('alert')).toContainText(
      '/etc/ssl is outside the folders the studio may browse',
    );
    // and browsing starts where it may
    await expect(page.getByTestId('browser-dir')).toHaveText(studio.home);
    await browser.getByRole('button', { name: 'Close' }).click();
  });

  await test.step('a model folder that does not exist is named when creating', async () => {
    await page.locator('#new-model').fill(join(studio.home, 'no-such-model'));
    await page.getByTestId('create-project').click();
    await expect(page.getByRole('alert').filter({ hasText: 'no-such-model' })).toBeVisible();
    await shoot(page, 'new-project-04-missing-model');
  });

  await test.step('with the model picked again, the project opens with its validation file', async () => {
    const browser = await browseTo(page, 'new-model', ['models']);
    await browser.locator('li[data-kind="model"]').getByRole('button').click();
    await page.getByTestId('create-project').click();
    await expect(page.getByTestId('data-preview')).toBeVisible({ timeout: 60_000 });
    await expect(page.getByTestId('dataset-card')).toContainText('held-out.jsonl');
    await expect(page).toHaveURL(/#\/project\?project=/);
    await shoot(page, 'new-project-05-created');
  });
});
