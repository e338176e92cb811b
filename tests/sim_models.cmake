# Unit tests of the simulator's physical models (solar geometry, PV, household load).
foreach(model solar pv load)
  if(EXISTS ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_sim_${model}.c)
    mgx_test(test_sim_${model} unit unit/test_sim_${model}.c LIBS mgx_sim ${MATH_LIBRARY})
    target_include_directories(test_sim_${model} PRIVATE ${PROJECT_SOURCE_DIR}/sim/src)
  endif()
endforeach()
