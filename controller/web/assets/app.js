// mgx dashboard: logs in, then shows the home's or the coordinator's day from the JSON API.
// Read only. Money arrives in micro-currency (uc) and energy in Wh, as integers; this file only
// formats them (no arithmetic on money). The chart library (uPlot) is optional: without it the
// tables carry everything.
'use strict';

const $ = (id) => document.getElementById(id);

function money(uc, places) {
  // integer micro-currency to a decimal string with `places` decimals (2 by default), cut toward
  // zero as text: no floating point on money
  const p = places || 2;
  const neg = uc < 0;
  const s = String(Math.abs(uc)).padStart(7, '0');
  const units = s.slice(0, s.length - 6), frac = s.slice(s.length - 6, s.length - 6 + p);
  return (neg ? '-' : '') + units + '.' + frac;
}
// the attestation tiers of docs/trust.md
const TIERS = ['unsigned', 'gateway-signed', 'certified'];

function utc(ms) { return new Date(ms).toISOString().replace('T', ' ').slice(0, 16); }
function age(s) {
  if (s < 120) return s + ' s';
  if (s < 7200) return Math.floor(s / 60) + ' min';
  if (s < 172800) return Math.floor(s / 3600) + ' h';
  return Math.floor(s / 86400) + ' d';
}
function row(tbody, cells, cls) {
  const tr = document.createElement('tr');
  if (cls) tr.className = cls;
  for (const c of cells) {
    const td = document.createElement('td');
    td.textContent = String(c);
    tr.appendChild(td);
  }
  tbody.appendChild(tr);
  return tr;
}
function show(view) {
  for (const v of ['login-view', 'home-view', 'coord-view']) $(v).hidden = v !== view;
  $('logout').hidden = view === 'login-view';
}
async function api(path, opts) {
  const r = await fetch(path, Object.assign({ credentials: 'same-origin' }, opts || {}));
  let body = null;
  try { body = await r.json(); } catch (e) { body = null; }
  return { status: r.status, body };
}
function dayParam() {
  const d = new URLSearchParams(location.search).get('day');
  return d ? '?day=' + encodeURIComponent(d) : '';
}

function chart(el, title, series, xs, ys) {
  el.textContent = '';
  if (typeof uPlot === 'undefined' || xs.length === 0) return;
  const opts = { title, width: Math.min(900, el.clientWidth || 900), height: 240,
    series: [{}].concat(series) };
  new uPlot(opts, [xs].concat(ys), el);
}

// ---- the proof check, in the browser: the position's leaf, its RFC 6962 inclusion path to the
// root of the checkpoint, and the checkpoint's Ed25519 signature (a C2SP signed note) by the
// community key (the "name+keyid+base64" verifier key, docs/ledger.md) ----
const b64 = (s) => Uint8Array.from(atob(s), (c) => c.charCodeAt(0));
const unhex = (s) => Uint8Array.from(s.match(/../g) || [], (h) => parseInt(h, 16));
const tohex = (b) => Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
function cat(...parts) {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let i = 0;
  for (const p of parts) { out.set(p, i); i += p.length; }
  return out;
}
const sha256 = async (b) => new Uint8Array(await crypto.subtle.digest('SHA-256', b));
const same = (a, b) => a.length === b.length && a.every((x, i) => x === b[i]);

