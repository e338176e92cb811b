/*
 * Test support for the meters tests: a meters config from text, through a temporary file and
 * the real loader (mtr_config_load, so FILE:LINE errors and relative paths behave as in use).
 */
#ifndef MGX_TEST_METERS_CONFIG_TEXT_H
#define MGX_TEST_METERS_CONFIG_TEXT_H

#include "mgx/device_config.h"

/* The config the text loads to; a text that does not load fails the test (the loader's message
 * on stderr). Free with mtr_config_free. */
mtr_config *tst_meters_config(const char *text);

#endif
