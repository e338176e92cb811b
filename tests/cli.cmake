# End-to-end tests of the `mgx` CLI (label `integration`): the real binary runs on the books in
# tests/data/orders/; its path reaches the test through $MGX_BIN.
mgx_test(test_cli_market integration integration/test_cli_market.c LIBS PkgConfig::JANSSON)
target_compile_definitions(test_cli_market PRIVATE MGX_EXPECTED_VERSION="${PROJECT_VERSION}")
add_dependencies(test_cli_market mgx)
set_tests_properties(test_cli_market PROPERTIES ENVIRONMENT "MGX_BIN=$<TARGET_FILE:mgx>")
