# Tests of the market library's internals (linked against its private headers).
mgx_test(test_market_sort unit unit/test_market_sort.c LIBS mgx_market)
target_include_directories(test_market_sort PRIVATE ${PROJECT_SOURCE_DIR}/market/src)

# The engine packs (side, price, participant rank) into one 64-bit radix key; a band or a
# community too wide for that falls back to two stable sorts. No realistic book reaches the
# fallback, so these builds of the market sources pretend keys have only 30 bits and run the
# known answers and the property tests through it.
add_library(mgx_market_narrow_key STATIC
  ${PROJECT_SOURCE_DIR}/market/src/clear.c
  ${PROJECT_SOURCE_DIR}/market/src/sort.c
  ${PROJECT_SOURCE_DIR}/market/src/amount.c
  ${PROJECT_SOURCE_DIR}/market/src/order_csv.c)
target_include_directories(mgx_market_narrow_key
  PUBLIC ${PROJECT_SOURCE_DIR}/market/include PRIVATE ${PROJECT_SOURCE_DIR}/market/src)
target_compile_definitions(mgx_market_narrow_key PRIVATE MKT__KEY_BITS=30)
target_link_libraries(mgx_market_narrow_key PRIVATE mgx_options)
mgx_test(test_market_kat_two_sort unit unit/test_market_kat.c unit/market_check.c
  LIBS mgx_market_narrow_key)
mgx_test(test_market_props_two_sort unit unit/test_market_props.c unit/market_check.c
  LIBS mgx_market_narrow_key)
