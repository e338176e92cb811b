/*
 * Test helper: reads the raw Ausgrid solar-home CSV (",GC,GG" header, one half hour a row) with
 * nothing but fgets and strtod, so the tests that check mgx against it share no code with mgx.
 */
#ifndef MGX_TESTS_AUSGRID_RAW_H
#define MGX_TESTS_AUSGRID_RAW_H

/* Fills gc and gg (average kW) for at most max_rows rows; returns the rows read, -1 if the file
 * cannot be opened. */
int ausgrid_read_raw(const char *path, double *gc, double *gg, int max_rows);

#endif
