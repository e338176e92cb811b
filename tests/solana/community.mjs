// A microgrid community inside LiteSVM, built with @solana/kit: an energy mint (0 decimals,
// 1 unit = 1 Wh), a payment mint with decimals, each home's associated token accounts with
// starting balances, and the settlement key. Shared by settle.test.mjs and rpc_server.mjs.
import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

import {
  appendTransactionMessageInstructions,
  createKeyPairSignerFromPrivateKeyBytes,
  createTransactionMessage,
  generateKeyPairSigner,
  getBase64Encoder,
  getTransactionDecoder,
  lamports,
  pipe,
  setTransactionMessageFeePayerSigner,
  signTransactionMessageWithSigners,
} from "@solana/kit";
import { getCreateAccountInstruction } from "@solana-program/system";
import {
  TOKEN_PROGRAM_ADDRESS,
  findAssociatedTokenPda,
  getCreateAssociatedTokenIdempotentInstruction,
  getInitializeMint2Instruction,
  getMintSize,
  getMintToInstruction,
  getTokenDecoder,
} from "@solana-program/token";
import { FailedTransactionMetadata } from "litesvm";

export const TXGEN =
  process.env.MGX_SOLANA_TXGEN ??
  new URL("../../build/tests/solana/solana_txgen", import.meta.url).pathname;

const hex = (b) => Buffer.from(b).toString("hex");

// Sends instructions in a kit-built legacy transaction; throws with the runtime's error.
export async function sendKit(svm, payer, instructions) {
  const msg = pipe(
    createTransactionMessage({ version: "legacy" }),
    (m) => setTransactionMessageFeePayerSigner(payer, m),
    (m) => svm.setTransactionMessageLifetimeUsingLatestBlockhash(m),
    (m) => appendTransactionMessageInstructions(instructions, m),
  );
  const tx = await signTransactionMessageWithSigners(msg);
  const r = svm.sendTransaction(tx);
  if (r instanceof FailedTransactionMetadata) throw new Error(`setup tx failed: ${r.toString()}`);
  return r;
}

// Executes raw transaction bytes (base64 from C) and returns LiteSVM's result.
export function sendRaw(svm, b64) {
  const bytes = new Uint8Array(getBase64Encoder().encode(b64));
  return svm.sendTransaction(getTransactionDecoder().decode(bytes));
}

export function tokenAccount(svm, address) {
  const acc = svm.getAccount(address);
  if (!acc.exists) return null;
  const t = getTokenDecoder().decode(acc.data);
  return {
    amount: t.amount,
    delegate: t.delegate.__option === "Some" ? t.delegate.value : null,
    delegatedAmount: t.delegatedAmount,
  };
}

async function createMint(svm, payer, mintAuthority, decimals) {
  const mint = await generateKeyPairSigner();
  const space = BigInt(getMintSize());
  await sendKit(svm, payer, [
    getCreateAccountInstruction({
      payer,
      newAccount: mint,
      lamports: svm.minimumBalanceForRentExemption(space),
      space,
      programAddress: TOKEN_PROGRAM_ADDRESS,
    }),
    getInitializeMint2Instruction({ mint: mint.address, decimals, mintAuthority: mintAuthority.address }),
  ]);
  return mint.address;
}

// homes: [{ energy: bigint Wh, payment: bigint base units }]. Returns the community, with the
// seeds (hex) the C side needs to derive the same keys.
// opts.creditMint: the settlement key is the energy mint's authority (energy credits, issue 13).
export async function makeCommunity(svm, homes, paymentDecimals = 6, opts = {}) {
  const funder = await generateKeyPairSigner();
  svm.airdrop(funder.address, lamports(1_000_000_000_000n));
  const authoritySeed = randomBytes(32);
  const authority = await createKeyPairSignerFromPrivateKeyBytes(new Uint8Array(authoritySeed));
  svm.airdrop(authority.address, lamports(100_000_000_000n));
  // opts.mintAuthority: a separate key (seed bytes) is the energy mint's authority: the
  // community's mint authority, held by the controller beside the settlement key
  const mintAuthority = opts.mintAuthority
    ? await createKeyPairSignerFromPrivateKeyBytes(new Uint8Array(opts.mintAuthority))
    : null;
  const energyAuthority = mintAuthority ?? (opts.creditMint ? authority : funder);
  const energyMint = await createMint(svm, funder, energyAuthority, 0);
  const paymentMint = await createMint(svm, funder, funder, paymentDecimals);
  const out = [];
  for (const h of homes) {
    const seed = randomBytes(32);
    const signer = await createKeyPairSignerFromPrivateKeyBytes(new Uint8Array(seed));
    svm.airdrop(signer.address, lamports(1_000_000_000n));
    const [energyAta] = await findAssociatedTokenPda({ owner: signer.address, tokenProgram: TOKEN_PROGRAM_ADDRESS, mint: energyMint });
    const [paymentAta] = await findAssociatedTokenPda({ owner: signer.address, tokenProgram: TOKEN_PROGRAM_ADDRESS, mint: paymentMint });
    const ix = [
      getCreateAssociatedTokenIdempotentInstruction({ payer: funder, ata: energyAta, owner: signer.address, mint: energyMint }),
      getCreateAssociatedTokenIdempotentInstruction({ payer: funder, ata: paymentAta, owner: signer.address, mint: paymentMint }),
    ];
    if (h.energy > 0n) ix.push(getMintToInstruction({ mint: energyMint, token: energyAta, mintAuthority: energyAuthority, amount: h.energy }));
    if (h.payment > 0n) ix.push(getMintToInstruction({ mint: paymentMint, token: paymentAta, mintAuthority: funder, amount: h.payment }));
    await sendKit(svm, funder, ix);
    out.push({ seed: hex(seed), address: signer.address, energyAta, paymentAta });
  }
  return { svm, authoritySeed: hex(authoritySeed), authority: authority.address, energyMint, paymentMint, paymentDecimals, homes: out,
           mintAuthority: mintAuthority?.address ?? null };
}

// Runs solana_txgen on a scenario built from the community plus fields in extra.
export function txgen(mode, c, extra) {
  const scenario = {
    authority_seed: c.authoritySeed,
    energy_mint: c.energyMint,
    energy_decimals: 0,
    payment_mint: c.paymentMint,
    payment_decimals: c.paymentDecimals,
    homes: c.homes.map((h) => h.seed),
    blockhash: c.svm.latestBlockhash(),
    interval: 1,
    root: "00".repeat(32),
    ...extra,
  };
  const path = join(tmpdir(), `mgx-solana-${process.pid}-${randomBytes(4).toString("hex")}.json`);
  writeFileSync(path, JSON.stringify(scenario));
  return JSON.parse(execFileSync(TXGEN, [mode, path], { encoding: "utf8" }));
}
