// A Solana JSON-RPC server backed by LiteSVM, for testing mgx's outbox and daemon offline:
//   node rpc_server.mjs PORT SCENARIO.json [COMMUNITY.json]
// sets up a community (community.mjs; every home approves the settlement key), writes the
// keys the C test needs to SCENARIO.json, prints READY, and serves sendTransaction,
// getSignatureStatuses, getLatestBlockhash and getBlockHeight, plus what an auditor asks a
// node: getTransaction (encoding json), getAccountInfo (encoding base64) and
// getTokenAccountBalance, in the shapes of the Solana JSON-RPC API. COMMUNITY.json (optional)
// sets {"payment_decimals": D, "homes": [{"energy", "payment", "energy_allowance",
// "payment_allowance"}]} (amounts as decimal strings, base units); without it 12 homes: 6
// with energy, 6 with payment, as test_solana_outbox expects. Block height is simulated: it
// moves only by mgxTest_advance, and a blockhash expires (LiteSVM expireBlockhash) once the
// height passes its lastValidBlockHeight (issue height + 150), as on a real cluster.
// Test controls: mgxTest_dropNext(n) (accept, answer, never execute: lost in transit),
// mgxTest_lostReplyNext(n) (execute, then answer HTTP 503 with no body), mgxTest_holdNext(n)
// and mgxTest_release (execute late), mgxTest_slowNext(n, ms, executeFirst, minSigners) (the
// next n sends of transactions with at least minSigners signatures, default 1, take ms:
// executed at once and answered late, or executed and answered late: a window in which the
// sender can be killed mid-submission), mgxTest_advance(n), mgxTest_balances,
// mgxTest_stats ({sends, executed, inflight}).
import { createPublicKey, randomBytes, verify } from "node:crypto";
import { createServer } from "node:http";
import { readFileSync, writeFileSync } from "node:fs";

import { LiteSVM, FailedTransactionMetadata } from "litesvm";
import {
  getBase58Decoder,
  getBase58Encoder,
  getBase64Decoder,
  getBase64Encoder,
  getCompiledTransactionMessageDecoder,
  getTransactionDecoder,
} from "@solana/kit";
import { getApproveInstruction } from "@solana-program/token";
import { createKeyPairSignerFromPrivateKeyBytes } from "@solana/kit";

import { makeCommunity, sendKit, tokenAccount } from "./community.mjs";

const [port, scenarioPath, communityPath] = process.argv.slice(2);
const svm = new LiteSVM();
let homes = [];
let paymentDecimals = 6;
if (communityPath) {
  const spec = JSON.parse(readFileSync(communityPath, "utf8"));
  paymentDecimals = spec.payment_decimals ?? 6;
  homes = spec.homes.map((h) => ({
    energy: BigInt(h.energy), payment: BigInt(h.payment),
    energyAllowance: BigInt(h.energy_allowance), paymentAllowance: BigInt(h.payment_allowance),
  }));
} else {
  for (let i = 0; i < 12; i++)
    homes.push(i < 6 ? { energy: 1_000_000n, payment: 0n, energyAllowance: 500_000n, paymentAllowance: 5_000_000_000n }
                     : { energy: 0n, payment: 10_000_000_000n, energyAllowance: 500_000n, paymentAllowance: 5_000_000_000n });
}
// "mint_authority": true in COMMUNITY.json: the energy mint's authority is a key of its own
// (energy credits minted by the controller, issue 13); its seed goes to SCENARIO.json
let mintAuthoritySeed = null;
if (communityPath && JSON.parse(readFileSync(communityPath, "utf8")).mint_authority)
  mintAuthoritySeed = randomBytes(32);
