# Modbus RTU, tested for real: the meters client and poller and `mgx meter --once` reading
# libmodbus RTU servers that share an emulated RS-485 bus made of pseudo-terminals
# (meters_rtu/rtu_bus.[ch]: a relay thread is the wire, logs requests, injects faults).
add_library(mgx_test_rtu_bus STATIC meters_rtu/rtu_bus.c)
target_include_directories(mgx_test_rtu_bus PUBLIC meters_rtu)
target_link_libraries(mgx_test_rtu_bus PRIVATE mgx_options PkgConfig::MODBUS Threads::Threads)

mgx_test(test_meters_rtu integration meters_rtu/test_meters_rtu.c
  LIBS mgx_meters mgx_ctl_cli mgx_test_rtu_bus mgx_test_support Threads::Threads)
target_include_directories(test_meters_rtu PRIVATE ${PROJECT_SOURCE_DIR}/controller)
set_tests_properties(test_meters_rtu PROPERTIES TIMEOUT 90
  ENVIRONMENT "MGX_BIN=$<TARGET_FILE:mgx>")
add_dependencies(test_meters_rtu mgx)
