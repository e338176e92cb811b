// The dashboards of bench_web (bench/bench_web.c), not part of the suite: N homes
// (home-0000 ..) log in with one password, then all open their dashboard at once as the page
// does (/, app.js, style.css, /api/me, /api/key, /api/home/ID), keep its live stream
// (/api/events) open and reload the home's view on "interval" or "settled" news (at most once a
// second, as app.js). Prints "OPEN ..." with the page load percentiles once every dashboard is
// open; on SIGTERM prints the reloads' percentiles and exits.
//   node bench/web_dashboards.mjs URL N PASSWORD
// (node:http, not fetch: node 20's fetch costs 10-70 ms a request here, which would be measured
// instead of the server)
import http from 'node:http';

const [url, nStr, password] = process.argv.slice(2);
const agent = new http.Agent({ keepAlive: true, maxSockets: Infinity });
// one request: resolves {status, headers, body} (body as text), or the response itself when
// stream is set
function request(method, path, headers, body, stream) {
  return new Promise((resolve, reject) => {
    const rq = http.request(url + path, { method, agent, headers }, (r) => {
      if (stream) { resolve(r); return; }
      const parts = [];
      r.on('data', (d) => parts.push(d));
      r.on('end', () => resolve({ status: r.statusCode, headers: r.headers, body: Buffer.concat(parts).toString() }));
      r.on('error', reject);
    });
    rq.on('error', reject);
    if (body) rq.write(body);
    rq.end();
  });
}
const n = Number(nStr);
const pad = (i) => String(i).padStart(4, '0');
const pct = (v, q) => {
  if (!v.length) return 'n/a';
  const s = [...v].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))].toFixed(0);
};
const stats = (v) => `p50 ${pct(v, 0.5)} ms, p99 ${pct(v, 0.99)} ms, max ${pct(v, 1)} ms (${v.length})`;

async function login(i) {
  for (let attempt = 0; ; attempt++) {
    try {
      const r = await request('POST', 'api/login', { 'Content-Type': 'application/json' },
        JSON.stringify({ user: 'home-' + pad(i), password }));
      if (r.status !== 200) throw new Error('login ' + r.status);
      return r.headers['set-cookie'][0].split(';')[0];
    } catch (e) {
      if (attempt >= 5) throw e;
      await new Promise((res) => setTimeout(res, 200 * (attempt + 1)));
    }
  }
}

const cookies = [];
const t0 = performance.now();
// logins first, 50 at a time (PBKDF2 on the server): not part of the page load
for (let i = 0; i < n; i += 50) {
  const batch = [];
  for (let j = i; j < Math.min(n, i + 50); j++) batch.push(login(j).then((c) => { cookies[j] = c; }));
  await Promise.all(batch);
}
console.log(`logged in ${n} homes in ${((performance.now() - t0) / 1000).toFixed(1)} s`);

const loads = [], reloads = [];
let bad = 0, events = 0, streams = 0, dropped = 0;
async function get(path, cookie) {
  const r = await request('GET', path, { cookie });
  if (r.status !== 200 && !(path === 'api/key' && r.status === 404)) bad++;
}

async function dashboard(i) {
  const cookie = cookies[i], home = 'home-' + pad(i);
  const a = performance.now();
  await get('', cookie);
  await Promise.all([get('app.js', cookie), get('style.css', cookie)]);
  await get('api/me', cookie);
  await get('api/key', cookie);
  await get('api/home/' + home, cookie);
  loads.push(performance.now() - a);
  // the live stream: reload the view on news, at most once a second
  // the stream has its own connection (not the keep-alive pool the page's requests share)
  const r = await new Promise((resolve, reject) => {
    http.get(url + 'api/events', { headers: { cookie } }, resolve).on('error', reject);
  });
  if (r.statusCode !== 200) { bad++; r.resume(); return; }
  streams++;
  let pending = false, buf = '';
  r.setEncoding('utf8');
  r.on('data', (chunk) => {
    buf += chunk;
    let cut;
    while ((cut = buf.indexOf('\n\n')) >= 0) {
      const ev = buf.slice(0, cut);
      buf = buf.slice(cut + 2);
      events++;
      if (/^event: (interval|settled)/m.test(ev) && !pending) {
        pending = true;
        setTimeout(async () => {
          const b = performance.now();
          await get('api/home/' + home, cookie);
          reloads.push(performance.now() - b);
          pending = false;
        }, 1000);
      }
    }
  });
  r.on('end', () => { dropped++; });
  r.on('error', () => { dropped++; });
}

const t1 = performance.now();
await Promise.all(Array.from({ length: n }, (_, i) => dashboard(i)));
console.log(`OPEN ${n} dashboards at once in ${((performance.now() - t1) / 1000).toFixed(1)} s: ` +
  `page load ${stats(loads)}; ${streams} live streams, ${bad} failed requests`);
process.on('SIGTERM', () => {
  console.log(`RELOADS on news while open: ${stats(reloads)}; ${events} events received, ` +
    `${dropped} streams ended, ${bad} failed requests`);
  process.exit(0);
});
setInterval(() => {}, 1 << 30);
