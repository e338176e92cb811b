// Executes the transactions mgx builds in C (settlement/src/solana*.c, printed by
// solana_txgen) in a real Solana runtime, offline: LiteSVM with the SPL Token, Associated
// Token Account and Memo programs. Run by ctest (test_solana_litesvm); exits 77 (skipped)
// when `npm ci` has not been run in tests/solana.
import { existsSync } from "node:fs";
import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";

if (!existsSync(new URL("./node_modules/litesvm/package.json", import.meta.url))) {
  console.log("SKIP: tests/solana/node_modules is missing; run `npm ci` in tests/solana (.ci/setup does)");
  process.exit(77);
}

const { test } = await import("node:test");
const assert = (await import("node:assert/strict")).default;
const { LiteSVM, FailedTransactionMetadata } = await import("litesvm");
const { getAddressDecoder, isOffCurveAddress } = await import("@solana/kit");
const { TOKEN_PROGRAM_ADDRESS, findAssociatedTokenPda } = await import("@solana-program/token");
const { makeCommunity, txgen, sendRaw, tokenAccount, TXGEN } = await import("./community.mjs");

const ALREADY_PROCESSED = 6, BLOCKHASH_NOT_FOUND = 7, SIGNATURE_FAILURE = 11;

// A small deterministic generator so a failing run can be repeated with MGX_SEED.
const SEED = Number(process.env.MGX_SEED ?? Math.floor(Math.random() * 2 ** 31));
console.log(`# MGX_SEED=${SEED}`);
let state = SEED;
const rnd = (n) => {
  state = (Math.imul(state, 1103515245) + 12345) >>> 0;
  return (state >>> 8) % n;
};

const randomAddress = () => getAddressDecoder().decode(randomBytes(32));

test("C-derived ATAs and curve checks agree with @solana/kit", async () => {
  const pairs = [];
  for (let i = 0; i < 300; i++) pairs.push([randomAddress(), randomAddress()]);
  const out = execFileSync(TXGEN, ["ata"], { input: pairs.map((p) => p.join(" ")).join("\n") + "\n", encoding: "utf8" })
    .trim().split("\n");
  const atas = [];
  for (let i = 0; i < pairs.length; i++) {
    const [want] = await findAssociatedTokenPda({ owner: pairs[i][0], tokenProgram: TOKEN_PROGRAM_ADDRESS, mint: pairs[i][1] });
    assert.equal(out[i], want, `ATA of owner ${pairs[i][0]} mint ${pairs[i][1]}`);
    atas.push(want);
  }
  // Random 32-byte strings are on the curve about half the time; the ATAs never are.
  const keys = [...atas];
  for (let i = 0; i < 1000; i++) keys.push(randomAddress());
  const flags = execFileSync(TXGEN, ["curve"], { input: keys.join("\n") + "\n", encoding: "utf8" }).trim().split("\n");
  let on = 0;
  keys.forEach((k, i) => {
    assert.equal(flags[i], isOffCurveAddress(k) ? "0" : "1", `curve test of ${k}`);
    on += flags[i] === "1";
  });
  assert.ok(on > 300 && on < 700, `about half of random strings decode as points (got ${on} of 1300)`);
});

// Homes 0..4 sell energy, 5..9 buy it; every home approved the settlement key.
async function community(svm) {
  const homes = [];
  for (let i = 0; i < 10; i++) homes.push(i < 5 ? { energy: 50_000n, payment: 0n } : { energy: 0n, payment: 100_000_000n });
  const c = await makeCommunity(svm, homes, 6);
  const allow = homes.map((h) => [20_000, 40_000_000]);
  const ap = txgen("approve", c, { approve: allow });
  for (const t of ap.txs) {
    const r = sendRaw(svm, t.tx);
    assert.ok(!(r instanceof FailedTransactionMetadata), `approve of home ${t.home}: ${r}`);
  }
  return { c, allow };
}

function balances(svm, c) {
  return c.homes.map((h) => ({ e: tokenAccount(svm, h.energyAta), p: tokenAccount(svm, h.paymentAta) }));
}

