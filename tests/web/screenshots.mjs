// Screenshots of the dashboard for docs/dashboard.md, from a running `mgx web`:
//   node tests/web/screenshots.mjs URL HOME HOME_PASSWORD ADMIN ADMIN_PASSWORD OUTDIR
// writes OUTDIR/dashboard-home.png and OUTDIR/dashboard-coordinator.png (Debian's chromium,
// headless, through puppeteer-core; npm ci in tests/web first).
import puppeteer from 'puppeteer-core';

const [url, home, homePw, admin, adminPw, out] = process.argv.slice(2);
const browser = await puppeteer.launch({
  executablePath: process.env.MGX_CHROMIUM || '/usr/bin/chromium',
  headless: true,
  args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'],
});
const page = await browser.newPage();
await page.setViewport({ width: 1100, height: 900 });
async function shot(user, pw, file) {
  await page.goto(url, { waitUntil: 'networkidle0' });
  await page.waitForSelector('#login-form', { visible: true });
  await page.type('#user', user);
  await page.type('#password', pw);
  await page.click('#login-button');
  await page.waitForFunction(() => document.body.dataset.ready === '1');
  await page.screenshot({ path: `${out}/${file}`, fullPage: false });
  await page.click('#logout');
  await page.waitForSelector('#login-form', { visible: true });
}
await shot(home, homePw, 'dashboard-home.png');
await shot(admin, adminPw, 'dashboard-coordinator.png');
await browser.close();
