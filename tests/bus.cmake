# The MQTT bus adapter, the reading outbox, bus payloads, Home Assistant discovery, the daemon
# config loader and `mgx meter` (controller/src/bus.c, outbox.c, payload.c, ha_discovery.c,
# config.c, cmd_meter.c). Integration tests start their own mosquitto on a free loopback port.
set(MGX_CTL_SRC ${PROJECT_SOURCE_DIR}/controller)

add_library(mgx_test_recorder STATIC bus/recorder.c)
target_include_directories(mgx_test_recorder PUBLIC bus)
target_link_libraries(mgx_test_recorder PRIVATE mgx_options PkgConfig::MOSQUITTO Threads::Threads)

mgx_test(test_bus_client integration bus/test_bus_client.c bus/slow_link.c
  LIBS mgx_ctl_cli mgx_test_support mgx_test_recorder PkgConfig::MOSQUITTO)
target_include_directories(test_bus_client PRIVATE ${MGX_CTL_SRC})
set_tests_properties(test_bus_client PROPERTIES TIMEOUT 120)

mgx_test(test_payload unit bus/test_payload.c LIBS mgx_ctl_cli)
target_include_directories(test_payload PRIVATE ${MGX_CTL_SRC})

mgx_test(test_meter_client_id unit bus/test_meter_client_id.c LIBS mgx_ctl_cli)
target_include_directories(test_meter_client_id PRIVATE ${MGX_CTL_SRC})

mgx_test(test_outbox integration bus/test_outbox.c
  LIBS mgx_ctl_cli mgx_test_support mgx_test_recorder PkgConfig::MOSQUITTO PkgConfig::SQLITE)
target_include_directories(test_outbox PRIVATE ${MGX_CTL_SRC})
set_tests_properties(test_outbox PROPERTIES TIMEOUT 180)

mgx_test(test_meter_daemon integration bus/test_meter_daemon.c
  LIBS mgx_ctl_cli mgx_meters mgx_test_support mgx_test_recorder PkgConfig::SQLITE)
target_include_directories(test_meter_daemon PRIVATE ${MGX_CTL_SRC})
set_tests_properties(test_meter_daemon PROPERTIES TIMEOUT 240
  ENVIRONMENT "MGX_BIN=$<TARGET_FILE:mgx>")
add_dependencies(test_meter_daemon mgx)

# Fuzzing the payload decoders: corpus replay in every build (label fuzz), libFuzzer with
# -DMGX_FUZZ=ON and clang (see tests/fuzz.cmake and tests/fuzz/README.md for the conventions).
set(MGX_PAYLOAD_CORPUS ${CMAKE_CURRENT_SOURCE_DIR}/fuzz/corpus/payload)
add_executable(fuzz_payload_replay fuzz/replay.c fuzz/fuzz_payload.c)
target_include_directories(fuzz_payload_replay PRIVATE fuzz ${MGX_CTL_SRC})
target_link_libraries(fuzz_payload_replay PRIVATE mgx_ctl_cli mgx_options)
add_test(NAME fuzz_payload_replay COMMAND fuzz_payload_replay ${MGX_PAYLOAD_CORPUS})
set_tests_properties(fuzz_payload_replay PROPERTIES LABELS fuzz)
if(MGX_FUZZ AND CMAKE_C_COMPILER_ID MATCHES "Clang")
  add_executable(fuzz_payload fuzz/fuzz_payload.c ${PROJECT_SOURCE_DIR}/controller/bus/payload.c ${PROJECT_SOURCE_DIR}/controller/bus/bus.c
    ${PROJECT_SOURCE_DIR}/controller/common/ident.c ${PROJECT_SOURCE_DIR}/controller/common/errbuf.c
    ${PROJECT_SOURCE_DIR}/meters/src/quality.c)
  target_include_directories(fuzz_payload PRIVATE fuzz ${MGX_CTL_SRC}
    ${PROJECT_SOURCE_DIR}/meters/include)
  set(_mgx_pl_flags -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all
    -fno-omit-frame-pointer)
  target_compile_options(fuzz_payload PRIVATE ${_mgx_pl_flags})
  target_link_options(fuzz_payload PRIVATE ${_mgx_pl_flags})
  # mgx_ctl_common for the log facility bus.c writes through (uninstrumented)
  target_link_libraries(fuzz_payload PRIVATE mgx_ctl_common mgx_options PkgConfig::JANSSON PkgConfig::MOSQUITTO
    PkgConfig::SODIUM)
  set(_mgx_pl_out ${CMAKE_CURRENT_BINARY_DIR}/fuzz/payload)
  file(MAKE_DIRECTORY ${_mgx_pl_out})
  add_test(NAME fuzz_payload_run
    COMMAND fuzz_payload -max_total_time=20 -timeout=10 -rss_limit_mb=2048
      -print_final_stats=1 -artifact_prefix=${_mgx_pl_out}/ ${_mgx_pl_out} ${MGX_PAYLOAD_CORPUS})
  set_tests_properties(fuzz_payload_run PROPERTIES LABELS fuzz TIMEOUT 60)
endif()