async function verifyProof(p, vkey) {
  try {
    // name+keyid+base64: the base64 may itself hold '+'
    const i = vkey.indexOf('+'), j = vkey.indexOf('+', i + 1);
    if (i < 0 || j < 0) return { ok: false, why: 'not a verifier key' };
    const name = vkey.slice(0, i), keyId = vkey.slice(i + 1, j), keyB64 = vkey.slice(j + 1);
    const kb = b64(keyB64);
    if (kb.length !== 33 || kb[0] !== 1) return { ok: false, why: 'not an Ed25519 verifier key' };
    const cp = p.checkpoint || '';
    const cut = cp.indexOf('\n\n');
    if (cut < 0) return { ok: false, why: 'unsigned checkpoint' };
    const body = cp.slice(0, cut + 1);
    const [origin, sizeText, rootB64] = body.split('\n');
    if (origin !== name) return { ok: false, why: 'checkpoint of another log' };
    const key = await crypto.subtle.importKey('raw', kb.slice(1), { name: 'Ed25519' }, false, ['verify']);
    const prefix = '\u2014 ' + name + ' ';
    let signed = false;
    for (const line of cp.slice(cut + 2).split('\n')) {
      if (!line.startsWith(prefix)) continue;
      const blob = b64(line.slice(prefix.length));
      if (blob.length !== 68 || tohex(blob.slice(0, 4)) !== keyId) continue;
      if (await crypto.subtle.verify({ name: 'Ed25519' }, key, blob.slice(4),
        new TextEncoder().encode(body))) signed = true;
    }
    if (!signed) return { ok: false, why: 'checkpoint not signed by the community key' };
    const size = BigInt(sizeText);
    if (BigInt(p.tree_size) !== size) return { ok: false, why: 'proof for another log size' };
    const tx = unhex(p.tx), salt = p.salt ? b64(p.salt) : new Uint8Array(0);
    if (p.txid && tohex(await sha256(cat(salt, tx))) !== p.txid)
      return { ok: false, why: 'transaction id does not match' };
    let r = await sha256(cat(Uint8Array.of(0), salt, tx));
    let fn = BigInt(p.log_index), sn = size - 1n;
    if (fn > sn) return { ok: false, why: 'index outside the log' };
    for (const h of p.hashes) {
      const sib = b64(h);
      if (sn === 0n) return { ok: false, why: 'path too long' };
      if ((fn & 1n) === 1n || fn === sn) {
        r = await sha256(cat(Uint8Array.of(1), sib, r));
        while ((fn & 1n) === 0n && fn !== 0n) { fn >>= 1n; sn >>= 1n; }
      } else {
        r = await sha256(cat(Uint8Array.of(1), r, sib));
      }
      fn >>= 1n; sn >>= 1n;
    }
    if (sn !== 0n || !same(r, b64(rootB64))) return { ok: false, why: 'not in the signed log' };
    return { ok: true, why: 'in the log of ' + size + ' transactions signed by ' + name };
  } catch (e) {
    return { ok: false, why: String(e) };
  }
}
window.mgxVerifyProof = verifyProof;

// ---- the pinned key: the proof check never trusts a key the server sends with the proof. The
// community's verifier key is pinned in this browser (localStorage, per site): on the first
// login here, from GET /api/key (trust on first use: compare its key id with the one the
// coordinator published), or pasted by hand from the coordinator's publication. Every check
// then verifies against the pinned key; a server that sends another key is reported, not
// believed. ----
const PIN = 'mgx-ledger-vkey';
const keyIdOf = (vkey) => (vkey.split('+')[0] || '?') + ' key ' + (vkey.split('+')[1] || '?');
function pinned() { try { return localStorage.getItem(PIN); } catch (e) { return null; } }
function showPin(note) {
  const k = pinned();
  $('key-pinned').textContent = k ? keyIdOf(k) : 'none';
  $('key-pinned').dataset.vkey = k || '';
  $('key-status').textContent = note || '';
  $('key-status').className = note && note.startsWith('WARNING') ? 'error' : 'note';
}
async function pinOnFirstUse() {
  const r = await api('/api/key');
  const served = r.status === 200 ? r.body.vkey : null;
  if (!pinned() && served) {
    try { localStorage.setItem(PIN, served); } catch (e) { /* private mode: checks fail */ }
    showPin('pinned now, on first use: compare the key id with the one your coordinator published');
  } else if (served && served !== pinned()) {
    showPin('WARNING: the server now names another ledger key (' + keyIdOf(served) +
      '); checks use the pinned one');
  } else {
    showPin(pinned() ? 'proofs are checked against this key' : 'no key pinned yet');
  }
}

