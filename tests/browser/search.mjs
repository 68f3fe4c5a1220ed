// A reviewer's search session in headless Chromium: log in (with the forced password change),
// type a query and get results without pressing Enter, narrow by a facet, then move to a
// result with the keyboard and open it. Exits non-zero with the reason on any failure.
//
// Usage: node search.mjs BASE_URL USER PASSWORD QUERY
import { fail, launch, login, newPage } from './common.mjs';

const [base, user, password, query] = process.argv.slice(2);

const browser = await launch();
try {
  const { page, errors } = await newPage(browser, 1280, 900);
  await login(page, base, user, password);
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
