# Settlement wired into the controller (controller/src/settle_*.c): the metered energy of an
# interval from stored readings (unit, hand-worked numbers), and `mgx controller` settling
# intervals on a real broker and real SQLite, killed with SIGKILL and restarted (integration).
set(MGX_CTL_SRC ${PROJECT_SOURCE_DIR}/controller/src)

mgx_test(test_settle_meter unit settle/test_settle_meter.c ${MGX_CTL_SRC}/settle_meter.c
  ${MGX_CTL_SRC}/agent_meter.c LIBS mgx_meters mgx_settlement)
target_include_directories(test_settle_meter PRIVATE ${MGX_CTL_SRC})

# `mgx controller` with a settlement key, killed with SIGKILL >= 20 times (real broker, SQLite).
mgx_test(test_settle_daemon integration settle/test_settle_daemon.c
  LIBS mgx_controller mgx_test_support PkgConfig::SQLITE PkgConfig::SODIUM PkgConfig::JANSSON)
target_include_directories(test_settle_daemon PRIVATE ${MGX_CTL_SRC})
add_dependencies(test_settle_daemon mgx)
set_tests_properties(test_settle_daemon PROPERTIES TIMEOUT 120
  ENVIRONMENT "MGX_BIN=$<TARGET_FILE:mgx>")
