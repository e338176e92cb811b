# Simulated Modbus meters (meters/src/meter_server.c and its pure parts) and `mgx sim
# --serve-modbus`. Unit tests reach the private headers in meters/src.
mgx_test(test_mbap unit simmeters/test_mbap.c LIBS mgx_meters)
target_include_directories(test_mbap PRIVATE ${PROJECT_SOURCE_DIR}/meters/src)
mgx_test(test_meter_image unit simmeters/test_meter_image.c LIBS mgx_meters ${MATH_LIBRARY})
target_include_directories(test_meter_image PRIVATE ${PROJECT_SOURCE_DIR}/meters/src)
mgx_test(test_meter_server integration simmeters/test_meter_server.c
  LIBS mgx_meters PkgConfig::MODBUS Threads::Threads ${MATH_LIBRARY})
mgx_test(test_meter_trace unit simmeters/test_meter_trace.c LIBS mgx_sim)
mgx_test(test_sim_serve integration simmeters/test_sim_serve.c
  LIBS mgx_test_support PkgConfig::MODBUS ${MATH_LIBRARY})
add_dependencies(test_sim_serve mgx)
set_tests_properties(test_sim_serve PROPERTIES ENVIRONMENT "MGX_BIN=$<TARGET_FILE:mgx>" TIMEOUT 120)