test("an interval settles: balances and allowances move exactly as the transfers say", async () => {
  const svm = new LiteSVM();
  const { c, allow } = await community(svm);
  // Approvals landed: delegate = settlement key, delegated amount = allowance.
  let before = balances(svm, c);
  before.forEach((b, i) => {
    assert.equal(b.e.delegate, c.authority);
    assert.equal(b.e.delegatedAmount, BigInt(allow[i][0]));
    assert.equal(b.p.delegate, c.authority);
    assert.equal(b.p.delegatedAmount, BigInt(allow[i][1]));
  });
  // 40 trades, two legs each; trade 3's payment rounds down to 0 and is left out.
  const transfers = [];
  for (let g = 0; g < 40; g++) {
    const seller = rnd(5), buyer = 5 + rnd(5);
    const wh = 1 + rnd(400);
    const uc = g === 3 ? 0 : 1 + rnd(200_000);
    transfers.push({ from: seller, to: buyer, asset: "energy", amount: wh, group: g });
    transfers.push({ from: buyer, to: seller, asset: "payment", amount: uc, group: g });
  }
  const root = randomBytes(32).toString("hex");
  const out = txgen("settle", c, { transfers, interval: 7, root });
  // The C side derived the same token accounts as kit.
  out.homes.forEach((h, i) => {
    assert.equal(h.owner, c.homes[i].address);
    assert.equal(h.energy_account, c.homes[i].energyAta);
    assert.equal(h.payment_account, c.homes[i].paymentAta);
  });
  assert.ok(out.txs.length > 1, "40 trades need several transactions");
  console.log(`# 40 trades (79 transfers) in ${out.txs.length} transactions`);
  const settled = new Set();
  for (const t of out.txs) {
    const r = sendRaw(svm, t.tx);
    assert.ok(!(r instanceof FailedTransactionMetadata), `part ${t.part}: ${r}`);
    const memo = `mgx1 interval=7 part=${t.part}/${out.txs.length} root=${root}`;
    assert.ok(r.logs().some((l) => l.includes(memo)), `memo of part ${t.part} in the logs`);
    t.transfers.forEach((i) => settled.add(i));
  }
  assert.equal(settled.size, transfers.length - 1);
  assert.ok(!settled.has(7), "the zero payment leg of trade 3 is not sent");
  // Expected balances and allowances, worked out from the transfers.
  const after = balances(svm, c);
  const want = before.map((b) => ({ e: b.e.amount, p: b.p.amount, de: b.e.delegatedAmount, dp: b.p.delegatedAmount }));
  for (const t of transfers) {
    const k = t.asset === "energy" ? "e" : "p", d = t.asset === "energy" ? "de" : "dp";
    want[t.from][k] -= BigInt(t.amount);
    want[t.from][d] -= BigInt(t.amount);
    want[t.to][k] += BigInt(t.amount);
  }
  after.forEach((a, i) => {
    assert.equal(a.e.amount, want[i].e, `home ${i} energy`);
    assert.equal(a.p.amount, want[i].p, `home ${i} payment`);
    assert.equal(a.e.delegatedAmount, want[i].de, `home ${i} energy allowance`);
    assert.equal(a.p.delegatedAmount, want[i].dp, `home ${i} payment allowance`);
  });
  const sum = (k) => after.reduce((s, a) => s + a[k].amount, 0n);
  assert.equal(sum("e"), 5n * 50_000n, "energy is conserved");
  assert.equal(sum("p"), 5n * 100_000_000n, "payment is conserved");
});

test("replayed, tampered, over-allowance and expired transactions are rejected", async () => {
  const svm = new LiteSVM();
  const { c } = await community(svm);
  const trade = (wh, uc) => [
    { from: 0, to: 5, asset: "energy", amount: wh, group: 0 },
    { from: 5, to: 0, asset: "payment", amount: uc, group: 0 },
  ];
  const first = txgen("settle", c, { transfers: trade(1000, 250_000), interval: 1 }).txs[0];
  assert.ok(!(sendRaw(svm, first.tx) instanceof FailedTransactionMetadata));
  const afterFirst = balances(svm, c);

  // The same bytes again: the runtime refuses a signature it has already processed.
  const replay = sendRaw(svm, first.tx);
  assert.ok(replay instanceof FailedTransactionMetadata);
  assert.equal(replay.err(), ALREADY_PROCESSED);

  // One flipped byte in the memo text (inside the signed message), then in the signature.
  const bytes = Buffer.from(first.tx, "base64");
  const at = bytes.indexOf(Buffer.from("interval=1"));
  assert.ok(at > 0);
  for (const pos of [at, 1 + 10]) {
    const bad = Buffer.from(bytes);
    bad[pos] ^= 0x01;
    const r = sendRaw(svm, bad.toString("base64"));
    assert.ok(r instanceof FailedTransactionMetadata, `flip at ${pos}`);
    assert.equal(r.err(), SIGNATURE_FAILURE);
  }

  // Home 0 has 50,000 Wh but only 20,000 - 1,000 allowed: 19,001 Wh fails with the token
  // program's InsufficientFunds (custom 0x1) and the payment leg does not move either.
  const over = txgen("settle", c, { transfers: trade(19_001, 1), interval: 2 }).txs[0];
  const r = sendRaw(svm, over.tx);
  assert.ok(r instanceof FailedTransactionMetadata);
  const ie = r.err();
  assert.equal(ie.index, 1, "the energy leg (instruction 1, after the memo) fails");
  assert.equal(ie.err().code, 1);
  assert.deepEqual(balances(svm, c), afterFirst, "nothing moved");
  // Exactly the allowance left is fine.
  const exact = txgen("settle", c, { transfers: trade(19_000, 1), interval: 3 }).txs[0];
  assert.ok(!(sendRaw(svm, exact.tx) instanceof FailedTransactionMetadata));
  const drained = tokenAccount(svm, c.homes[0].energyAta);
  assert.equal(drained.delegatedAmount, 0n);
  assert.equal(drained.delegate, null, "an exhausted allowance clears the delegate");

  // Built against a blockhash the runtime no longer knows.
  const stale = txgen("settle", c, { transfers: trade(1, 1), interval: 4 });
  svm.expireBlockhash();
  const rs = sendRaw(svm, stale.txs[0].tx);
  assert.ok(rs instanceof FailedTransactionMetadata);
  assert.equal(rs.err(), BLOCKHASH_NOT_FOUND);
});

