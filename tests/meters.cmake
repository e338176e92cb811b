# Tests of the meters library (meters/): pure decoders, counter filter, SunSpec chain and
# device config (label unit), the Modbus client and the poller against real libmodbus servers
# on loopback (label integration), and the register decoder fuzz harness (label fuzz).
add_library(mgx_test_modbus_sim STATIC meters/modbus_sim.c)
target_include_directories(mgx_test_modbus_sim PUBLIC meters)
target_link_libraries(mgx_test_modbus_sim PRIVATE mgx_options PkgConfig::MODBUS Threads::Threads
  PUBLIC mgx_test_support)

foreach(t regmap counter sunspec device_config)
  mgx_test(test_${t} unit meters/test_${t}.c LIBS mgx_meters)
endforeach()
target_link_libraries(test_device_config PRIVATE mgx_test_support)

foreach(t modbus_device poller)
  mgx_test(test_${t} integration meters/test_${t}.c LIBS mgx_meters mgx_test_modbus_sim
    Threads::Threads)
  set_tests_properties(test_${t} PROPERTIES TIMEOUT 60)
endforeach()
