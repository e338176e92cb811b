# Simulator engine tests (unit) and `mgx sim` end to end (integration).
mgx_test(test_sim_engine unit unit/test_sim_engine.c LIBS mgx_sim)
target_include_directories(test_sim_engine PRIVATE ${PROJECT_SOURCE_DIR}/sim/src)

add_executable(test_cli_sim integration/test_cli_sim.c)
target_link_libraries(test_cli_sim PRIVATE mgx_options PkgConfig::CMOCKA PkgConfig::JANSSON)
target_compile_definitions(test_cli_sim PRIVATE
  MGX_SOURCE_DIR="${PROJECT_SOURCE_DIR}" MGX_BINARY_DIR="${PROJECT_BINARY_DIR}")
add_test(NAME test_cli_sim COMMAND test_cli_sim $<TARGET_FILE:mgx>)
set_tests_properties(test_cli_sim PROPERTIES LABELS integration)
