# Tests of the market library's internals (linked against its private headers).
mgx_test(test_market_sort unit unit/test_market_sort.c LIBS mgx_market)
target_include_directories(test_market_sort PRIVATE ${PROJECT_SOURCE_DIR}/market/src)
