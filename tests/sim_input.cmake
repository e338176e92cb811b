# The simulator's inputs: scenario INI files (sim/src/scenario.c) and measured data
# (sim/src/simdata.c). The tests compile just those sources and the time grid, so they link
# only what they test (the market library for mkt_mechanism_parse, libinih; mgx_strategy for
# the strategy kinds a group names).
set(MGX_SIM_INPUT_SRC
  ${PROJECT_SOURCE_DIR}/sim/src/scenario.c
  ${PROJECT_SOURCE_DIR}/sim/src/simdata.c
  ${PROJECT_SOURCE_DIR}/sim/src/timegrid.c)
find_program(MGX_AWK NAMES awk mawk gawk REQUIRED)

function(mgx_sim_input_test name label src)
  mgx_test(${name} ${label} ${src} ${MGX_SIM_INPUT_SRC}
    LIBS mgx_market mgx_strategy PkgConfig::INIH ${MATH_LIBRARY})
  target_include_directories(${name} PRIVATE
    ${PROJECT_SOURCE_DIR}/sim/include ${PROJECT_SOURCE_DIR}/sim/src)
  target_compile_definitions(${name} PRIVATE MGX_AWK="${MGX_AWK}")
endfunction()

mgx_sim_input_test(test_scenario unit unit/test_scenario.c)
mgx_sim_input_test(test_simdata unit unit/test_simdata.c)
mgx_sim_input_test(test_ausgrid_data integration
  "integration/test_ausgrid_data.c;integration/ausgrid_raw.c")
