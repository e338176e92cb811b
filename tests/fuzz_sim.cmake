# Fuzzing the simulator's input parsers: scenario INI files (sim/src/scenario.c) and measured
# data CSV (sim/src/simdata.c). Same pattern as tests/fuzz.cmake:
#
# Always: fuzz_scenario_replay and fuzz_simdata_replay, plain main()s that run every corpus file
# through the harness (ctest label `fuzz`, any compiler).
# With -DMGX_FUZZ=ON and clang: the libFuzzer binaries fuzz_scenario and fuzz_simdata, plus a
# 20 s ctest run of each (label `fuzz`). New inputs go to the build tree, never into the source
# corpus; grow the committed corpus by hand with -merge=1 (see tests/fuzz/README.md).
set(MGX_FUZZ_SIM_DIR ${CMAKE_CURRENT_SOURCE_DIR}/fuzz)
set(MGX_FUZZ_SIM_SRC
  ${PROJECT_SOURCE_DIR}/sim/src/scenario.c
  ${PROJECT_SOURCE_DIR}/sim/src/simdata.c
  ${PROJECT_SOURCE_DIR}/sim/src/timegrid.c
  ${CMAKE_CURRENT_SOURCE_DIR}/fuzz/sim_fuzz_check.c)

foreach(parser scenario simdata)
  set(_corpus ${MGX_FUZZ_SIM_DIR}/corpus/${parser})

  add_executable(fuzz_${parser}_replay
    ${MGX_FUZZ_SIM_DIR}/replay.c ${MGX_FUZZ_SIM_DIR}/fuzz_${parser}.c ${MGX_FUZZ_SIM_SRC})
  target_include_directories(fuzz_${parser}_replay PRIVATE
    ${PROJECT_SOURCE_DIR}/sim/include ${PROJECT_SOURCE_DIR}/sim/src)
  target_link_libraries(fuzz_${parser}_replay PRIVATE
    mgx_market mgx_strategy mgx_options PkgConfig::INIH ${MATH_LIBRARY})
  add_test(NAME fuzz_${parser}_replay COMMAND fuzz_${parser}_replay ${_corpus})
  set_tests_properties(fuzz_${parser}_replay PROPERTIES LABELS fuzz)

  if(MGX_FUZZ AND CMAKE_C_COMPILER_ID MATCHES "Clang")
    # The parser sources are compiled into the fuzzer so that they carry the coverage
    # instrumentation libFuzzer steers by.
    set(_flags -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all
      -fno-omit-frame-pointer)
    add_executable(fuzz_${parser} ${MGX_FUZZ_SIM_DIR}/fuzz_${parser}.c ${MGX_FUZZ_SIM_SRC})
    target_include_directories(fuzz_${parser} PRIVATE
      ${PROJECT_SOURCE_DIR}/sim/include ${PROJECT_SOURCE_DIR}/sim/src)
    target_compile_options(fuzz_${parser} PRIVATE ${_flags})
    target_link_options(fuzz_${parser} PRIVATE ${_flags})
    target_link_libraries(fuzz_${parser} PRIVATE
      mgx_market mgx_strategy mgx_options PkgConfig::INIH ${MATH_LIBRARY})

    set(_out ${CMAKE_CURRENT_BINARY_DIR}/fuzz/${parser})
    file(MAKE_DIRECTORY ${_out})
    add_test(NAME fuzz_${parser}_run
      COMMAND fuzz_${parser} -max_total_time=20 -timeout=10 -rss_limit_mb=2048
        -dict=${MGX_FUZZ_SIM_DIR}/${parser}.dict
        -print_final_stats=1 -artifact_prefix=${_out}/ ${_out} ${_corpus})
    set_tests_properties(fuzz_${parser}_run PROPERTIES LABELS fuzz TIMEOUT 60)
  endif()
endforeach()

# `mgx sim` end to end on the measured Ausgrid data (skips when ../shared/data lacks it).
find_program(MGX_AWK NAMES awk mawk gawk REQUIRED)
add_executable(test_sim_ausgrid integration/test_sim_ausgrid.c integration/ausgrid_raw.c)
target_link_libraries(test_sim_ausgrid PRIVATE mgx_options PkgConfig::CMOCKA PkgConfig::JANSSON
  ${MATH_LIBRARY})
target_compile_definitions(test_sim_ausgrid PRIVATE
  MGX_SOURCE_DIR="${PROJECT_SOURCE_DIR}" MGX_BINARY_DIR="${PROJECT_BINARY_DIR}"
  MGX_SHARED_DATA_DIR="${MGX_SHARED_DATA_DIR}" MGX_AWK="${MGX_AWK}")
add_dependencies(test_sim_ausgrid mgx)
add_test(NAME test_sim_ausgrid COMMAND test_sim_ausgrid $<TARGET_FILE:mgx>)
set_tests_properties(test_sim_ausgrid PROPERTIES LABELS integration TIMEOUT 300)
