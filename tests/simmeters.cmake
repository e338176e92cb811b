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
  LIBS mgx_test_support mgx_meters PkgConfig::MODBUS PkgConfig::INIH PkgConfig::JANSSON
    Threads::Threads ${MATH_LIBRARY})
add_dependencies(test_sim_serve mgx)
set_tests_properties(test_sim_serve PROPERTIES ENVIRONMENT "MGX_BIN=$<TARGET_FILE:mgx>" TIMEOUT 120)

# Fuzzing the Modbus TCP framing and replies of the simulated meters, same pattern as
# tests/fuzz.cmake: a replay driver over the committed corpus always (label `fuzz`), and with
# -DMGX_FUZZ=ON under clang the libFuzzer binary fuzz_mbap plus a 20 s run.
set(_mbap_corpus ${CMAKE_CURRENT_SOURCE_DIR}/simmeters/corpus/mbap)
set(_mbap_src ${PROJECT_SOURCE_DIR}/meters/src/mbap.c ${PROJECT_SOURCE_DIR}/meters/src/meter_image.c
  ${PROJECT_SOURCE_DIR}/meters/src/regmap.c)
add_executable(fuzz_mbap_replay
  ${CMAKE_CURRENT_SOURCE_DIR}/fuzz/replay.c ${CMAKE_CURRENT_SOURCE_DIR}/simmeters/fuzz_mbap.c
  ${_mbap_src})
target_include_directories(fuzz_mbap_replay PRIVATE
  ${PROJECT_SOURCE_DIR}/meters/src ${PROJECT_SOURCE_DIR}/meters/include ${CMAKE_CURRENT_SOURCE_DIR}/fuzz)
target_link_libraries(fuzz_mbap_replay PRIVATE mgx_options ${MATH_LIBRARY})
add_test(NAME fuzz_mbap_replay COMMAND fuzz_mbap_replay ${_mbap_corpus})
set_tests_properties(fuzz_mbap_replay PROPERTIES LABELS fuzz)
if(MGX_FUZZ AND CMAKE_C_COMPILER_ID MATCHES "Clang")
  set(_flags -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer)
  add_executable(fuzz_mbap ${CMAKE_CURRENT_SOURCE_DIR}/simmeters/fuzz_mbap.c ${_mbap_src})
  target_include_directories(fuzz_mbap PRIVATE
    ${PROJECT_SOURCE_DIR}/meters/src ${PROJECT_SOURCE_DIR}/meters/include
    ${CMAKE_CURRENT_SOURCE_DIR}/fuzz)
  target_compile_options(fuzz_mbap PRIVATE ${_flags})
  target_link_options(fuzz_mbap PRIVATE ${_flags})
  target_link_libraries(fuzz_mbap PRIVATE mgx_options ${MATH_LIBRARY})
  set(_out ${CMAKE_CURRENT_BINARY_DIR}/fuzz/mbap)
  file(MAKE_DIRECTORY ${_out})
  add_test(NAME fuzz_mbap_run
    COMMAND fuzz_mbap -max_total_time=20 -timeout=10 -rss_limit_mb=2048 -print_final_stats=1
      -artifact_prefix=${_out}/ ${_out} ${_mbap_corpus})
  set_tests_properties(fuzz_mbap_run PROPERTIES LABELS fuzz TIMEOUT 60)
endif()
