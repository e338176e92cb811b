# Unit tests of the pure libraries: market clearing (known answers and properties), the orders
# CSV reader, imbalance settlement and meter readings. market_check.c is an independent model
# of the market rules that the clearing tests use as an oracle.
mgx_test(test_market_kat unit unit/test_market_kat.c unit/market_check.c LIBS mgx_market)
mgx_test(test_market_props unit unit/test_market_props.c unit/market_check.c LIBS mgx_market)
mgx_test(test_order_csv unit unit/test_order_csv.c LIBS mgx_market)
mgx_test(test_imbalance unit unit/test_imbalance.c LIBS mgx_settlement)
mgx_test(test_reading unit unit/test_reading.c LIBS mgx_meters)
