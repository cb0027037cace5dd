// Signs in as a tenant administrator through the simulator, creates a company with the login user and
// one with the system user, and checks that both results show on the page. Screenshots of each step go
// to $SCREENSHOT_DIR. Exits non-zero with a message on the first thing that does not happen.
import { join } from 'node:path';
import { launch, settings } from './common.mjs';

const [web, shots, admin] = settings('WEB_URL', 'SCREENSHOT_DIR', 'ADMIN_NAME');
const browser = await launch(shots);
let step = 'start';
try {
  const page = await browser.newPage({ viewport: { width: 1100, height: 900 } });
  const shot = async (name) => page.screenshot({ path: join(shots, `${name}.png`), fullPage: true });

  step = 'home (signed out)';
  await page.goto(web);
  await page.getByRole('link', { name: 'Sign in with SuperOffice' }).click();

  step = 'SuperID sign-in page';
  await page.getByRole('button', { name: `Sign in as ${admin}` }).waitFor();
  await shot('1-superid-sign-in');
  await page.getByRole('button', { name: `Sign in as ${admin}` }).click();

  step = 'home (signed in)';
  await page.getByRole('heading', { name: 'Create company with login user' }).waitFor();
  await shot('2-home-signed-in');
  await page.setViewportSize({ width: 390, height: 844 });
  await shot('2-home-signed-in-phone');
  await page.setViewportSize({ width: 1100, height: 900 });

  step = 'create company with login user';
  await page.getByLabel('Company name').first().fill('Browser Login User AS');
  await page.getByRole('button', { name: 'Create company with login user' }).click();
  await page.getByText(/Company Browser Login User AS created with your own credentials \(id \d+\)/).waitFor();
  await shot('3-created-with-login-user');

  step = 'create company with system user';
  await page.getByLabel('Company name').nth(1).fill('Browser System User AS');
  await page.getByRole('button', { name: 'Create company with system user' }).click();
  const outcome = page.locator('#outcome');
  await outcome.waitFor();
  await shot('4-queued');
  await page.locator('#outcome[data-state="done"]').waitFor({ timeout: 30000 });
  const text = await outcome.innerText();
  if (!/done: company id \d+/.test(text)) throw new Error(`unexpected outcome: ${text}`);
  await shot('5-created-with-system-user');
  console.log(`ok: ${text}`);
} catch (error) {
  console.error(`browser flow failed at "${step}": ${error.message}`);
  process.exitCode = 1;
} finally {
  await browser.close();
}
