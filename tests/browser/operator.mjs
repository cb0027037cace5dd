// An operator signs in through the simulator, opens the console, filters the tenant table to one tenant,
// retries it, and sees the charts. Screenshots go to $SCREENSHOT_DIR (operator.png, the console on a
// laptop; operator-phone.png; operator-tenant.png). Exits non-zero with a message on the first thing that
// does not happen.
import { join } from 'node:path';
import { launch, settings } from './common.mjs';

const [web, shots, operator, tenant] = settings('WEB_URL', 'SCREENSHOT_DIR', 'OPERATOR_NAME', 'TENANT');
const browser = await launch(shots);
let step = 'start';
try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });

  step = 'sign in';
  await page.goto(web);
  await page.getByRole('link', { name: 'Sign in with SuperOffice' }).click();
  await page.getByRole('button', { name: `Sign in as ${operator}` }).click();
  await page.getByRole('heading', { name: 'Create company with login user' }).waitFor();

  step = 'console';
  await page.goto(`${web}/operator`);
  await page.getByRole('heading', { name: 'Operator console' }).waitFor();

  step = 'filter to the tenant';
  await page.getByLabel('Context id or company starts with').fill(tenant);
  await page.getByRole('button', { name: 'Filter' }).click();
  await page.waitForURL(/q=/);
  const rows = page.locator('table.tenants tbody tr');
  if ((await rows.count()) !== 1) throw new Error(`expected one row, found ${await rows.count()}`);
  await page.getByRole('link', { name: tenant, exact: true }).click();

  step = 'retry';
  await page.getByRole('heading', { name: new RegExp(`^${tenant}`) }).waitFor();
  await page.getByRole('button', { name: 'Retry now' }).click();
  await page.getByText('Retried: the tenant is due now').waitFor();
  await page.getByRole('cell', { name: 'operator retry' }).first().waitFor();
  await page.screenshot({ path: join(shots, 'operator-tenant.png'), fullPage: true });

  step = 'the tenant is active again';
  for (let i = 0; i < 30; i++) {
    await page.goto(`${web}/operator/tenants/${tenant}`);
    if (await page.getByText(/^active: /).count()) break;
    await page.waitForTimeout(1000);
  }
  await page.getByText(/^active: /).waitFor({ timeout: 1000 });

  step = 'charts';
  await page.goto(`${web}/operator`);
  const chart = page.getByRole('img', { name: 'Chart: Exchanges per hour by outcome, last 24 hours' });
  await chart.scrollIntoViewIfNeeded();
  await page.waitForFunction(() => [...document.images].every((img) => img.complete && img.naturalWidth > 0));
  const charts = await page.locator('figure img').count();
  if (charts < 5) throw new Error(`expected 5 charts, found ${charts}`);
  await page.screenshot({ path: join(shots, 'operator-all.png'), fullPage: true });

  step = 'tenants needing attention';
  await page.getByLabel('Needs attention only').check();
  await page.getByRole('button', { name: 'Filter' }).click();
  await page.waitForURL(/attention=1/);
  await page.waitForFunction(() => [...document.images].every((img) => img.complete && img.naturalWidth > 0));
  await page.screenshot({ path: join(shots, 'operator.png'), fullPage: true });
  await page.setViewportSize({ width: 390, height: 844 });
  await page.screenshot({ path: join(shots, 'operator-phone.png'), fullPage: false });
  console.log(`ok: ${charts} charts`);
} catch (error) {
  console.error(`operator flow failed at "${step}": ${error.message}`);
  process.exitCode = 1;
} finally {
  await browser.close();
}
