// The dashboard in a real browser (Debian's chromium, headless, driven by puppeteer-core):
// started by test_web_dashboard.c against a real `mgx web` on a database the real controller
// filled. Reads what to expect from $MGX_WEB_EXPECT (figures the C side took from the database
// with its own SQL) and checks what the pages show:
//  - a wrong password is refused and leaves no session;
//  - a home sees exactly its own figures (reading, bill, grid-only bill, trades, positions) and
//    no other home's name; the other home's data and the community view answer 403 and nothing
//    else, even asked from inside the logged-in page; the session cookie is HttpOnly and
//    SameSite=Strict and invisible to the page's scripts;
//  - live updates: with the page's event stream open, the C side writes a new reading of this
//    home and one of another home into the database; the new value appears on the page without
//    a reload, and the home's stream never carries the other home's name, meter or value;
//  - the ledger key is pinned in the browser on the first login (it equals the key
//    `mgx ledger keygen` wrote); a proof forged with another key, which verifies against the
//    key sent with it, fails on the page; pinning another key makes the real proof fail;
//  - the coordinator sees every home and every cleared interval of the day;
//  - the server allows live_max_clients streams and answers 503 beyond.
// Exit 0: all passed; 1: a check failed; 77: skipped (no puppeteer-core or no chromium).
import { readFileSync, existsSync, writeFileSync } from 'node:fs';
import { createHash, generateKeyPairSync, sign } from 'node:crypto';

let puppeteer;
try {
  puppeteer = (await import('puppeteer-core')).default;
} catch (e) {
  console.log('SKIP: puppeteer-core is not installed (npm ci in tests/web)');
  process.exit(77);
}
const chromium = process.env.MGX_CHROMIUM || '/usr/bin/chromium';
if (!existsSync(chromium)) {
  console.log(`SKIP: no chromium at ${chromium} (apt-get install chromium)`);
  process.exit(77);
}
const url = process.env.MGX_WEB_URL;
const want = JSON.parse(readFileSync(process.env.MGX_WEB_EXPECT, 'utf8'));

let failures = 0, checks = 0;
function check(ok, what) {
  checks++;
  if (!ok) { failures++; console.log('FAIL: ' + what); }
}
function eq(got, exp, what) { check(got === exp, `${what}: got ${JSON.stringify(got)}, want ${JSON.stringify(exp)}`); }

