// A reviewer verifies one form with the keyboard only, in headless Chromium: open the queue,
// Enter on the start link, then per field Enter to accept or type the paper's value and Enter
// (a changed My Number is asked for twice), F2 marks and unmarks a field for a second look;
// Enter on the last field saves and opens the next draft. Exits non-zero with the reason on
// any failure.
//
// Usage: node review.mjs BASE_URL USER PASSWORD RECORD_ID WANT_JSON
import { fail, launch, login, newPage } from './common.mjs';

const [base, user, password, id, wantJson] = process.argv.slice(2);
const want = JSON.parse(wantJson);

const browser = await launch();
try {
  const { page, errors } = await newPage(browser, 1400, 1000);
  await login(page, base, user, password);

  // The queue, filtered to the My Number forms; the start link by keyboard.
  await page.goto(base + '/review?form=my_number_form');
  await page.focus('#start');
  await Promise.all([page.waitForNavigation(), page.keyboard.press('Enter')]);
  if (!page.url().includes('/review/' + id)) fail('the queue started at ' + page.url() + ', expected ' + id);
  await page.waitForSelector('input.value');

  const active = () => page.evaluate(() => {
    const el = document.activeElement;
    const inputs = [...document.querySelectorAll('input.value')];
    const confirm = document.querySelector('input.confirm');
    return {
      name: el?.closest('li')?.dataset.name || '',
      confirm: el?.classList.contains('confirm') || false,
      value: el?.value ?? '',
      selected: el ? el.selectionStart === 0 && el.selectionEnd === el.value.length : false,
      last: el === inputs[inputs.length - 1] && (!confirm || confirm.hidden),
      lastConfirm: el === confirm && inputs[inputs.length - 1] === document.querySelector('input[data-my-number]'),
    };
  });

  // F2 marks the first field for a second look and F2 again unmarks it.
  let a = await active();
  if (!a.name) fail('no field has the focus on opening');
  await page.keyboard.press('F2');
  if (!(await page.$(`li.look[data-name="${a.name}"]`))) fail('F2 did not mark ' + a.name);
  await page.keyboard.press('F2');
  if (await page.$(`li.look[data-name="${a.name}"]`)) fail('F2 again did not unmark ' + a.name);

  // F4 shows one field at a time (only the field in focus), F4 again the whole form.
  await page.keyboard.press('F4');
  const shown = await page.$$eval('li.field', (ls) => ls.filter((l) => l.offsetParent !== null).length);
  if (shown !== 1) fail('one field at a time shows ' + shown + ' fields');
  await page.keyboard.press('F4');

  let keys = 4;
  let typed = 0;
  const url = page.url();
  for (let step = 0; step < 40; step++) {
    a = await active();
    if (!a.selected && a.value) fail(`the value of ${a.name} is not selected on focus`);
    const target = a.confirm ? want.my_number : want[a.name];
    if (target === undefined) fail('unexpected field in focus: ' + JSON.stringify(a));
    if (a.value !== target) {
      await page.keyboard.type(target, { delay: 5 });
      keys += [...target].length;
      typed += 1;
    }
    keys += 1;
    // Typing a new My Number brings up its confirmation box: the field is no longer last.
    const now = await active();
    if (now.last || now.lastConfirm) {
      await Promise.all([page.waitForNavigation(), page.keyboard.press('Enter')]);
      break;
    }
    await page.keyboard.press('Enter');
    if (a.name === 'my_number' && !a.confirm && a.value !== target) {
      const c = await active();
      if (!c.confirm) fail('a changed My Number did not ask for it again');
    }
  }
  if (page.url() === url) fail('Enter on the last field did not save');
  if (page.url().includes('/review/' + id)) fail('saving did not move on: ' + page.url());
  const message = await page.$('#message');
  if (message) fail('the save was refused: ' + (await message.textContent()));

  // The saved draft shows as verified, with the correction in its history.
  await page.goto(base + '/review/' + id);
  const status = await page.textContent('h1');
  if (!status.includes('確認済')) fail('not verified: ' + status);
  const history = await page.textContent('#corrections');
  if (!history.includes('個人番号')) fail('the correction is not in the history: ' + history);
  if (errors.length) fail('browser errors: ' + errors.join(' | '));
  console.log(JSON.stringify({ ok: true, keys, typed }));
} finally {
  await browser.close();
}
