# The home agent (mgx agent) and the community broker's security config (config/mosquitto/).
add_library(mgx_test_mqtt STATIC agent/mqtt_client.c agent/secure_broker.c)
target_include_directories(mgx_test_mqtt PUBLIC agent)
target_compile_definitions(mgx_test_mqtt PRIVATE MGX_SOURCE_DIR="${PROJECT_SOURCE_DIR}")
target_link_libraries(mgx_test_mqtt PUBLIC mgx_test_support PkgConfig::MOSQUITTO Threads::Threads
  PRIVATE mgx_options)

mgx_test(test_bus_acl integration agent/test_bus_acl.c LIBS mgx_test_mqtt)

# The pricing strategies (mgx_strategy): the checked API against the rules on GSL's taus2, as
# the simulator runs them (GSL for the reference generator).
mgx_test(test_strategy unit agent/test_strategy.c LIBS mgx_strategy PkgConfig::GSL)

# The agent's pure parts, linked against the controller's private headers.
foreach(t agent_meter agent_config)
  mgx_test(test_${t} unit agent/test_${t}.c LIBS mgx_ctl_cli mgx_test_support)
  target_include_directories(test_${t} PRIVATE ${PROJECT_SOURCE_DIR}/controller)
endforeach()

# `mgx agent` end to end against the shipped broker config, with a fake controller.
mgx_test(test_agent integration agent/test_agent.c
  LIBS mgx_ctl_cli mgx_test_mqtt PkgConfig::SQLITE PkgConfig::SODIUM)
target_include_directories(test_agent PRIVATE ${PROJECT_SOURCE_DIR}/controller)
set_tests_properties(test_agent PROPERTIES ENVIRONMENT "MGX_BIN=$<TARGET_FILE:mgx>" TIMEOUT 120)
add_dependencies(test_agent mgx)

# A home's one config file: mgx meter and mgx agent together from it (real broker, real
# simulated meter), and the same FILE:LINE refusals from both for the shared parts.
mgx_test(test_home_config integration agent/test_home_config.c
  LIBS mgx_ctl_cli mgx_meters mgx_test_mqtt)
target_include_directories(test_home_config PRIVATE ${PROJECT_SOURCE_DIR}/controller)
set_tests_properties(test_home_config PROPERTIES ENVIRONMENT "MGX_BIN=$<TARGET_FILE:mgx>"
  TIMEOUT 120)
add_dependencies(test_home_config mgx)
