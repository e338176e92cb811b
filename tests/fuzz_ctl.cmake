# Fuzzing the application shell's parsers (controller/src): the JSON files of `mgx ledger`
# (ledger_json.c) and the daemon config loader (config.c with the meter, agent and controller
# sections). Same pattern as tests/fuzz.cmake:
#
# Always: fuzz_<parser>_replay, a plain main() that runs every corpus file through the harness
# (ctest label `fuzz`, any compiler).
# With -DMGX_FUZZ=ON and clang: the libFuzzer binary fuzz_<parser>, its parser sources compiled
# in with coverage instrumentation, plus a 20 s ctest run (label `fuzz`). New inputs go to the
# build tree, never into the source corpus (tests/fuzz/README.md).
set(MGX_FUZZ_CTL_DIR ${CMAKE_CURRENT_SOURCE_DIR}/fuzz)
set(MGX_FUZZ_CTL_SRC_DIR ${PROJECT_SOURCE_DIR}/controller)
set(_mgx_ctl_fuzz_flags -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all
  -fno-omit-frame-pointer)

# A 20 s libFuzzer run of fuzz_${name} over its corpus (clang with MGX_FUZZ only).
function(mgx_ctl_fuzz_run name)
  set(_out ${CMAKE_CURRENT_BINARY_DIR}/fuzz/${name})
  file(MAKE_DIRECTORY ${_out})
  set(_dict)
  if(EXISTS ${MGX_FUZZ_CTL_DIR}/${name}.dict)
    set(_dict -dict=${MGX_FUZZ_CTL_DIR}/${name}.dict)
  endif()
  add_test(NAME fuzz_${name}_run
    COMMAND fuzz_${name} -max_total_time=20 -timeout=10 -rss_limit_mb=2048 ${_dict}
      -print_final_stats=1 -artifact_prefix=${_out}/ ${_out} ${MGX_FUZZ_CTL_DIR}/corpus/${name})
  set_tests_properties(fuzz_${name}_run PROPERTIES LABELS fuzz TIMEOUT 60)
endfunction()

# ---- ledger_json: settle input, inclusion and consistency proofs ----
add_executable(fuzz_ledger_json_replay ${MGX_FUZZ_CTL_DIR}/replay.c
  ${MGX_FUZZ_CTL_DIR}/fuzz_ledger_json.c)
target_include_directories(fuzz_ledger_json_replay PRIVATE ${MGX_FUZZ_CTL_DIR} ${MGX_FUZZ_CTL_SRC_DIR})
target_link_libraries(fuzz_ledger_json_replay PRIVATE mgx_ctl_cli mgx_options
  PkgConfig::SODIUM PkgConfig::SQLITE)
add_test(NAME fuzz_ledger_json_replay
  COMMAND fuzz_ledger_json_replay ${MGX_FUZZ_CTL_DIR}/corpus/ledger_json)
set_tests_properties(fuzz_ledger_json_replay PROPERTIES LABELS fuzz)
if(MGX_FUZZ AND CMAKE_C_COMPILER_ID MATCHES "Clang")
  add_executable(fuzz_ledger_json ${MGX_FUZZ_CTL_DIR}/fuzz_ledger_json.c
    ${PROJECT_SOURCE_DIR}/controller/settle/ledger_json.c ${PROJECT_SOURCE_DIR}/controller/common/errbuf.c)
  target_include_directories(fuzz_ledger_json PRIVATE ${MGX_FUZZ_CTL_DIR} ${MGX_FUZZ_CTL_SRC_DIR})
  target_compile_options(fuzz_ledger_json PRIVATE ${_mgx_ctl_fuzz_flags})
  target_link_options(fuzz_ledger_json PRIVATE ${_mgx_ctl_fuzz_flags})
  target_link_libraries(fuzz_ledger_json PRIVATE mgx_settlement mgx_market mgx_options
    PkgConfig::JANSSON PkgConfig::SODIUM PkgConfig::SQLITE)
  mgx_ctl_fuzz_run(ledger_json)
endif()

# ---- daemon_config: config.c with the meter, agent and controller sections ----
# The harness registers each daemon's handlers through its module (meterd, agent, daemon).
add_executable(fuzz_daemon_config_replay ${MGX_FUZZ_CTL_DIR}/replay.c
  ${MGX_FUZZ_CTL_DIR}/fuzz_daemon_config.c)
target_include_directories(fuzz_daemon_config_replay PRIVATE ${MGX_FUZZ_CTL_DIR}
  ${MGX_FUZZ_CTL_SRC_DIR})
target_link_libraries(fuzz_daemon_config_replay PRIVATE mgx_ctl_cli mgx_options
  PkgConfig::SODIUM PkgConfig::MOSQUITTO PkgConfig::SQLITE)
add_test(NAME fuzz_daemon_config_replay
  COMMAND fuzz_daemon_config_replay ${MGX_FUZZ_CTL_DIR}/corpus/daemon_config)
set_tests_properties(fuzz_daemon_config_replay PROPERTIES LABELS fuzz)
if(MGX_FUZZ AND CMAKE_C_COMPILER_ID MATCHES "Clang")
  # the parsers under test carry the coverage instrumentation; the rest links uninstrumented
  add_executable(fuzz_daemon_config ${MGX_FUZZ_CTL_DIR}/fuzz_daemon_config.c
    ${PROJECT_SOURCE_DIR}/controller/common/config.c ${PROJECT_SOURCE_DIR}/controller/agent/agent_config.c
    ${PROJECT_SOURCE_DIR}/controller/daemon/controller_config.c
    ${PROJECT_SOURCE_DIR}/controller/solana/settle_solana.c ${PROJECT_SOURCE_DIR}/meters/src/device_config.c)
  target_include_directories(fuzz_daemon_config PRIVATE ${MGX_FUZZ_CTL_DIR}
    ${MGX_FUZZ_CTL_SRC_DIR} ${PROJECT_SOURCE_DIR}/controller
    ${PROJECT_SOURCE_DIR}/meters/src)
  target_compile_options(fuzz_daemon_config PRIVATE ${_mgx_ctl_fuzz_flags})
  target_link_options(fuzz_daemon_config PRIVATE ${_mgx_ctl_fuzz_flags})
  target_link_libraries(fuzz_daemon_config PRIVATE mgx_ctl_cli mgx_options PkgConfig::INIH
    PkgConfig::SODIUM PkgConfig::MOSQUITTO PkgConfig::SQLITE PkgConfig::JANSSON)
  mgx_ctl_fuzz_run(daemon_config)
endif()
