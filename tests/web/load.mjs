// A load figure for docs/dashboard.md (not part of the suite): N requests for homes' day
// documents against a running `mgx web`, C at a time, as the coordinator (who may read every
// home), and the latency percentiles.
//   node tests/web/load.mjs URL ADMIN ADMIN_PASSWORD N C HOME...
const [url, admin, pw, nStr, cStr, ...homes] = process.argv.slice(2);
const n = Number(nStr), c = Number(cStr);
const login = await fetch(url + 'api/login', { method: 'POST',
  headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ user: admin, password: pw }) });
if (login.status !== 200) { console.error('login refused'); process.exit(1); }
const cookie = login.headers.get('set-cookie').split(';')[0];
const times = [];
let next = 0, bytes = 0, bad = 0;
async function worker() {
  while (next < n) {
    const i = next++;
    const t0 = performance.now();
    const r = await fetch(url + 'api/home/' + homes[i % homes.length], { headers: { cookie } });
    bytes += (await r.arrayBuffer()).byteLength;
    if (r.status !== 200) bad++;
    times.push(performance.now() - t0);
  }
}
const t0 = performance.now();
await Promise.all(Array.from({ length: c }, worker));
const wall = (performance.now() - t0) / 1000;
times.sort((a, b) => a - b);
const q = (p) => times[Math.min(times.length - 1, Math.floor(p * times.length))].toFixed(1);
console.log(`${n} requests, ${c} at a time, ${wall.toFixed(1)} s (${(n / wall).toFixed(0)}/s), ` +
  `${(bytes / n / 1024).toFixed(1)} KB each, ${bad} not 200; latency ms p50 ${q(0.5)} p90 ${q(0.9)} ` +
  `p99 ${q(0.99)} max ${q(1)}`);