const c = await makeCommunity(svm, homes, paymentDecimals, { mintAuthority: mintAuthoritySeed });
for (let i = 0; i < c.homes.length; i++) {
  const h = c.homes[i];
  const owner = await createKeyPairSignerFromPrivateKeyBytes(new Uint8Array(Buffer.from(h.seed, "hex")));
  await sendKit(svm, owner, [
    getApproveInstruction({ source: h.energyAta, delegate: c.authority, owner, amount: homes[i].energyAllowance }),
    getApproveInstruction({ source: h.paymentAta, delegate: c.authority, owner, amount: homes[i].paymentAllowance }),
  ]);
}
writeFileSync(scenarioPath, JSON.stringify({
  authority_seed: c.authoritySeed, authority: c.authority, energy_mint: c.energyMint, energy_decimals: 0,
  payment_mint: c.paymentMint, payment_decimals: c.paymentDecimals, homes: c.homes.map((h) => h.seed),
  wallets: c.homes.map((h) => ({ address: h.address, energy_ata: h.energyAta, payment_ata: h.paymentAta })),
  ...(mintAuthoritySeed ? { mint_authority_seed: mintAuthoritySeed.toString("hex"), mint_authority: c.mintAuthority } : {}),
}));

let height = 1000;
let blockhash = svm.latestBlockhash();
let lastValid = height + 150;
const statuses = new Map();
const executed = new Map(); // signature -> { tx, slot }: the node's transaction history
const held = [];
const ctl = { drop: 0, lost: 0, hold: 0, slow: 0, slowMs: 0, slowExecFirst: true, slowMinSigners: 1, sends: 0, executed: 0, inflight: 0 };
const b58 = getBase58Decoder();
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

function execute(tx, sig) {
  const r = svm.sendTransaction(tx);
  if (r instanceof FailedTransactionMetadata) return r.toString();
  ctl.executed++;
  executed.set(sig, { tx, slot: height });
  statuses.set(sig, { slot: height, confirmations: null, err: null, status: { Ok: null }, confirmationStatus: "finalized" });
  return null;
}

// A node verifies every signature before anything else (a tampered copy of a processed
// transaction is a signature failure, not a duplicate).
const ED25519_SPKI = Buffer.from("302a300506032b6570032100", "hex");
function sigverify(tx) {
  for (const [address, s] of Object.entries(tx.signatures)) {
    const key = createPublicKey({ key: Buffer.concat([ED25519_SPKI, getBase58Encoder().encode(address)]), format: "der", type: "spki" });
    if (!s || !verify(null, tx.messageBytes, key, s)) return false;
  }
  return true;
}

function sendNow(tx, sig) {
  if (!sigverify(tx)) return { error: { code: -32003, message: "Transaction signature verification failure (SignatureFailure)" } };
  if (statuses.has(sig)) return { error: { code: -32002, message: "Transaction simulation failed: This transaction has already been processed" } };
  const err = execute(tx, sig);
  if (err) return { error: { code: -32002, message: `Transaction simulation failed: ${err}` } };
  if (ctl.lost > 0) { ctl.lost--; return { http503: true }; }
  return { result: sig };
}

function send(params) {
  ctl.sends++;
  const bytes = new Uint8Array(getBase64Encoder().encode(params[0]));
  const tx = getTransactionDecoder().decode(bytes);
  const sig = b58.decode(bytes.slice(1, 65));
  if (ctl.drop > 0) { ctl.drop--; return { result: sig }; }
  if (ctl.hold > 0) { ctl.hold--; held.push({ tx, sig }); return { result: sig }; }
  if (ctl.slow > 0 && Object.keys(tx.signatures).length >= ctl.slowMinSigners) {
    ctl.slow--;
    ctl.inflight++;
    const execFirst = ctl.slowExecFirst, ms = ctl.slowMs;
    const first = execFirst ? sendNow(tx, sig) : null;
    return sleep(ms).then(() => {
      ctl.inflight--;
      return first ?? sendNow(tx, sig);
    });
  }
  return sendNow(tx, sig);
}