async function checkProof(home, interval, cell) {
  cell.textContent = 'checking...';
  const r = await api('/api/home/' + encodeURIComponent(home) + '/proof?interval=' + interval);
  if (r.status !== 200) { cell.textContent = 'no proof (' + r.status + ')'; return; }
  const pin = pinned();
  if (!pin) { cell.textContent = 'FAILED: no ledger key pinned in this browser'; return; }
  if (r.body.vkey !== pin) {
    cell.textContent = 'FAILED: the server sent ' + keyIdOf(r.body.vkey) + ', not the pinned ' + keyIdOf(pin);
    return;
  }
  const v = await verifyProof(r.body.proof, pin);
  cell.textContent = v.ok ? 'verified' : 'FAILED: ' + v.why;
  cell.title = v.why;
}

async function showHome(id) {
  const r = await api('/api/home/' + encodeURIComponent(id) + dayParam());
  if (r.status !== 200) { $('home-id').textContent = id + ' (error ' + r.status + ')'; return; }
  const d = r.body;
  show('home-view');
  $('home-id').textContent = d.home;
  $('home-day').textContent = d.day;
  if (d.reading) showReading(d.reading);
  showPin($('key-status').textContent);
  const b = d.bill;
  $('bill-net').textContent = money(b.net_uc);
  $('bill-net').dataset.uc = b.net_uc;
  $('bill-grid').textContent = money(b.grid_only_net_uc);
  $('bill-grid').dataset.uc = b.grid_only_net_uc;
  $('bill-saving').textContent = money(b.saving_uc);
  $('bill-saving').dataset.uc = b.saving_uc;
  $('bill-intervals').textContent = b.intervals;
  const mb = d.month_bill;
  $('month-name').textContent = mb.month;
  for (const [id, v] of [['month-net', mb.net_uc], ['month-grid', mb.grid_only_net_uc],
    ['month-saving', mb.saving_uc]]) {
    $(id).textContent = money(v);
    $(id).dataset.uc = v;
  }
  $('bill-held').textContent = b.held;
  const cr = d.credits;
  if (cr) {
    $('credits-month').textContent = cr.month;
    for (const k of ['minted', 'bought', 'sold', 'retired', 'kept'])
      $('credits-' + k).textContent = cr[k + '_wh'];
  }
  // a preference's last step covers whatever remains, whatever its energy (ex_post.h)
  const steps = (a) => a.map((x, i) => (i < a.length - 1 ? x.energy_wh + ' Wh'
    : a.length > 1 ? 'the rest' : 'any amount') + ' at ' + money(x.price_uc_per_kwh, 4)).join(', ');
  const pr = d.preference;
  $('preference').textContent = pr
    ? 'from ' + utc(pr.interval_id * d.interval_s * 1000) + ': sell ' + (pr.sell.length ? steps(pr.sell) : 'at the feed-in tariff') +
      '; buy ' + (pr.buy.length ? steps(pr.buy) : 'at the retail tariff')
    : 'none: you send orders (or take the grid\'s terms)';
  const ob = $('orders').tBodies[0];
  ob.textContent = '';
  for (const o of d.orders)
    row(ob, [utc(o.interval_id * d.interval_s * 1000), o.side, o.status,
      o.steps.map((s) => s.energy_wh + ' at ' + money(s.price_uc_per_kwh, 4)).join('; ') +
        (o.steps_total > o.steps.length ? ' ...' : ''), o.reason]);
  const tb = $('trades').tBodies[0];
  tb.textContent = '';
  for (const t of d.trades)
    row(tb, [utc(t.start_utc * 1000), t.side, t.energy_wh, money(t.price_uc_per_kwh, 4),
      money(t.amount_uc, 4), money(t.fee_uc, 4)]);
  const pb = $('positions').tBodies[0];
  pb.textContent = '';
  for (const p of d.positions) {
    const tr = row(pb, [utc(p.start_utc * 1000), p.status, p.import_wh, p.export_wh,
      money(p.net_uc, 4), money(p.grid_only_net_uc, 4), '', ''], p.status === 'good' ? '' : 'held');
    const cell = tr.cells[6];
    const b = document.createElement('button');
    b.textContent = 'check';
    b.className = 'check';
    b.addEventListener('click', () => checkProof(d.home, p.interval_id, cell));
    tr.cells[7].appendChild(b);
  }
  chart($('home-chart'), 'Import and export per interval (Wh)',
    [{ label: 'import Wh', stroke: '#b42318' }, { label: 'export Wh', stroke: '#1d7d4a' }],
    d.positions.map((p) => p.start_utc), [d.positions.map((p) => p.import_wh),
      d.positions.map((p) => p.export_wh)]);
}

