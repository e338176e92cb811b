# Solana backend (settlement/src/solana*.c, controller/src/solana_*.c).
# Unit: known answers for base58, shortvec, PDAs/ATAs and instruction layouts; message and
# batch structure. Integration: the C-built transactions executed in LiteSVM (node), and the
# outbox against a JSON-RPC server backed by LiteSVM.
mgx_test(test_solana_kat unit solana/test_solana_kat.c LIBS mgx_settlement PkgConfig::SODIUM)
