# The controller daemon (common/interval, db/store, daemon/clearing, daemon/ctl_daemon): unit
# tests of the pure interval arithmetic and of the SQLite store on real files; integration tests
# that run
# `mgx controller` against a real broker, kill it and restart it.
set(MGX_CTL_SRC ${PROJECT_SOURCE_DIR}/controller)

mgx_test(test_interval unit controller/test_interval.c LIBS mgx_ctl_common)

mgx_test(test_store unit controller/test_store.c
  LIBS mgx_ctl_daemon mgx_market mgx_test_support PkgConfig::SQLITE)

# `mgx controller` killed with SIGKILL >= 20 times during a run and restarted (real broker).
mgx_test(test_controller_crash integration controller/test_controller_crash.c
  LIBS mgx_ctl_cli mgx_test_support PkgConfig::SQLITE PkgConfig::SODIUM)
target_include_directories(test_controller_crash PRIVATE ${MGX_CTL_SRC})
add_dependencies(test_controller_crash mgx)
set_tests_properties(test_controller_crash PROPERTIES TIMEOUT 120
  ENVIRONMENT "MGX_BIN=$<TARGET_FILE:mgx>")

# Batched order intake (controller/src/ingest.c): a burst of hundreds of homes' orders with
# resends, replays and forgeries gets exactly the per-order receipts, however it is batched.
mgx_test(test_ingest unit controller/test_ingest.c controller/burst.c
  LIBS mgx_ctl_cli mgx_test_support PkgConfig::SQLITE PkgConfig::SODIUM Threads::Threads)
target_include_directories(test_ingest PRIVATE ${MGX_CTL_SRC})

# `mgx controller` taking the same burst from 4 publishing clients through a real broker.
mgx_test(test_ingest_burst integration controller/test_ingest_burst.c controller/burst.c
  LIBS mgx_ctl_cli mgx_test_support PkgConfig::SQLITE PkgConfig::SODIUM Threads::Threads)
target_include_directories(test_ingest_burst PRIVATE ${MGX_CTL_SRC})
add_dependencies(test_ingest_burst mgx)
set_tests_properties(test_ingest_burst PROPERTIES TIMEOUT 90
  ENVIRONMENT "MGX_BIN=$<TARGET_FILE:mgx>")

# `mgx controller`'s config through the shared loader: FILE:LINE errors, the shared [bus].
mgx_test(test_controller_config integration controller/test_controller_config.c
  LIBS mgx_test_support)
add_dependencies(test_controller_config mgx)
set_tests_properties(test_controller_config PROPERTIES ENVIRONMENT "MGX_BIN=$<TARGET_FILE:mgx>")
