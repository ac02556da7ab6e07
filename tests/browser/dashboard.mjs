// End-to-end test of postured's dashboard in a real headless Chromium (Debian `chromium`,
// driven by playwright-core), with axe-core checking every page for serious or critical
// accessibility violations. Run by tests/dashboard.rs against a real daemon:
//
//   DASHBOARD_URL=http://127.0.0.1:PORT DASHBOARD_TOKEN=... SCREENSHOT_DIR=dir node dashboard.mjs
//
// A person signs in with a token, filters the overview by category, opens the improvement
// action with the most points available, sets its status manually with a note, attaches a file
// of evidence, sees the audit entries of both and the score rise. Screenshots of the sign-in, overview, assessment and action pages go to
// SCREENSHOT_DIR. Prints `action: <id>` for the Rust side to check the store. Exits non-zero
// on any failure, on a CSP violation or script error in the page, or on an alert dialog.

import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import assert from 'node:assert/strict';
import { chromium } from 'playwright-core';

const base = process.env.DASHBOARD_URL;
const token = process.env.DASHBOARD_TOKEN;
const shots = process.env.SCREENSHOT_DIR;
assert.ok(base && token && shots, 'DASHBOARD_URL, DASHBOARD_TOKEN and SCREENSHOT_DIR are required');
const require = createRequire(import.meta.url);
const axeSource = readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');

