# Solana backend (settlement/src/solana*.c, controller/src/solana_*.c).
# Unit: known answers for base58, shortvec, PDAs/ATAs and instruction layouts; message and
# batch structure. Integration: the C-built transactions executed in LiteSVM (node), and the
# outbox against a JSON-RPC server backed by LiteSVM.
mgx_test(test_solana_kat unit solana/test_solana_kat.c LIBS mgx_settlement PkgConfig::SODIUM)
mgx_test(test_solana_batch unit solana/test_solana_batch.c LIBS mgx_settlement PkgConfig::SODIUM)
target_compile_definitions(test_solana_batch PRIVATE _GNU_SOURCE) # memmem

# The C side of the LiteSVM tests: prints ATAs, curve checks, approvals and signed batches.
add_executable(solana_txgen solana/solana_txgen.c)
target_link_libraries(solana_txgen PRIVATE mgx_settlement mgx_options PkgConfig::SODIUM
  PkgConfig::JANSSON)

# LiteSVM: node runs the C-built transactions in a real Solana runtime. Needs `npm ci` in
# tests/solana (.ci/setup runs it); without node_modules the test reports itself skipped.
find_program(MGX_NODE node)
if(MGX_NODE)
  add_test(NAME test_solana_litesvm
    COMMAND ${MGX_NODE} ${CMAKE_CURRENT_SOURCE_DIR}/solana/settle.test.mjs)
  set_tests_properties(test_solana_litesvm PROPERTIES LABELS integration SKIP_RETURN_CODE 77
    TIMEOUT 120 ENVIRONMENT "MGX_SOLANA_TXGEN=$<TARGET_FILE:solana_txgen>")
  add_dependencies(solana_txgen mgx_settlement)
else()
  add_test(NAME test_solana_litesvm
    COMMAND sh -c "echo 'SKIP: node is not installed; the LiteSVM tests need Node.js 20'; exit 77")
  set_tests_properties(test_solana_litesvm PROPERTIES LABELS integration SKIP_RETURN_CODE 77)
endif()

# The outbox and JSON-RPC client against a LiteSVM-backed JSON-RPC server (rpc_server.mjs).
pkg_check_modules(CURL REQUIRED IMPORTED_TARGET libcurl)
mgx_test(test_solana_rpc unit solana/test_solana_rpc.c
  ${PROJECT_SOURCE_DIR}/controller/solana/solana_rpc.c
  LIBS mgx_settlement PkgConfig::SODIUM PkgConfig::JANSSON PkgConfig::CURL)
target_include_directories(test_solana_rpc PRIVATE ${PROJECT_SOURCE_DIR}/controller)
if(MGX_NODE)
  mgx_test(test_solana_outbox integration solana/test_solana_outbox.c
    LIBS mgx_ctl_solana mgx_settlement mgx_test_support PkgConfig::SODIUM PkgConfig::JANSSON PkgConfig::SQLITE
      PkgConfig::CURL)
  target_compile_definitions(test_solana_outbox PRIVATE MGX_NODE="${MGX_NODE}")
  set_tests_properties(test_solana_outbox PROPERTIES SKIP_RETURN_CODE 77 TIMEOUT 120)
endif()

# `mgx controller` with settlement_key and [solana] against the LiteSVM-backed JSON-RPC server:
# orders and readings over a real broker, killed mid-submission and at crash points; on-chain
# transfers, memos, balances and allowances checked against the ledger.
if(MGX_NODE)
  mgx_test(test_solana_daemon integration solana/test_solana_daemon.c
    LIBS mgx_ctl_cli mgx_test_support PkgConfig::SQLITE PkgConfig::SODIUM PkgConfig::JANSSON
      PkgConfig::CURL)
  target_include_directories(test_solana_daemon PRIVATE ${PROJECT_SOURCE_DIR}/controller)
  target_compile_definitions(test_solana_daemon PRIVATE MGX_NODE="${MGX_NODE}")
  add_dependencies(test_solana_daemon mgx)
  set_tests_properties(test_solana_daemon PROPERTIES SKIP_RETURN_CODE 77 TIMEOUT 120
    ENVIRONMENT "MGX_BIN=$<TARGET_FILE:mgx>")
endif()
