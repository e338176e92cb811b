/*
 * Internal: the dashboard's static files (controller/web/assets/, and the chart library when the
 * build found it in tests/web/node_modules), embedded into the binary at build time by
 * cmake/MgxEmbed.cmake, so `mgx web` needs no install folder and the pages load nothing from
 * the internet.
 */
#ifndef MGX_WEB_ASSETS_H
#define MGX_WEB_ASSETS_H

#include <stddef.h>

typedef struct {
    const char *path; /* URL path, "/app.js" */
    const char *type; /* Content-Type */
    const unsigned char *data;
    size_t len;
} web_asset;

extern const web_asset WEB_ASSETS[];
extern const size_t WEB_N_ASSETS;

#endif