const browser = await chromium.launch({
  executablePath: '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
    '--disable-component-update', '--disable-sync'],
});
const problems = [];
try {
  const context = await browser.newContext({ viewport: { width: 1280, height: 860 } });
  const page = await context.newPage();
  page.on('console', (m) => {
    // The refused sign-in is answered 401 on purpose; anything else (a CSP violation, a
    // missing resource) is a problem.
    const expected = /status of 401/.test(m.text()) && new URL(page.url()).pathname === '/sign-in';
    if (m.type() === 'error' && !expected) problems.push(`console error on ${page.url()}: ${m.text()}`);
  });
  page.on('pageerror', (e) => problems.push(`script error on ${page.url()}: ${e.message}`));
  page.on('dialog', async (d) => {
    problems.push(`dialog opened on ${page.url()}: ${d.message()}`);
    await d.dismiss();
  });

  // axe-core, evaluated through the DevTools protocol (the page's CSP allows no script).
  async function accessible(name) {
    await page.evaluate(axeSource);
    const result = await page.evaluate(() =>
      // eslint-disable-next-line no-undef
      axe.run(document, { runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'best-practice'] } }));
    const bad = result.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
    for (const v of bad) {
      problems.push(`${name}: axe ${v.impact} ${v.id}: ${v.help} (${v.nodes.slice(0, 3).map((n) => n.target.join(' ')).join('; ')})`);
    }
    console.log(`${name}: axe ${result.passes.length} rules passed, ${bad.length} serious or critical violations, ${result.violations.length - bad.length} minor`);
  }
  async function shot(name) {
    await page.screenshot({ path: join(shots, `${name}.png`) });
  }
  const score = async () => parseFloat((await page.getByTestId('score').textContent()).replace('%', ''));

  // Signed out: any page leads to the sign-in form.
  await page.goto(`${base}/`);
  assert.match(new URL(page.url()).pathname, /^\/sign-in$/);
  await accessible('sign-in');
  // Keyboard: the first Tab reaches the skip link.
  await page.keyboard.press('Tab');
  assert.equal(await page.evaluate(() => document.activeElement.textContent), 'Skip to content');
  await shot('sign-in');
  await page.getByLabel('API token').fill('not-the-token');
  await page.getByRole('button', { name: 'Sign in' }).click();
  assert.match(await page.getByRole('alert').textContent(), /not accepted/);
  await page.getByLabel('API token').fill(token);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.waitForURL(`${base}/`);

  // Overview.
  await page.getByRole('heading', { level: 1, name: 'Compliance overview' }).waitFor();
  const overall = await score();
  await accessible('overview');
  await shot('overview');

  // Filter by category with the GET form.
  await page.getByLabel('Category').selectOption('Documentation');
  await page.getByRole('button', { name: 'Apply filters' }).click();
  await page.waitForURL(/category=Documentation/);
  const filtered = await score();
  const categories = await page.locator('table:has(caption:text("By category")) tbody th').allTextContents();
  assert.deepEqual(categories, ['Documentation']);
  console.log(`score ${overall}% overall, ${filtered}% for Documentation`);

  // Open the key action with the most points available.
  const keyActions = page.locator('section[aria-labelledby="key-h"] tbody tr');
  const first = keyActions.first().locator('a');
  const title = (await first.textContent()).trim();
  await first.click();
  await page.getByRole('heading', { level: 1, name: title }).waitFor();
  const action = decodeURIComponent(new URL(page.url()).pathname.split('/').pop());
  console.log(`action: ${action}`);
  await accessible('action');

  // Set its status manually, with a note.
  await page.getByLabel('Implementation status').selectOption('implemented');
  await page.getByLabel('Test status').selectOption('passed');
  await page.getByLabel('Assigned to').fill('Compliance officer');
  await page.getByLabel('Implementation notes', { exact: true }).fill('Reviewed in the browser test: policy approved and published.');
  await page.getByLabel('Add an evidence link').fill('https://intranet.example/policies/records');
  await page.getByRole('button', { name: 'Save' }).click();
  await page.waitForURL(/notice=saved/);
  assert.match(await page.getByRole('status').first().textContent(), /Saved/);
  assert.equal((await page.getByTestId('test-status').textContent()).trim(), 'Passed');
  assert.equal(await page.getByLabel('Implementation notes', { exact: true }).inputValue(), 'Reviewed in the browser test: policy approved and published.');
  // The audit log shows who changed the test status, from what to what.
  const audit = page.locator('table:has(caption:text("Changes by people")) tbody tr');
  const testStatusRow = audit.filter({ has: page.locator('td', { hasText: /^test_status$/ }) });
  assert.equal(await testStatusRow.count(), 1);
  const cells = await testStatusRow.locator('td').allTextContents();
  assert.deepEqual(cells, ['api_token', 'action.update', 'test_status', '(none)', 'passed']);
  // Attach a file of evidence: listed, with its audit entry.
  await page.getByLabel('Evidence file').setInputFiles({
    name: 'records-of-processing.txt', mimeType: 'text/plain',
    buffer: Buffer.from('Records of processing activities, reviewed in the browser test.\n'),
  });
  await page.getByRole('button', { name: 'Upload evidence' }).click();
  await page.waitForURL(/notice=evidence/);
  assert.match(await page.getByRole('status').first().textContent(), /Evidence attached/);
  await page.getByRole('link', { name: 'records-of-processing.txt' }).waitFor();
  assert.equal(await audit.filter({ hasText: 'evidence.add' }).count(), 1);
  await accessible('action after save');
  await shot('action');
  await page.locator('#workflow').screenshot({ path: join(shots, 'action-workflow.png') });

  // The score rose, filtered and overall.
  await page.goto(`${base}/?category=Documentation`);
  const filteredAfter = await score();
  await page.goto(`${base}/`);
  const overallAfter = await score();
  console.log(`after: ${overallAfter}% overall, ${filteredAfter}% for Documentation`);
  assert.ok(filteredAfter > filtered, `filtered score ${filtered} -> ${filteredAfter}`);
  assert.ok(overallAfter > overall, `overall score ${overall} -> ${overallAfter}`);

  // Assessments, one assessment, alerts.
  await page.getByRole('link', { name: 'Assessments', exact: true }).click();
  await page.getByRole('heading', { level: 1, name: 'Assessments' }).waitFor();
  await accessible('assessments');
  await page.locator('tbody th a').first().click();
  await page.getByRole('heading', { level: 2, name: 'Controls' }).waitFor();
  await accessible('assessment');
  await shot('assessment');
  await page.getByRole('link', { name: 'Alerts', exact: true }).click();
  await page.getByRole('heading', { level: 1, name: 'Alerts' }).waitFor();
  await accessible('alerts');

  // Sign out: back to the sign-in page, and the pages are closed again.
  await page.getByRole('button', { name: 'Sign out' }).click();
  await page.waitForURL(/\/sign-in/);
  await page.goto(`${base}/assessments`);
  assert.match(new URL(page.url()).pathname, /^\/sign-in$/);
} finally {
  await browser.close();
}
if (problems.length > 0) {
  console.error(problems.join('\n'));
  process.exit(1);
}
console.log('dashboard browser test passed');