// getTransaction with encoding "json": the message as the node stores it.
function getTransaction(params) {
  const e = executed.get(params[0]);
  if (!e) return { result: null };
  const m = getCompiledTransactionMessageDecoder().decode(e.tx.messageBytes);
  return { result: {
    slot: e.slot, blockTime: null, version: "legacy",
    meta: { err: null, status: { Ok: null }, fee: 5000 * m.header.numSignerAccounts },
    transaction: {
      signatures: Object.values(e.tx.signatures).map((s) => b58.decode(s)),
      message: {
        header: {
          numRequiredSignatures: m.header.numSignerAccounts,
          numReadonlySignedAccounts: m.header.numReadonlySignerAccounts,
          numReadonlyUnsignedAccounts: m.header.numReadonlyNonSignerAccounts,
        },
        accountKeys: m.staticAccounts,
        recentBlockhash: m.lifetimeToken,
        instructions: (m.instructions ?? []).map((ix) => ({
          programIdIndex: ix.programAddressIndex,
          accounts: ix.accountIndices ?? [],
          data: b58.decode(ix.data ?? new Uint8Array()),
        })),
      },
    },
  } };
}

function getAccountInfo(params) {
  const acc = svm.getAccount(params[0]);
  const ctx = { slot: height };
  if (!acc.exists) return { result: { context: ctx, value: null } };
  return { result: { context: ctx, value: {
    data: [getBase64Decoder().decode(acc.data), "base64"], executable: acc.executable,
    lamports: Number(acc.lamports), owner: acc.programAddress, rentEpoch: 0, space: acc.data.length,
  } } };
}

function getTokenAccountBalance(params) {
  const t = tokenAccount(svm, params[0]);
  if (!t) return { error: { code: -32602, message: "Invalid param: could not find account" } };
  const acc = svm.getAccount(params[0]);
  const mint = getCompiledMintDecimals(acc.data);
  const s = t.amount.toString().padStart(mint + 1, "0");
  const ui = mint ? `${s.slice(0, -mint)}.${s.slice(-mint)}`.replace(/\.?0+$/, "") : s;
  return { result: { context: { slot: height }, value: { amount: t.amount.toString(), decimals: mint, uiAmountString: ui } } };
}

// A token account's mint decides its decimals: the mint's byte 44.
function getCompiledMintDecimals(data) {
  const mint = b58.decode(data.slice(0, 32));
  return svm.getAccount(mint).data[44];
}

const methods = {
  sendTransaction: send,
  getSignatureStatuses: (p) => ({ result: { context: { slot: height }, value: p[0].map((s) => statuses.get(s) ?? null) } }),
  getLatestBlockhash: () => ({ result: { context: { slot: height }, value: { blockhash, lastValidBlockHeight: lastValid } } }),
  getBlockHeight: () => ({ result: height }),
  getTransaction,
  getAccountInfo,
  getTokenAccountBalance,
  mgxTest_slowNext: (p) => { ctl.slow = p[0]; ctl.slowMs = p[1] ?? 300; ctl.slowExecFirst = p[2] ?? true; ctl.slowMinSigners = p[3] ?? 1; return { result: true }; },
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
  mgxTest_stats: () => ({ result: { sends: ctl.sends, executed: ctl.executed, inflight: ctl.inflight } }),
};

createServer((req, res) => {
  let body = "";
  req.on("data", (d) => { body += d; });
  req.on("end", () => {
    let id = null, parsed = false;
    Promise.resolve().then(() => {
      const msg = JSON.parse(body);
      parsed = true;
      id = msg.id;
      const m = methods[msg.method];
      return m ? m(msg.params ?? []) : { error: { code: -32601, message: "Method not found" } };
    }).catch((e) => ({ error: parsed ? { code: -32603, message: `Internal error: ${e.message}` }
                                     : { code: -32700, message: `Parse error: ${e.message}` } })).then((out) => {
      if (out.http503) { res.writeHead(503); res.end(); return; }
      res.writeHead(200, { "Content-Type": "application/json" });
      res.end(JSON.stringify({ jsonrpc: "2.0", id, ...out }));
    });
  });
}).listen(Number(port), "127.0.0.1", () => console.log("READY"));
