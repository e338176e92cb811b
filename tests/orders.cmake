# Orders area: key files, signed order messages and receipts, admission rules, the participant
# registry, the verify pool, `mgx keygen` / `mgx participant`, and the order JSON fuzz harness.
set(MGX_ORDERS_TEST_DIR ${CMAKE_CURRENT_SOURCE_DIR}/orders)
add_library(mgx_orders_fixture STATIC orders/orders_fixture.c)
target_include_directories(mgx_orders_fixture PUBLIC orders ${PROJECT_SOURCE_DIR}/controller)
target_link_libraries(mgx_orders_fixture PUBLIC mgx_ctl_cli PRIVATE mgx_options)

function(mgx_orders_test name label)
  mgx_test(${name} ${label} ${ARGN} LIBS mgx_orders_fixture mgx_ctl_cli PkgConfig::SODIUM
    PkgConfig::SQLITE PkgConfig::JANSSON Threads::Threads)
endfunction()

mgx_orders_test(test_order_msg unit orders/test_order_msg.c)
mgx_orders_test(test_keys unit orders/test_keys.c)
target_link_libraries(test_keys PRIVATE mgx_test_support)
mgx_orders_test(test_admit unit orders/test_admit.c)
mgx_orders_test(test_registry unit orders/test_registry.c)
target_link_libraries(test_registry PRIVATE mgx_test_support)
mgx_orders_test(test_verify_pool unit orders/test_verify_pool.c)
mgx_orders_test(test_cli_keys integration orders/test_cli_keys.c)
target_link_libraries(test_cli_keys PRIVATE mgx_test_support)
add_dependencies(test_cli_keys mgx)
set_tests_properties(test_cli_keys PROPERTIES ENVIRONMENT "MGX_BIN=$<TARGET_FILE:mgx>")
mgx_orders_test(test_order_doc unit orders/test_order_doc.c)
# The one id rule (controller/src/ident.h) across bus, meters, orders, registry, the CLI and
# the broker credential script.
mgx_orders_test(test_ident unit orders/test_ident.c)
target_link_libraries(test_ident PRIVATE mgx_test_support mgx_meters)
mgx_orders_test(test_ident_cli integration orders/test_ident_cli.c)
target_link_libraries(test_ident_cli PRIVATE mgx_test_support)
add_dependencies(test_ident_cli mgx)
set_tests_properties(test_ident_cli PROPERTIES ENVIRONMENT "MGX_BIN=$<TARGET_FILE:mgx>")

# Fuzzing the order and receipt decoders (same pattern as tests/fuzz.cmake): the corpus replay
# always, the libFuzzer binary and a short run with -DMGX_FUZZ=ON under clang.
set(MGX_ORDER_FUZZ_CORPUS ${CMAKE_CURRENT_SOURCE_DIR}/fuzz/corpus/order_msg)
add_executable(fuzz_order_msg_replay fuzz/replay.c fuzz/fuzz_order_msg.c)
target_include_directories(fuzz_order_msg_replay PRIVATE fuzz ${PROJECT_SOURCE_DIR}/controller)
target_link_libraries(fuzz_order_msg_replay PRIVATE mgx_ctl_cli mgx_options PkgConfig::JANSSON
  PkgConfig::SODIUM)
add_test(NAME fuzz_order_msg_replay COMMAND fuzz_order_msg_replay ${MGX_ORDER_FUZZ_CORPUS})
set_tests_properties(fuzz_order_msg_replay PROPERTIES LABELS fuzz)

if(MGX_FUZZ AND CMAKE_C_COMPILER_ID MATCHES "Clang")
  # The parsers are compiled into the fuzzer so they carry libFuzzer's coverage instrumentation.
  set(_ctl_src ${PROJECT_SOURCE_DIR}/controller)
  add_executable(fuzz_order_msg fuzz/fuzz_order_msg.c ${PROJECT_SOURCE_DIR}/controller/orders/order_msg.c
    ${PROJECT_SOURCE_DIR}/controller/orders/receipt.c ${PROJECT_SOURCE_DIR}/controller/common/ident.c ${PROJECT_SOURCE_DIR}/controller/common/errbuf.c)
  target_include_directories(fuzz_order_msg PRIVATE fuzz ${_ctl_src}
    ${PROJECT_SOURCE_DIR}/market/include)
  set(_ord_fuzz_flags -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all
    -fno-omit-frame-pointer)
  target_compile_options(fuzz_order_msg PRIVATE ${_ord_fuzz_flags})
  target_link_options(fuzz_order_msg PRIVATE ${_ord_fuzz_flags})
  target_link_libraries(fuzz_order_msg PRIVATE mgx_options PkgConfig::JANSSON PkgConfig::SODIUM)
  set(_ord_fuzz_out ${CMAKE_CURRENT_BINARY_DIR}/fuzz/order_msg)
  file(MAKE_DIRECTORY ${_ord_fuzz_out})
  add_test(NAME fuzz_order_msg_run
    COMMAND fuzz_order_msg -max_total_time=30 -timeout=10 -rss_limit_mb=2048
      -dict=${CMAKE_CURRENT_SOURCE_DIR}/fuzz/order_msg.dict -print_final_stats=1
      -artifact_prefix=${_ord_fuzz_out}/ ${_ord_fuzz_out} ${MGX_ORDER_FUZZ_CORPUS})
  set_tests_properties(fuzz_order_msg_run PROPERTIES LABELS fuzz TIMEOUT 90)
endif()
