# Settlement and ledger tests: reconciliation (known answers and 10^6-interval properties), the
# RFC 6962 Merkle log, Ed25519 and signed-note checkpoints against published vectors in
# tests/data/vectors/, and the `mgx ledger` store and CLI including crash tests.
if(MGX_SANITIZE)
  set(MGX_LEDGER_PROP_INTERVALS 100000) # the sanitized build runs a tenth of the intervals
else()
  set(MGX_LEDGER_PROP_INTERVALS 1000000)
endif()
mgx_test(test_reconcile_kat unit ledger/test_reconcile_kat.c LIBS mgx_settlement mgx_meters)
mgx_test(test_reconcile_props unit ledger/test_reconcile_props.c LIBS mgx_settlement)
target_compile_definitions(test_reconcile_props PRIVATE
  MGX_PROP_INTERVALS=${MGX_LEDGER_PROP_INTERVALS})
mgx_test(test_merkle unit ledger/test_merkle.c LIBS mgx_settlement PkgConfig::SODIUM)
mgx_test(test_ledger_records unit ledger/test_ledger_records.c LIBS mgx_settlement PkgConfig::SODIUM)
# `mgx ledger` end to end on real SQLite files (the binary comes through $MGX_BIN).
mgx_test(test_cli_ledger integration ledger/test_cli_ledger.c ledger/ledger_harness.c
  LIBS mgx_test_support PkgConfig::JANSSON PkgConfig::SQLITE)
add_dependencies(test_cli_ledger mgx)
set_tests_properties(test_cli_ledger PROPERTIES ENVIRONMENT "MGX_BIN=$<TARGET_FILE:mgx>")
# Crash tests: named crash points (MGX_CRASH_AT, 20 hits each) and random kill -9 of `mgx ledger
# settle`; `mgx ledger verify` after every restart.
mgx_test(test_ledger_crash integration ledger/test_ledger_crash.c ledger/ledger_harness.c
  LIBS mgx_test_support PkgConfig::SQLITE)
add_dependencies(test_ledger_crash mgx)
set_tests_properties(test_ledger_crash PROPERTIES ENVIRONMENT "MGX_BIN=$<TARGET_FILE:mgx>"
  TIMEOUT 300)