async function showCommunity() {
  const r = await api('/api/community' + dayParam());
  if (r.status !== 200) return;
  const d = r.body;
  show('coord-view');
  $('community-name').textContent = d.community;
  $('community-day').textContent = d.day;
  if (d.outbox) for (const k of ['built', 'submitted', 'confirmed', 'failed'])
    $('ob-' + k).textContent = d.outbox[k];
  const hb = $('homes').tBodies[0];
  hb.textContent = '';
  for (const h of d.homes) {
    const tr = row(hb, [h.id, h.reading ? utc(h.reading.ts_ms) : 'never',
      h.reading ? age(h.reading.age_s) : '-', h.reading ? TIERS[h.reading.tier] || '-' : '-',
      h.positions, h.held, h.last_status, h.disputed,
      h.trust_permille < 0 ? '-' : (h.trust_permille / 10).toFixed(1) + ' %'],
      h.held ? 'held' : '');
    tr.dataset.home = h.id;
  }
  // alerts, decided by the server (silent meters, held positions, boundary disputes and
  // peer-flagged homes, failed chain transactions, settlement lag)
  const al = $('alerts');
  al.textContent = '';
  for (const a of d.alerts || []) {
    const li = document.createElement('li');
    li.textContent = a.text;
    li.dataset.kind = a.kind;
    al.appendChild(li);
  }
  if (!al.children.length) { const li = document.createElement('li'); li.textContent = 'none'; al.appendChild(li); }
  const st = d.settlement;
  if (st) {
    $('st-cleared').textContent = st.last_cleared_id >= 0 ? utc(st.last_cleared_id * d.interval_s * 1000) : 'none';
    $('st-settled').textContent = st.last_settled_id >= 0 ? utc(st.last_settled_id * d.interval_s * 1000) : 'none';
    $('st-settled').dataset.id = st.last_settled_id;
    $('st-lag').textContent = st.lag_s === null ? '-' : age(st.lag_s);
    $('st-lag').dataset.s = st.lag_s === null ? '' : st.lag_s;
    $('st-unsettled').textContent = st.unsettled;
  }
  const ib = $('intervals').tBodies[0];
  ib.textContent = '';
  for (const iv of d.intervals)
    row(ib, [utc(iv.start_utc * 1000), iv.orders, iv.has_price ? money(iv.price_uc_per_kwh, 4) : '-',
      iv.local_wh, iv.grid_bought_wh, iv.grid_sold_wh, iv.settled ? 'yes' : 'no']);
  chart($('community-chart'), 'Local and grid volume per interval (Wh)',
    [{ label: 'local Wh', stroke: '#1d7d4a' }, { label: 'grid bought Wh', stroke: '#b42318' },
      { label: 'grid sold Wh', stroke: '#1f5fbf' }],
    d.intervals.map((i) => i.start_utc), [d.intervals.map((i) => i.local_wh),
      d.intervals.map((i) => i.grid_bought_wh), d.intervals.map((i) => i.grid_sold_wh)]);
}

// Live updates: the server pushes Server-Sent Events (GET /api/events: a home's stream carries
// only its own reading, trades and positions; the coordinator's every interval and settlement).
// A reading is shown as it comes; other news reloads the view (a home's at most once a second,
// the coordinator's heavier view once per 10 s, or per minute on a mere change tick). Without a working stream the view is fetched
// again every REFRESH_MS while the page is visible; with one, every 10 minutes as a safety net.
// (?refresh=MS, at least 200, polls at that period whatever the stream does: tests, wall
// displays.)
const asked = Number(new URLSearchParams(location.search).get('refresh'));
const REFRESH_MS = Math.max(200, asked || 30000);
const LIVE_POLL_MS = 600000;
let refresh = null, live = null, liveOk = false;
// what the stream said, for the tests and the curious (bounded)
window.mgxLiveLog = [];
function stopRefresh() {
  if (refresh) clearTimeout(refresh);
  refresh = null;
  if (live) live.close();
  live = null;
  liveOk = false;
}

