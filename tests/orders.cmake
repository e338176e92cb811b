# Orders area: key files, signed order messages and receipts, admission rules, the participant
# registry, the verify pool, `mgx keygen` / `mgx participant`, and the order JSON fuzz harness.
set(MGX_ORDERS_TEST_DIR ${CMAKE_CURRENT_SOURCE_DIR}/orders)
add_library(mgx_orders_fixture STATIC orders/orders_fixture.c)
target_include_directories(mgx_orders_fixture PUBLIC orders ${PROJECT_SOURCE_DIR}/controller/src)
target_link_libraries(mgx_orders_fixture PUBLIC mgx_controller PRIVATE mgx_options)

function(mgx_orders_test name label)
  mgx_test(${name} ${label} ${ARGN} LIBS mgx_orders_fixture mgx_controller PkgConfig::SODIUM
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
