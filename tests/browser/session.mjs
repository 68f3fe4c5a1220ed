// The session expiry warning on the review screen, in headless Chromium: with a one-minute
// idle timeout the banner shows at once; the input typed so far is kept in the tab's
// sessionStorage and comes back when the page is opened again; 延長 renews the session.
//
// Usage: node session.mjs BASE_URL USER PASSWORD RECORD_ID
import { fail, launch, login, newPage } from './common.mjs';

const [base, user, password, id] = process.argv.slice(2);
const browser = await launch();
try {
  const { page, errors } = await newPage(browser, 1400, 1000);
  await login(page, base, user, password);
  await page.goto(base + '/review/' + id);
  await page.waitForSelector('input.value');
  const typed = 'まだ保存していない入力';
  await page.fill('input.value', typed);
  await page.waitForSelector('#session-warning:not([hidden])', { timeout: 10000 });
  const text = await page.textContent('#session-warning');
  if (!text.includes('ログアウト')) fail('warning text: ' + text);
  const kept = await page.evaluate((p) => sessionStorage.getItem('hozon-draft:' + p), '/review/' + id);
  if (!kept || !kept.includes(typed)) fail('input not kept: ' + kept);
  const [ping] = await Promise.all([
    page.waitForResponse((r) => r.url().endsWith('/account/ping')),
    page.click('#session-extend'),
  ]);
  if (ping.status() !== 200) fail('延長 answered ' + ping.status());
  const left = (await ping.json()).left_s;
  if (!(left > 30)) fail('the renewed session has ' + left + ' s');
  await page.reload();
  await page.waitForSelector('input.value');
  const back = await page.inputValue('input.value');
  if (back !== typed) fail('input not put back: ' + back);
  if (errors.length) fail('script errors: ' + errors.join('; '));
  console.log(JSON.stringify({ ok: true, left_s: left }));
} finally {
  await browser.close();
}
