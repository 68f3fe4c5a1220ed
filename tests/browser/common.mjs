// What every browser script shares: headless Chromium from Debian, a page that collects
// script errors, a log-in (with the forced first password change), and failing with a reason.
import { chromium } from 'playwright-core';

export const fail = (msg) => {
  console.error('FAIL: ' + msg);
  process.exit(1);
};

export async function launch() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--no-first-run'],
  });
}

// A Japanese page, 15 s per step; `errors` collects page errors and console errors.
export async function newPage(browser, width, height) {
  const page = await browser.newPage({ viewport: { width, height }, locale: 'ja-JP' });
  page.setDefaultTimeout(15000);
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
  return { page, errors };
}

export async function login(page, base, user, password) {
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
}
