// A reviewer's search session in headless Chromium: log in (with the forced password change),
// type a query and get results without pressing Enter, narrow by a facet, then move to a
// result with the keyboard and open it. Exits non-zero with the reason on any failure.
//
// Usage: node search.mjs BASE_URL USER PASSWORD QUERY
import { chromium } from 'playwright-core';

const [base, user, password, query] = process.argv.slice(2);
const fail = (msg) => {
  console.error('FAIL: ' + msg);
  process.exit(1);
};

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
    '--disable-component-update', '--disable-sync', '--no-first-run'],
});
try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 }, locale: 'ja-JP' });
  page.setDefaultTimeout(15000);
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });

  await page.goto(base + '/login');
  await page.fill('input[name=username]', user);
  await page.fill('input[name=password]', password);
  await Promise.all([page.waitForNavigation(), page.click('main button[type=submit]')]);
  if (page.url().includes('/account/password')) {
    const fresh = 'browser-test-passphrase-' + Date.now();
    await page.fill('input[name=current]', password);
    await page.fill('input[name=new]', fresh);
    await page.fill('input[name=confirm]', fresh);
    await Promise.all([page.waitForNavigation(), page.click('main button[type=submit]')]);
  }
  await page.goto(base + '/search');

  // Instant results: type, never press Enter.
  await page.focus('#q');
  await page.keyboard.type(query, { delay: 30 });
  await page.waitForSelector('#count');
  const count = await page.textContent('#count');
  if (!/^\d+ 件/.test(count.trim())) fail('result count reads ' + JSON.stringify(count));
  if (!page.url().includes('q=')) fail('the address does not follow the query: ' + page.url());
  const results = await page.$$('li.result');
  if (results.length === 0) fail('no results for ' + query);
  const highlighted = await page.$$('li.result .snippet b');
  if (highlighted.length === 0) fail('no highlighted match in the snippets');

  // A facet narrows the query.
  const facet = await page.$('aside.facets a');
  if (!facet) fail('no facets beside the results');
  await Promise.all([page.waitForNavigation(), facet.click()]);
  const narrowed = decodeURIComponent(page.url());
  if (!/(様式|市区町村|病名|状態|受付日):/.test(narrowed)) fail('facet did not add a field to the query: ' + narrowed);
  await page.waitForSelector('li.result');

  // Keyboard only: down to the first result, Enter opens it.
  await page.focus('#q');
  await page.keyboard.press('ArrowDown');
  const selected = await page.$$('li.result.selected');
  if (selected.length !== 1) fail('ArrowDown selected ' + selected.length + ' results');
  const href = await selected[0].getAttribute('data-href');
  await Promise.all([page.waitForNavigation(), page.keyboard.press('Enter')]);
  if (!page.url().endsWith(href)) fail('Enter opened ' + page.url() + ', expected ' + href);
  const body = await page.textContent('main');
  if (!body || body.length < 20) fail('the document page is empty');

  // A mistyped query gets a message, not an error page.
  await page.goto(base + '/search');
  await page.focus('#q');
  await page.keyboard.type('受付日:2024-13', { delay: 10 });
  await page.waitForSelector('#results .error');
  const msg = await page.textContent('#results .error');
  if (!msg.includes('日付')) fail('unhelpful message: ' + msg);

  if (errors.length) fail('browser errors: ' + errors.join(' | '));
  console.log(JSON.stringify({ ok: true, results: results.length, count: count.trim(), opened: href }));
} finally {
  await browser.close();
}
