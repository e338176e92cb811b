# Warnings and sanitizers as one INTERFACE target that every mgx target links.
add_library(mgx_options INTERFACE)
target_compile_options(mgx_options INTERFACE
  -Wall -Wextra -Wconversion -Wsign-conversion -Wshadow -Wformat=2 -Wundef
  -Wstrict-prototypes -Wmissing-prototypes -Wcast-qual -Wpointer-arith
  -Wvla -Wnull-dereference -Wdouble-promotion)
if(MGX_WERROR)
  target_compile_options(mgx_options INTERFACE -Werror)
endif()
if(MGX_SANITIZE)
  target_compile_options(mgx_options INTERFACE
    -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer)
  target_link_options(mgx_options INTERFACE -fsanitize=address,undefined)
endif()
# Fuzzing: every library carries libFuzzer's coverage instrumentation, so a fuzz harness links
# the module libraries as they are (-fsanitize=fuzzer on the harness alone, tests/CMakeLists.txt)
# instead of compiling their sources again.
if(MGX_FUZZ AND CMAKE_C_COMPILER_ID MATCHES "Clang")
  target_compile_options(mgx_options INTERFACE -fsanitize=fuzzer-no-link)
  target_link_options(mgx_options INTERFACE -fsanitize=fuzzer-no-link)
  if(NOT MGX_SANITIZE)
    message(WARNING "MGX_FUZZ=ON without MGX_SANITIZE: the libraries the fuzzers link carry no "
      "AddressSanitizer/UBSan checks (CI turns both on)")
  endif()
endif()
