# The interval-energy rule of the meters library (mgx/interval_energy.h): the counters at an
# interval boundary, known answers worked by hand (label unit).
mgx_test(test_interval_energy unit meters/test_interval_energy.c LIBS mgx_meters)