// Energy credits (issue 13, docs/credits.md): the settlement key is the energy mint's authority
// and every home's approved delegate. Each interval's credits are computed in C by the ledger's
// rule (stl_credits_compute) and executed as one transaction: MintToChecked, TransferChecked,
// BurnChecked. After every interval each home's token balance equals the sum of its records'
// kept credits, and the mint's supply equals minted - retired.
test("energy credits: minted, moved and burned on chain exactly as the ledger's records say", async () => {
  const { getMintDecoder } = await import("@solana-program/token");
  const svm = new LiteSVM();
  const N = 6;
  const homes = [];
  for (let i = 0; i < N; i++) homes.push({ energy: 0n, payment: 0n });
  const c = await makeCommunity(svm, homes, 6, { creditMint: true });
  const ap = txgen("approve", c, { approve: homes.map(() => [1_000_000_000, 0]) });
  for (const t of ap.txs) assert.ok(!(sendRaw(svm, t.tx) instanceof FailedTransactionMetadata));
  const held = new Array(N).fill(0n);
  let minted = 0n, retired = 0n, last = null;
  const STATUS = [0, 0, 0, 1, 2, 3, 4]; // good x3, flagged, missing, estimated, held
  for (let iv = 0; iv < 30; iv++) {
    const positions = [];
    for (let h = 0; h < N; h++) {
      const status = STATUS[rnd(STATUS.length)];
      positions.push({ home: h, status, tier: rnd(3), import_wh: status === 2 ? 0 : rnd(1500),
                       export_wh: status === 2 ? 0 : (rnd(3) ? rnd(2000) : 0) });
    }
    const left = positions.map((p) => p.export_wh), trades = [];
    for (let k = rnd(5); k > 0; k--) {
      const s = rnd(N);
      let b = rnd(N);
      if (b === s) b = (b + 1) % N;
      const ok = positions[s].status === 0 && positions[b].status === 0;
      const d = ok ? Math.min(left[s], 1 + rnd(800)) : 0;
      left[s] -= d;
      trades.push({ seller: s, buyer: b, delivered_wh: d });
    }
    const out = txgen("credits", c, { positions, trades, min_tier: rnd(3), interval: 1000 + iv });
    const r = sendRaw(svm, out.tx.tx);
    assert.ok(!(r instanceof FailedTransactionMetadata), `interval ${iv}: ${r}`);
    for (const rec of out.records) {
      assert.equal(rec.kept, rec.minted + rec.in - rec.out - rec.retired);
      held[rec.home] += BigInt(rec.kept);
      minted += BigInt(rec.minted);
      retired += BigInt(rec.retired);
    }
    for (let h = 0; h < N; h++)
      assert.equal(tokenAccount(svm, c.homes[h].energyAta).amount, held[h], `interval ${iv}, home ${h}`);
    const supply = getMintDecoder().decode(svm.getAccount(c.energyMint).data).supply;
    assert.equal(supply, minted - retired, "supply = minted - retired");
    last = out;
  }
  assert.ok(minted > 0n && retired > 0n, "credits were minted and retired");
  console.log(`# credits: 30 intervals, minted ${minted} Wh, retired ${retired}, held ${minted - retired}`);
  // A replay of the last interval's transaction mints nothing again.
  const replay = sendRaw(svm, last.tx.tx);
  assert.ok(replay instanceof FailedTransactionMetadata);
  assert.equal(replay.err(), ALREADY_PROCESSED);
  // An interval whose transaction also burns beyond home 0's balance fails as a whole: its
  // mint does not happen either.
  const before = c.homes.map((h) => tokenAccount(svm, h.energyAta).amount);
  const positions = [{ home: 0, status: 0, tier: 2, import_wh: 0, export_wh: 500 }];
  const bad = txgen("credits", c, { positions, trades: [], min_tier: 0, interval: 2000,
                                    extra_burn: { home: 1, amount: Number(held[1]) + 1 } });
  const rb = sendRaw(svm, bad.tx.tx);
  assert.ok(rb instanceof FailedTransactionMetadata, "over-balance burn fails");
  assert.deepEqual(c.homes.map((h) => tokenAccount(svm, h.energyAta).amount), before, "nothing moved");
  assert.equal(getMintDecoder().decode(svm.getAccount(c.energyMint).data).supply, minted - retired);
});
