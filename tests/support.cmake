# Test support shared by the integration tests: a private mosquitto broker on loopback
# (support/broker.[ch]). Tests link mgx_test_support.
add_library(mgx_test_support STATIC support/broker.c)
target_include_directories(mgx_test_support PUBLIC support)
target_link_libraries(mgx_test_support PRIVATE mgx_options)
