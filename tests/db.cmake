# The community database (controller/db): its migration from a file written by the release
# before PRAGMA user_version (the fixture in tests/data/db, made by make-fixture.sh there), a
# new file, files holding only some tables, and a file from a newer mgx.
mgx_test(test_db_migrate unit db/test_db_migrate.c
  LIBS mgx_ctl_daemon mgx_test_support PkgConfig::SQLITE)
