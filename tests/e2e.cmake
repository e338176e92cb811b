# The end-to-end test (tests/e2e/test_e2e.c): broker, simulated Modbus meters, meter reader,
# 20 agents and the controller over one simulated day, compared with the in-process simulator.
mgx_test(test_e2e integration e2e/test_e2e.c
  LIBS mgx_ctl_cli mgx_sim mgx_market mgx_test_support PkgConfig::SQLITE PkgConfig::JANSSON)
target_include_directories(test_e2e PRIVATE ${PROJECT_SOURCE_DIR}/controller)
add_dependencies(test_e2e mgx)
set_tests_properties(test_e2e PROPERTIES TIMEOUT 300 ENVIRONMENT "MGX_BIN=$<TARGET_FILE:mgx>")
