# Settlement wired into the controller (controller/src/settle_*.c): the metered energy of an
# interval from stored readings (unit, hand-worked numbers), and `mgx controller` settling
# intervals on a real broker and real SQLite, killed with SIGKILL and restarted (integration).
set(MGX_CTL_SRC ${PROJECT_SOURCE_DIR}/controller)

mgx_test(test_settle_meter unit settle/test_settle_meter.c ${PROJECT_SOURCE_DIR}/controller/settle/settle_meter.c
  ${PROJECT_SOURCE_DIR}/controller/agent/agent_meter.c LIBS mgx_meters mgx_settlement)
target_include_directories(test_settle_meter PRIVATE ${MGX_CTL_SRC})

# `mgx controller` with a settlement key, killed with SIGKILL >= 20 times (real broker, SQLite).
mgx_test(test_settle_daemon integration settle/test_settle_daemon.c
  LIBS mgx_ctl_cli mgx_test_support PkgConfig::SQLITE PkgConfig::SODIUM PkgConfig::JANSSON)
target_include_directories(test_settle_daemon PRIVATE ${MGX_CTL_SRC})
add_dependencies(test_settle_daemon mgx)
set_tests_properties(test_settle_daemon PROPERTIES TIMEOUT 120
  ENVIRONMENT "MGX_BIN=$<TARGET_FILE:mgx>")

# Fuzz harnesses of the ledger's parsers: binary records (MGXT/MGXB), checkpoint notes and key
# lines, Solana transactions. Corpus replay in every build (label fuzz); with -DMGX_FUZZ=ON and
# clang the libFuzzer binaries and a 20 s run of each (conventions: tests/fuzz/README.md).
foreach(h ledger_records ledger_note sol_tx)
  add_executable(fuzz_${h}_replay fuzz/replay.c fuzz/fuzz_${h}.c)
  target_include_directories(fuzz_${h}_replay PRIVATE fuzz)
  target_link_libraries(fuzz_${h}_replay PRIVATE mgx_settlement mgx_options PkgConfig::SODIUM)
  add_test(NAME fuzz_${h}_replay
    COMMAND fuzz_${h}_replay ${CMAKE_CURRENT_SOURCE_DIR}/fuzz/corpus/${h})
  set_tests_properties(fuzz_${h}_replay PROPERTIES LABELS fuzz)
endforeach()
if(MGX_FUZZ AND CMAKE_C_COMPILER_ID MATCHES "Clang")
  # the settlement sources are compiled in, so they carry the coverage instrumentation
  get_target_property(_stl_srcs mgx_settlement SOURCES)
  get_target_property(_stl_dir mgx_settlement SOURCE_DIR)
  list(TRANSFORM _stl_srcs PREPEND ${_stl_dir}/)
  set(_stl_fuzz_flags -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all
    -fno-omit-frame-pointer)
  foreach(h ledger_records ledger_note sol_tx)
    add_executable(fuzz_${h} fuzz/fuzz_${h}.c ${_stl_srcs})
    target_include_directories(fuzz_${h} PRIVATE fuzz ${_stl_dir}/include ${_stl_dir}/src
      ${PROJECT_SOURCE_DIR}/market/include)
    target_compile_options(fuzz_${h} PRIVATE ${_stl_fuzz_flags})
    target_link_options(fuzz_${h} PRIVATE ${_stl_fuzz_flags})
    target_link_libraries(fuzz_${h} PRIVATE mgx_options mgx_market PkgConfig::SODIUM)
    set(_out ${CMAKE_CURRENT_BINARY_DIR}/fuzz/${h})
    file(MAKE_DIRECTORY ${_out})
    add_test(NAME fuzz_${h}_run
      COMMAND fuzz_${h} -max_total_time=20 -timeout=10 -rss_limit_mb=2048
        -print_final_stats=1 -artifact_prefix=${_out}/ ${_out}
        ${CMAKE_CURRENT_SOURCE_DIR}/fuzz/corpus/${h})
    set_tests_properties(fuzz_${h}_run PROPERTIES LABELS fuzz TIMEOUT 60)
  endforeach()
endif()