const browser = await puppeteer.launch({
  executablePath: chromium,
  headless: true,
  // root in CI: chromium's sandbox needs user namespaces it may not have there
  args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--no-first-run'],
});
const errors = [];
try {
  const page = await browser.newPage();
  page.on('pageerror', (e) => errors.push(String(e)));
  page.setDefaultTimeout(30000);

  async function login(user, password) {
    await page.goto(url, { waitUntil: 'networkidle0' });
    await page.waitForSelector('#login-form', { visible: true });
    await page.type('#user', user);
    await page.type('#password', password);
    await page.click('#login-button');
    await page.waitForFunction(() => document.body.dataset.ready === '1' ||
      document.body.dataset.ready === 'refused');
    return page.evaluate(() => document.body.dataset.ready);
  }
  const text = (sel) => page.$eval(sel, (e) => e.textContent);
  const data = (sel) => page.$eval(sel, (e) => Number(e.dataset.uc));
  const fetchIn = (path) => page.evaluate(async (p) => {
    const r = await fetch(p);
    return { status: r.status, body: await r.text() };
  }, path);

  // 1. a wrong password
  eq(await login(want.home, want.home_password + 'x'), 'refused', 'wrong password');
  eq(await page.$eval('#login-error', (e) => e.hidden), false, 'refusal shown');
  eq((await fetchIn('/api/me')).status, 401, 'no session after a refused login');

  // 2. the home
  eq(await login(want.home, want.home_password), '1', 'home login');
  eq(await text('#home-id'), want.home, 'home shown');
  eq(await text('#home-day'), want.day, 'day');
  eq(Number(await text('#reading-import')), want.reading_import_wh, 'reading import counter');
  eq(Number(await text('#reading-export')), want.reading_export_wh, 'reading export counter');
  eq(await text('#reading-tier'), 'unsigned', 'reading attestation (the test signs nothing)');
  eq(await data('#bill-net'), want.net_uc, 'bill (net, uc)');
  eq(await text('#bill-net'), want.net_text, 'bill as printed');
  eq(await data('#month-net'), want.month_net_uc, 'month bill (net, uc)');
  eq(await data('#month-grid'), want.month_grid_only_net_uc, 'month grid-only bill (net, uc)');
  eq(await data('#bill-grid'), want.grid_only_net_uc, 'grid-only bill (net, uc)');
  eq(await data('#bill-saving'), want.net_uc - want.grid_only_net_uc, 'saving (uc)');
  eq(Number(await text('#bill-intervals')), want.positions, 'settled intervals');
  eq(Number(await text('#bill-held')), want.held, 'held intervals');
  eq(await page.$$eval('#trades tbody tr', (r) => r.length), want.trades, 'trade rows');
  eq(await page.$$eval('#positions tbody tr', (r) => r.length), want.positions, 'position rows');
  eq(await page.$$eval('#orders tbody tr', (r) => r.length), want.orders, 'order rows');
  const energy = await page.$$eval('#trades tbody tr', (rows) =>
    rows.reduce((s, r) => s + Number(r.cells[2].textContent), 0));
  eq(energy, want.trade_energy_wh, 'traded energy (Wh, sum of the rows)');
  for (const k of ['minted', 'bought', 'sold', 'retired', 'kept'])
    eq(Number(await text('#credits-' + k)), want.credits[k + '_wh'], `credits ${k} (Wh)`);
  check((await text('#preference')).includes(want.pref_text), 'standing preference shown: ' + await text('#preference'));
  const body = await page.evaluate(() => document.body.innerText);
  for (const other of want.others)
    check(!body.includes(other), `the home's page names ${other}`);
  // the proof check in the browser: a real position verifies; tampered proofs fail
  await page.click('#positions tbody tr:last-child button.check');
  await page.waitForFunction(() => {
    const c = document.querySelector('#positions tbody tr:last-child').cells[6].textContent;
    return c === 'verified' || c.startsWith('FAILED') || c.startsWith('no proof');
  });
  eq(await page.$eval('#positions tbody tr:last-child', (r) => r.cells[6].textContent), 'verified',
    'proof of the last position checked in the browser');
  const tamper = await page.evaluate(async (iv) => {
    const home = document.getElementById('home-id').textContent;
    const r = await fetch('/api/home/' + home + '/proof?interval=' + iv);
    const d = await r.json();
    const flip = (s, i) => s.slice(0, i) + (s[i] === 'A' || s[i] === '0' ? 'B' : 'A') + s.slice(i + 1);
    const cases = {
      as_is: d.proof,
      tx: Object.assign({}, d.proof, { tx: flip(d.proof.tx, d.proof.tx.length - 1) }),
      salt: Object.assign({}, d.proof, { salt: flip(d.proof.salt, 3) }),
      path: Object.assign({}, d.proof, { hashes: [flip(d.proof.hashes[0], 5)].concat(d.proof.hashes.slice(1)) }),
      index: Object.assign({}, d.proof, { log_index: d.proof.log_index ^ 1 }),
      root: Object.assign({}, d.proof, { checkpoint: d.proof.checkpoint.replace(/\n([A-Za-z0-9+/]{10})/, (m, g) => '\n' + flip(g, 2)) }),
      signature: Object.assign({}, d.proof, { checkpoint: d.proof.checkpoint.replace(/ ([A-Za-z0-9+/]{20})/, (m, g) => ' ' + flip(g, 12)) }),
    };
    const out = {};
    for (const [k, p] of Object.entries(cases)) out[k] = (await window.mgxVerifyProof(p, d.vkey)).ok;
    const cut = d.vkey.indexOf('+', d.vkey.indexOf('+') + 1);
    const other = d.vkey.slice(0, cut) + '+AQ' + 'A'.repeat(41) + '=';
    out.other_key = (await window.mgxVerifyProof(d.proof, other)).ok;
    return out;
  }, want.last_position_interval);
  eq(tamper.as_is, true, 'the untouched proof verifies');
  for (const k of ['tx', 'salt', 'path', 'index', 'root', 'signature', 'other_key'])
    eq(tamper[k], false, `a proof with its ${k} changed fails`);

  // the pinned key: pinned at this first login, equal to the key the community generated
  eq(await page.evaluate(() => localStorage.getItem('mgx-ledger-vkey')), want.vkey, 'ledger key pinned on first use');
  check((await text('#key-pinned')).includes(want.vkey.split('+')[1]), 'pinned key id shown');
  // a server that lies: a one-leaf log signed by another key, sent with that key
  const sha = (b) => createHash('sha256').update(b).digest();
  const name = want.vkey.split('+')[0];
  const { publicKey, privateKey } = generateKeyPairSync('ed25519');
  const pub = publicKey.export({ format: 'der', type: 'spki' }).subarray(-32);
  const keyId = sha(Buffer.concat([Buffer.from(name + '\n'), Buffer.from([1]), pub])).subarray(0, 4);
  const evilKey = name + '+' + keyId.toString('hex') + '+' + Buffer.concat([Buffer.from([1]), pub]).toString('base64');
  const tx = Buffer.from('02'.repeat(40), 'hex'), salt = Buffer.alloc(16, 7);
  const root = sha(Buffer.concat([Buffer.from([0]), salt, tx]));
  const cpBody = name + '\n1\n' + root.toString('base64') + '\n';
  const sig = sign(null, Buffer.from(cpBody), privateKey);
  const forged = { tx: tx.toString('hex'), salt: salt.toString('base64'), log_index: 0, tree_size: 1,
    hashes: [], checkpoint: cpBody + '\n\u2014 ' + name + ' ' + Buffer.concat([keyId, sig]).toString('base64') + '\n' };
  eq(await page.evaluate(async (p, k) => (await window.mgxVerifyProof(p, k)).ok, forged, evilKey), true,
    'the forged proof verifies against the key sent with it (why the key is pinned)');
  const lie = async (vkey) => {
    const onReq = (r) => {
      if (r.url().includes('/proof?')) r.respond({ status: 200, contentType: 'application/json',
        body: JSON.stringify({ interval_id: want.last_position_interval, proof: forged, vkey }) });
      else r.continue();
    };
    await page.setRequestInterception(true);
    page.on('request', onReq);
    await page.click('#positions tbody tr:last-child button.check');
    await page.waitForFunction(() => {
      const c = document.querySelector('#positions tbody tr:last-child').cells[6].textContent;
      return c === 'verified' || c.startsWith('FAILED');
    });
    page.off('request', onReq);
    await page.setRequestInterception(false);
    return page.$eval('#positions tbody tr:last-child', (r) => r.cells[6].textContent);
  };
  const withEvil = await lie(evilKey);
  check(withEvil.startsWith('FAILED') && withEvil.includes('not the pinned'), 'a forged proof with its own key fails on the page: ' + withEvil);
  const withReal = await lie(want.vkey);
  check(withReal.startsWith('FAILED'), 'a forged proof sent with the real key fails: ' + withReal);
  // pinning another key by hand: the real proof no longer verifies; the right key again: it does
  const pinBy = async (k) => {
    await page.$eval('#key-input', (e, v) => { e.value = v; }, k);
    await page.click('#key-form button');
  };
  const checkLast = async () => {
    await page.$eval('#positions tbody tr:last-child', (r) => { r.cells[6].textContent = ''; });
    await page.click('#positions tbody tr:last-child button.check');
    await page.waitForFunction(() => {
      const c = document.querySelector('#positions tbody tr:last-child').cells[6].textContent;
      return c === 'verified' || c.startsWith('FAILED') || c.startsWith('no proof');
    });
    return page.$eval('#positions tbody tr:last-child', (r) => r.cells[6].textContent);
  };
  await pinBy(evilKey);
  const underEvilPin = await checkLast();
  check(underEvilPin.startsWith('FAILED'), 'the real proof under another pinned key fails: ' + underEvilPin);
  await pinBy(want.vkey);
  eq(await checkLast(), 'verified', 'the real proof under the right pinned key');

  // the other home's data, asked from inside the logged-in page
  const o = await fetchIn('/api/home/' + want.others[0]);
  eq(o.status, 403, 'another home: status');
  eq(o.body, '{"error":"forbidden"}', 'another home: body');
  eq((await fetchIn('/api/community')).status, 403, 'community view for a home');
  eq((await fetchIn('/api/home/no-such-home')).status, 403, 'an unknown home for a home');
  const cookies = await page.cookies();
  const sc = cookies.find((c) => c.name === 'mgx_session');
  check(sc && sc.httpOnly && sc.sameSite === 'Strict', 'session cookie HttpOnly, SameSite=Strict');
  eq(await page.evaluate(() => document.cookie.includes('mgx_session')), false, 'cookie hidden from scripts');
  if (want.charts) eq(await page.$$eval('#home-chart canvas', (c) => c.length) > 0, true, 'home chart drawn');

  // live: the stream is open (the page says so), the C side adds readings, the page shows the
  // new one without a reload
  await page.waitForFunction(() => !document.getElementById('live').hidden, { timeout: 30000 });
  await page.evaluate(() => { window.mgxNotReloaded = true; });
  writeFileSync(want.live_mark, 'ready\n');
  const shown = await page.waitForFunction((v) =>
    document.getElementById('reading-import').textContent === String(v), { timeout: 60000 },
  want.live_import_wh).then(() => true, () => false);
  check(shown, `the new reading (${want.live_import_wh} Wh) shown live`);
  eq(await page.evaluate(() => window.mgxNotReloaded === true), true, 'no reload for it');
  eq(Number(await text('#reading-power')), 321, 'its power shown live');
  // give the other home's reading time to pass through the server's poll (200 ms here)
  await new Promise((r) => setTimeout(r, 1500));
  const liveLog = await page.evaluate(() => window.mgxLiveLog.join('\n'));
  check(liveLog.includes('reading ') && liveLog.includes(String(want.live_import_wh)),
    'the reading came by the stream: ' + liveLog.slice(0, 300));
  for (const other of want.others)
    check(!liveLog.includes(other), `the home's stream names ${other}`);
  check(!liveLog.includes(String(want.other_import_wh)) && !/m-home-[02-9]/.test(liveLog),
    "the home's stream carries no other home's reading");

  // the page fetches its view again by itself (every 30 s; ?refresh=300 here)
  await page.goto(url + '?refresh=300', { waitUntil: 'domcontentloaded' });
  await page.waitForFunction(() => document.body.dataset.ready === '1');
  let fetched = 0;
  const onReq = (r) => { if (r.url().includes('/api/home/')) fetched++; };
  page.on('request', onReq);
  await new Promise((r) => setTimeout(r, 2000));
  page.off('request', onReq);
  check(fetched >= 2, `the home's view refreshed by itself (${fetched} fetches in 2 s)`);
  eq(await data('#bill-net'), want.net_uc, 'bill after a refresh');

  // 3. log out, then the coordinator
  await page.click('#logout');
  await page.waitForSelector('#login-form', { visible: true });
  eq((await fetchIn('/api/me')).status, 401, 'no session after logout');
  eq(await login(want.admin, want.admin_password), '1', 'coordinator login');
  const homes = await page.$$eval('#homes tbody tr', (rows) => rows.map((r) => r.dataset.home));
  eq(JSON.stringify(homes), JSON.stringify(want.homes), 'every home listed');
  const settled = await page.$$eval('#homes tbody tr', (rows) => rows.map((r) => Number(r.cells[4].textContent)));
  eq(JSON.stringify(settled), JSON.stringify(want.home_positions), 'settled positions per home');
  eq(await page.$$eval('#intervals tbody tr', (r) => r.length), want.intervals, 'cleared intervals');
  // the run's readings carry simulated 2024 times: every meter is silent by the wall clock
  const alerts = await text('#alerts');
  check(alerts.includes('meter silent') && want.homes.every((h) => alerts.includes(h)),
    'every meter alerted as silent: ' + alerts);
  check(alerts.includes('boundary balance failed'), 'the dispute alerted: ' + alerts);
  check(alerts.includes(`Solana: ${want.outbox_failed} transaction(s) failed`), 'the failed chain transaction alerted');
  check(alerts.includes('settlement lags'), 'the settlement lag alerted (simulated 2024 times)');
  eq(Number(await page.$eval('#st-settled', (e) => e.dataset.id)), want.last_settled, 'last settled interval');
  eq(Number(await text('#st-unsettled')), want.unsettled, 'cleared, not settled');
  const lagShown = Number(await page.$eval('#st-lag', (e) => e.dataset.s));
  const wallLag = Math.floor(Date.now() / 1000) - want.last_settled_end;
  check(lagShown <= wallLag && lagShown >= wallLag - 120, `settlement lag ${lagShown} s vs ${wallLag} s by the clock`);
  eq((await fetchIn('/api/home/' + want.others[0])).status, 200, 'the coordinator reads a home');
  if (want.charts) eq(await page.$$eval('#community-chart canvas', (c) => c.length) > 0, true, 'community chart drawn');
  // the coordinator's stream carries the community's news
  await page.waitForFunction(() => window.mgxLiveLog.some((l) => l.startsWith('hello ')), { timeout: 30000 });
  check(await page.evaluate(() => window.mgxLiveLog.some((l) => l.includes('"coordinator"'))),
    'coordinator stream opened');
  // bounded streams: open more than live_max from here with the coordinator's session; the
  // ones beyond the bound get 503 (the page itself holds one or more)
  const session = (await page.cookies()).find((c) => c.name === 'mgx_session');
  const aborts = [], statuses = [];
  for (let i = 0; i < want.live_max + 1; i++) {
    const ac = new AbortController();
    aborts.push(ac);
    const r = await fetch(url + 'api/events', { headers: { cookie: 'mgx_session=' + session.value }, signal: ac.signal });
    statuses.push(r.status);
    if (r.status !== 200) await r.text();
  }
  for (const ac of aborts) ac.abort();
  check(statuses.includes(503) && statuses.filter((x) => x === 200).length <= want.live_max,
    'streams beyond live_max_clients refused with 503: ' + statuses.join(','));
  eq(errors.length, 0, 'page errors ' + errors.join('; '));
} catch (e) {
  failures++;
  console.log('FAIL: ' + (e && e.stack ? e.stack : e));
} finally {
  await browser.close();
}
console.log(`dashboard browser test: ${checks - failures} passed, ${failures} failed`);
process.exit(failures ? 1 : 0);
