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
