# Fuzzing the orders CSV reader and, through it, the clearing engine.
#
# Always: fuzz_order_csv_replay, a plain main() that runs every corpus file through the harness,
# registered as a ctest test with label `fuzz` (works with any compiler).
# With -DMGX_FUZZ=ON and clang: fuzz_order_csv, the libFuzzer binary, plus a short ctest run of
# it (label `fuzz`). New inputs it finds go to the build tree, never into the source corpus;
# to grow the committed corpus run it by hand and minimise with -merge=1 (see tests/fuzz/README.md).
set(MGX_FUZZ_DIR ${CMAKE_CURRENT_SOURCE_DIR}/fuzz)
set(MGX_FUZZ_CORPUS ${MGX_FUZZ_DIR}/corpus/order_csv)

add_executable(fuzz_order_csv_replay
  ${MGX_FUZZ_DIR}/replay.c
  ${MGX_FUZZ_DIR}/fuzz_order_csv.c
  ${MGX_FUZZ_DIR}/clear_check.c)
target_link_libraries(fuzz_order_csv_replay PRIVATE mgx_market mgx_options)
add_test(NAME fuzz_order_csv_replay COMMAND fuzz_order_csv_replay ${MGX_FUZZ_CORPUS})
set_tests_properties(fuzz_order_csv_replay PROPERTIES LABELS fuzz)

if(MGX_FUZZ)
  if(NOT CMAKE_C_COMPILER_ID MATCHES "Clang")
    message(WARNING "MGX_FUZZ=ON needs clang (libFuzzer); only the replay driver is built")
  else()
    # The market sources are compiled into the fuzzer itself so that they carry the coverage
    # instrumentation libFuzzer steers by; the mgx_market library stays uninstrumented.
    get_target_property(_mgx_market_srcs mgx_market SOURCES)
    get_target_property(_mgx_market_dir mgx_market SOURCE_DIR)
    list(TRANSFORM _mgx_market_srcs PREPEND ${_mgx_market_dir}/)
    add_executable(fuzz_order_csv
      ${MGX_FUZZ_DIR}/fuzz_order_csv.c
      ${MGX_FUZZ_DIR}/clear_check.c
      ${_mgx_market_srcs})
    target_include_directories(fuzz_order_csv PRIVATE
      ${_mgx_market_dir}/include ${_mgx_market_dir}/src)
    set(_mgx_fuzz_flags -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all
      -fno-omit-frame-pointer)
    target_compile_options(fuzz_order_csv PRIVATE ${_mgx_fuzz_flags})
    target_link_options(fuzz_order_csv PRIVATE ${_mgx_fuzz_flags})
    target_link_libraries(fuzz_order_csv PRIVATE mgx_options)

    # A short run seeded with the committed corpus; what it finds lands in the build tree.
    set(_mgx_fuzz_out ${CMAKE_CURRENT_BINARY_DIR}/fuzz/order_csv)
    file(MAKE_DIRECTORY ${_mgx_fuzz_out})
    add_test(NAME fuzz_order_csv_run
      COMMAND fuzz_order_csv -max_total_time=30 -timeout=10 -rss_limit_mb=2048
        -dict=${MGX_FUZZ_DIR}/order_csv.dict
        -print_final_stats=1 -artifact_prefix=${_mgx_fuzz_out}/ ${_mgx_fuzz_out}
        ${MGX_FUZZ_CORPUS})
    set_tests_properties(fuzz_order_csv_run PROPERTIES LABELS fuzz TIMEOUT 90)
  endif()
endif()
