/*
 * The daemon config loader: one INI file (libinih) per daemon, whose sections are handled by a
 * table of section handlers. bus/bus_config.h adds the shared [bus], [outbox] and
 * [homeassistant] sections; the meter daemon adds the meters library's [meter ...]/[map ...], the controller and the agent
 * add their own sections the same way. A key nobody claims, an unknown section, a repeated key,
 * a bad value or a line too long is an error "FILE:LINE: message"; nothing is half-loaded.
 *
 * Relative paths in values (password_file, tls_*, outbox path) are taken relative to the
 * config file's folder, so a config and its files can move together.
 *
 * A home may run its meter daemon and its agent from one file: [bus] is shared, each daemon
 * reads its own sections and skips the other's (cfg_others_add), and a section name no home
 * daemon owns is still an error in both (docs/meter-daemon.md, "One file for a home").
 *
 * Threading: a loader and the structs it fills belong to one thread.
 */
#ifndef MGX_CTL_CONFIG_H
#define MGX_CTL_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/ident.h"

enum {
    CFG_OK = 0,
    CFG_NOT_MINE = 1,  /* a handler's answer for a section it does not own */
    CFG_E_BAD = -1,    /* a bad file; the message names FILE:LINE */
    CFG_E_NOMEM = -2,
    CFG_E_IO = -3      /* cannot read the file */
};

#define CFG_MAX_HANDLERS 16
#define CFG_PATH_MAX 1024

/*
 * A section handler's key function. section is the text between the brackets ("bus",
 * "meter home-1"); key == NULL and value == NULL announce a new section header at `line`.
 * Returns CFG_OK, CFG_NOT_MINE (the loader asks the next handler), or a negative code with
 * the bare message (no file or line) in err.
 */
typedef int (*cfg_key_fn)(void *ctx, const char *section, const char *key, const char *value,
                          int line, char *err, size_t errlen);
/* Called once after the whole file; checks across keys. On error writes a complete message
 * (the loader passes the file name so the message can start "FILE:LINE: "). */
typedef int (*cfg_finish_fn)(void *ctx, const char *path, char *err, size_t errlen);

typedef struct cfg_loader cfg_loader;

cfg_loader *cfg_loader_new(void);
void cfg_loader_free(cfg_loader *l);

/* Adds a handler (asked in the order added). finish may be NULL. CFG_OK or CFG_E_NOMEM when
 * the table (CFG_MAX_HANDLERS) is full. */
int cfg_loader_add(cfg_loader *l, cfg_key_fn key, cfg_finish_fn finish, void *ctx);

/* Parses path and runs every finish function. CFG_OK, or an error with "FILE:LINE: message"
 * (or "FILE: message") in err. */
int cfg_load(cfg_loader *l, const char *path, char *err, size_t errlen);

/* As cfg_load, from len bytes of text (no NUL needed) named `name` in messages; relative
 * paths in values resolve against name's folder as if it were the file's path. For tests and
 * fuzzing; never reports CFG_E_IO itself (a handler reading a named file still may). */
int cfg_load_string(cfg_loader *l, const char *name, const char *text, size_t len, char *err,
                    size_t errlen);

/* While cfg_load runs: resolves a relative path against the config file's folder. */
int cfg_path(const cfg_loader *l, const char *value, char *out, size_t cap);

/* ---- value parsers for section handlers (messages name the key) ---- */
int cfg_parse_int(const char *key, const char *value, int64_t min, int64_t max, int64_t *out,
                  char *err, size_t errlen);
/* yes/no, true/false, on/off, 1/0 */
int cfg_parse_bool(const char *key, const char *value, bool *out, char *err, size_t errlen);
/* A string of 1..cap-1 bytes without control characters. */
int cfg_parse_str(const char *key, const char *value, char *out, size_t cap, char *err,
                  size_t errlen);
/* An id for a topic level (the rule of common/ident.h). */
int cfg_parse_id(const char *key, const char *value, char out[CTL_ID_MAX + 1], char *err,
                 size_t errlen);

/* ---- key bookkeeping for section handlers ---- */
/* The index of key in a NULL-terminated table, or -1. */
int cfg_key_index(const char *const *keys, const char *key);
/* Marks key number bit (< 64) as seen in *seen; a repeat is an error naming the key. */
int cfg_once(uint64_t *seen, unsigned bit, const char *key, char *err, size_t errlen);

/* ---- sections of the other daemon sharing a home's file ---- */
typedef enum {
    CFG_DAEMON_METER = 1, /* mgx meter: [outbox], [homeassistant], [meter ID], [map NAME] */
    CFG_DAEMON_AGENT = 2, /* mgx agent: [agent] */
    CFG_DAEMON_CONTROLLER = 3 /* mgx controller (not a home daemon): skips both kinds */
} cfg_daemon;

typedef struct {
    cfg_daemon self;  /* the daemon reading the file */
    int sections;     /* headers of the other daemon's sections skipped */
    int first_line;   /* line of the first of them, 0 if none */
} cfg_others;

/* Registers a handler that skips, unread, every section (and its keys) that another home
 * daemon owns, counting them in *o; the owner checks them when it reads the file. Sections no
 * home daemon owns stay unknown, so a typo in a section name is an error in every daemon. */
int cfg_others_add(cfg_loader *l, cfg_daemon self, cfg_others *o);

#endif
