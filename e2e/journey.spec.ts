import { expect, test } from './fixtures.ts';
import { demoJourney } from './journey.ts';

test('browser mode: the demo journey', async ({ page, studio }) => {
  await test.step('a request without the token is refused', async () => {
    const refused = await fetch(studio.origin);
    expect(refused.status).toBe(401);
  });
  await page.goto(studio.url);
  await demoJourney(page, 'browser', studio.projectsDir);
});
