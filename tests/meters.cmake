# Tests of the meters library (meters/): pure decoders, counter filter, SunSpec chain and
# device config (label unit), the Modbus client and the poller against real libmodbus servers
# on loopback (label integration), and the register decoder fuzz harness (label fuzz).
add_library(mgx_test_modbus_sim STATIC meters/modbus_sim.c)
target_include_directories(mgx_test_modbus_sim PUBLIC meters)
target_link_libraries(mgx_test_modbus_sim PRIVATE mgx_options PkgConfig::MODBUS Threads::Threads
  PUBLIC mgx_test_support)

foreach(t regmap counter sunspec device_config)
  mgx_test(test_${t} unit meters/test_${t}.c LIBS mgx_meters)
endforeach()
target_link_libraries(test_device_config PRIVATE mgx_test_support)

foreach(t modbus_device poller)
  mgx_test(test_${t} integration meters/test_${t}.c LIBS mgx_meters mgx_test_modbus_sim
    Threads::Threads)
  set_tests_properties(test_${t} PROPERTIES TIMEOUT 60)
endforeach()

# Fuzzing the register decoders, plans, SunSpec chain parser and counter filter. Always: the
# corpus replay driver (label fuzz); with -DMGX_FUZZ=ON and clang: the libFuzzer binary and a
# 20 s run (label fuzz). New inputs go to the build tree (see tests/fuzz/README.md).
set(_mgx_regmap_corpus ${CMAKE_CURRENT_SOURCE_DIR}/fuzz/corpus/regmap)
add_executable(fuzz_regmap_replay fuzz/replay.c fuzz/fuzz_regmap.c)
target_include_directories(fuzz_regmap_replay PRIVATE fuzz)
target_link_libraries(fuzz_regmap_replay PRIVATE mgx_meters mgx_options)
add_test(NAME fuzz_regmap_replay COMMAND fuzz_regmap_replay ${_mgx_regmap_corpus})
set_tests_properties(fuzz_regmap_replay PROPERTIES LABELS fuzz)
if(MGX_FUZZ AND CMAKE_C_COMPILER_ID MATCHES "Clang")
  set(_mgx_regmap_srcs regmap.c counter.c meter_map.c sunspec.c error.c quality.c)
  list(TRANSFORM _mgx_regmap_srcs PREPEND ${PROJECT_SOURCE_DIR}/meters/src/)
  set(_flags -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer)
  add_executable(fuzz_regmap fuzz/fuzz_regmap.c ${_mgx_regmap_srcs})
  target_include_directories(fuzz_regmap PRIVATE fuzz ${PROJECT_SOURCE_DIR}/meters/include)
  target_compile_options(fuzz_regmap PRIVATE ${_flags})
  target_link_options(fuzz_regmap PRIVATE ${_flags})
  target_link_libraries(fuzz_regmap PRIVATE mgx_options ${MATH_LIBRARY})
  set(_out ${CMAKE_CURRENT_BINARY_DIR}/fuzz/regmap)
  file(MAKE_DIRECTORY ${_out})
  add_test(NAME fuzz_regmap_run
    COMMAND fuzz_regmap -max_total_time=20 -timeout=10 -rss_limit_mb=2048
      -print_final_stats=1 -artifact_prefix=${_out}/ ${_out} ${_mgx_regmap_corpus})
  set_tests_properties(fuzz_regmap_run PROPERTIES LABELS fuzz TIMEOUT 60)
endif()
