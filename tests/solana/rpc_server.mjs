// A Solana JSON-RPC server backed by LiteSVM, for testing mgx's outbox offline:
//   node rpc_server.mjs PORT SCENARIO.json
// sets up a community (community.mjs; every home approves the settlement key), writes the
// keys the C test needs to SCENARIO.json, prints READY, and serves sendTransaction,
// getSignatureStatuses, getLatestBlockhash and getBlockHeight. Block height is simulated: it
// moves only by mgxTest_advance, and a blockhash expires (LiteSVM expireBlockhash) once the
// height passes its lastValidBlockHeight (issue height + 150), as on a real cluster.
// Test controls: mgxTest_dropNext(n) (accept, answer, never execute: lost in transit),
// mgxTest_lostReplyNext(n) (execute, then answer HTTP 503 with no body), mgxTest_holdNext(n)
// and mgxTest_release (execute late), mgxTest_advance(n), mgxTest_balances, mgxTest_stats.
import { createServer } from "node:http";
import { writeFileSync } from "node:fs";

import { LiteSVM, FailedTransactionMetadata } from "litesvm";
import { getBase58Decoder, getBase64Encoder, getTransactionDecoder } from "@solana/kit";
import { getApproveInstruction } from "@solana-program/token";
import { createKeyPairSignerFromPrivateKeyBytes } from "@solana/kit";

import { makeCommunity, sendKit, tokenAccount } from "./community.mjs";

const [port, scenarioPath] = process.argv.slice(2);
const svm = new LiteSVM();
const homes = [];
for (let i = 0; i < 12; i++) homes.push(i < 6 ? { energy: 1_000_000n, payment: 0n } : { energy: 0n, payment: 10_000_000_000n });
const c = await makeCommunity(svm, homes, 6);
for (const h of c.homes) {
  const owner = await createKeyPairSignerFromPrivateKeyBytes(new Uint8Array(Buffer.from(h.seed, "hex")));
  await sendKit(svm, owner, [
    getApproveInstruction({ source: h.energyAta, delegate: c.authority, owner, amount: 500_000n }),
    getApproveInstruction({ source: h.paymentAta, delegate: c.authority, owner, amount: 5_000_000_000n }),
  ]);
}
writeFileSync(scenarioPath, JSON.stringify({
  authority_seed: c.authoritySeed, energy_mint: c.energyMint, energy_decimals: 0,
  payment_mint: c.paymentMint, payment_decimals: c.paymentDecimals, homes: c.homes.map((h) => h.seed),
}));

let height = 1000;
let blockhash = svm.latestBlockhash();
let lastValid = height + 150;
const statuses = new Map();
const held = [];
const ctl = { drop: 0, lost: 0, hold: 0, sends: 0, executed: 0 };
const b58 = getBase58Decoder();

function execute(tx, sig) {
  const r = svm.sendTransaction(tx);
  if (r instanceof FailedTransactionMetadata) return r.toString();
  ctl.executed++;
  statuses.set(sig, { slot: height, confirmations: null, err: null, status: { Ok: null }, confirmationStatus: "finalized" });
  return null;
}

function send(params) {
  ctl.sends++;
  const bytes = new Uint8Array(getBase64Encoder().encode(params[0]));
  const tx = getTransactionDecoder().decode(bytes);
  const sig = b58.decode(bytes.slice(1, 65));
  if (ctl.drop > 0) { ctl.drop--; return { result: sig }; }
  if (ctl.hold > 0) { ctl.hold--; held.push({ tx, sig }); return { result: sig }; }
  if (statuses.has(sig)) return { error: { code: -32002, message: "Transaction simulation failed: This transaction has already been processed" } };
  const err = execute(tx, sig);
  if (err) return { error: { code: -32002, message: `Transaction simulation failed: ${err}` } };
  if (ctl.lost > 0) { ctl.lost--; return { http503: true }; }
  return { result: sig };
}

const methods = {
  sendTransaction: send,
  getSignatureStatuses: (p) => ({ result: { context: { slot: height }, value: p[0].map((s) => statuses.get(s) ?? null) } }),
  getLatestBlockhash: () => ({ result: { context: { slot: height }, value: { blockhash, lastValidBlockHeight: lastValid } } }),
  getBlockHeight: () => ({ result: height }),
  mgxTest_dropNext: (p) => { ctl.drop = p[0]; return { result: true }; },
  mgxTest_lostReplyNext: (p) => { ctl.lost = p[0]; return { result: true }; },
  mgxTest_holdNext: (p) => { ctl.hold = p[0]; return { result: true }; },
  mgxTest_release: () => ({ result: held.splice(0).map(({ tx, sig }) => execute(tx, sig) ?? "ok") }),
  mgxTest_advance: (p) => {
    height += p[0];
    if (height > lastValid) {
      svm.expireBlockhash();
      blockhash = svm.latestBlockhash();
      lastValid = height + 150;
    }
    return { result: height };
  },
  mgxTest_balances: () => ({ result: c.homes.map((h) => {
    const e = tokenAccount(svm, h.energyAta), p = tokenAccount(svm, h.paymentAta);
    return [e.amount, p.amount, e.delegatedAmount, p.delegatedAmount].map(String);
  }) }),
  mgxTest_stats: () => ({ result: { sends: ctl.sends, executed: ctl.executed } }),
};

createServer((req, res) => {
  let body = "";
  req.on("data", (d) => { body += d; });
  req.on("end", () => {
    let out;
    let id = null;
    try {
      const msg = JSON.parse(body);
      id = msg.id;
      const m = methods[msg.method];
      out = m ? m(msg.params ?? []) : { error: { code: -32601, message: "Method not found" } };
    } catch (e) {
      out = { error: { code: -32700, message: `Parse error: ${e.message}` } };
    }
    if (out.http503) { res.writeHead(503); res.end(); return; }
    res.writeHead(200, { "Content-Type": "application/json" });
    res.end(JSON.stringify({ jsonrpc: "2.0", id, ...out }));
  });
}).listen(Number(port), "127.0.0.1", () => console.log("READY"));
