# The MQTT bus adapter, the reading outbox, bus payloads, Home Assistant discovery, the daemon
# config loader and `mgx meter` (controller/src/bus.c, outbox.c, payload.c, ha_discovery.c,
# config.c, cmd_meter.c). Integration tests start their own mosquitto on a free loopback port.
set(MGX_CTL_SRC ${PROJECT_SOURCE_DIR}/controller/src)

add_library(mgx_test_recorder STATIC bus/recorder.c)
target_include_directories(mgx_test_recorder PUBLIC bus)
target_link_libraries(mgx_test_recorder PRIVATE mgx_options PkgConfig::MOSQUITTO Threads::Threads)

mgx_test(test_bus_client integration bus/test_bus_client.c
  LIBS mgx_controller mgx_test_support mgx_test_recorder PkgConfig::MOSQUITTO)
target_include_directories(test_bus_client PRIVATE ${MGX_CTL_SRC})
set_tests_properties(test_bus_client PROPERTIES TIMEOUT 120)

mgx_test(test_payload unit bus/test_payload.c LIBS mgx_controller)
target_include_directories(test_payload PRIVATE ${MGX_CTL_SRC})