function showReading(r) {
  $('reading-time').textContent = utc(r.ts_ms);
  $('reading-power').textContent = r.power_w;
  $('reading-import').textContent = r.import_wh;
  $('reading-export').textContent = r.export_wh;
  $('reading-tier').textContent = TIERS[r.tier] || '-';
}

function startLive(role, redraw) {
  if (typeof EventSource === 'undefined') return;
  // the coordinator's view is heavy (every home's day): on news at most once per 10 s, on a
  // mere change tick (readings arriving all the time) at most once a minute
  let pending = null;
  const gap = role === 'coordinator' ? 10000 : 1000;
  const soon = (ms) => {
    if (pending) return;
    pending = setTimeout(async () => { pending = null; await redraw(); }, ms || gap);
  };
  live = new EventSource('/api/events');
  const log = (name, ev) => {
    window.mgxLiveLog.push(name + ' ' + ev.data);
    if (window.mgxLiveLog.length > 500) window.mgxLiveLog.shift();
  };
  live.addEventListener('hello', (ev) => { log('hello', ev); liveOk = true; $('live').hidden = false; });
  live.addEventListener('reading', (ev) => {
    log('reading', ev);
    if (role === 'home' && !dayParam()) showReading(JSON.parse(ev.data));
  });
  for (const name of ['interval', 'settled'])
    live.addEventListener(name, (ev) => { log(name, ev); soon(); });
  live.addEventListener('change', (ev) => { log('change', ev); soon(60000); });
  live.onerror = () => {
    // EventSource reconnects by itself; once it gives up (CLOSED) the page polls
    liveOk = false;
    $('live').hidden = true;
    if (live && live.readyState === EventSource.CLOSED) live = null;
  };
}

async function start() {
  stopRefresh();
  const me = await api('/api/me');
  if (me.status !== 200) { show('login-view'); $('who').textContent = ''; return; }
  $('who').textContent = me.body.user + ' (' + me.body.role + ')';
  const draw = me.body.role === 'coordinator' ? () => showCommunity() : () => showHome(me.body.user);
  await draw();
  document.body.dataset.ready = '1';
  if (me.body.role === 'home') await pinOnFirstUse();
  startLive(me.body.role, draw);
  const period = () => (asked || !liveOk ? REFRESH_MS : LIVE_POLL_MS);
  let last = Date.now();
  const again = async () => {
    if (!document.hidden && Date.now() - last >= period()) {
      last = Date.now();
      const still = await api('/api/me');
      if (still.status !== 200) { stopRefresh(); show('login-view'); $('who').textContent = ''; return; }
      await draw();
    }
    refresh = setTimeout(again, Math.min(REFRESH_MS, 5000));
  };
  refresh = setTimeout(again, Math.min(REFRESH_MS, 5000));
}

$('login-form').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  $('login-error').hidden = true;
  const r = await api('/api/login', { method: 'POST', headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ user: $('user').value, password: $('password').value }) });
  $('password').value = '';
  if (r.status !== 200) {
    $('login-error').textContent = 'Login refused.';
    $('login-error').hidden = false;
    document.body.dataset.ready = 'refused';
    return;
  }
  await start();
});
$('key-form').addEventListener('submit', (ev) => {
  ev.preventDefault();
  const k = $('key-input').value.trim();
  const parts = k.split('+');
  if (parts.length < 3 || !/^[0-9a-f]{8}$/.test(parts[1])) { showPin('not a verifier key (name+keyid+base64)'); return; }
  try { localStorage.setItem(PIN, k); } catch (e) { /* nothing to do */ }
  $('key-input').value = '';
  showPin('pinned by hand');
});
$('logout').addEventListener('click', async () => {
  stopRefresh();
  await api('/api/logout', { method: 'POST' });
  document.body.dataset.ready = '';
  show('login-view');
  $('who').textContent = '';
});
start();
