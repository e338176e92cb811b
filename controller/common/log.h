/*
 * Internal: the one log facility of the daemons (mgx controller, meter, agent, sim
 * --serve-modbus) and of the modules they run (bus, outbox, settlement, Solana). A line is one
 * event:
 *
 *   mgx NAME LEVEL: message            stderr is a terminal, a file or a pipe
 *   <P>mgx NAME: message               stderr is the systemd journal (JOURNAL_STREAM names it)
 *
 * P is the syslog priority of the level (3 error, 4 warning, 6 info, 7 debug), which journald
 * strips and keeps as the entry's priority (`journalctl -p warning`), so the level is not
 * repeated in the text. Line breaks in a message become spaces: one event stays one line.
 *
 * A ctl_log is a plain value the caller owns (no heap, no global state); a library-style module
 * that takes a log callback (bus_config.log, outbox_config.log) is handed ctl_log_sink with a
 * ctl_log as its user pointer, so its lines come out in the daemon's name and format.
 * Thread-safety: a ctl_log is only read; each line is written with one stdio call, so lines
 * from threads do not interleave.
 */
#ifndef MGX_CTL_LOG_H
#define MGX_CTL_LOG_H

#include <stdarg.h>
#include <stdbool.h>

/* Levels, most severe first: a logger writes the lines at or above (<=) its level. */
enum { CTL_LOG_ERROR = 0, CTL_LOG_WARN = 1, CTL_LOG_INFO = 2, CTL_LOG_DEBUG = 3 };

/* A log callback: one call per event; msg has no trailing newline and never contains secrets. */
typedef void (*ctl_log_fn)(void *user, int level, const char *msg);

typedef struct {
    const char *name; /* "controller", "meter": the line starts "mgx NAME" (static storage) */
    int level;        /* CTL_LOG_*: the highest level written */
    ctl_log_fn sink;  /* NULL: stderr as above; else every line that passes the level goes here */
    void *user;       /* passed to sink */
} ctl_log;

/* Whether a line at level would be written: test this before computing what only a log line
 * needs (ctl_logf itself tests it before formatting). lg may be NULL (nothing is written). */
static inline bool ctl_log_on(const ctl_log *lg, int level)
{
    return lg && level <= lg->level;
}

/* Writes one event (formatted like printf) if the level passes. Messages longer than 1 KiB are
 * cut. */
__attribute__((format(printf, 3, 4))) void ctl_logf(const ctl_log *lg, int level, const char *fmt,
                                                    ...);
__attribute__((format(printf, 3, 0))) void ctl_vlogf(const ctl_log *lg, int level, const char *fmt,
                                                     va_list ap);

/* A ctl_log_fn that writes msg through the ctl_log user points at (user: const ctl_log *). */
void ctl_log_sink(void *user, int level, const char *msg);

/* The name of a level: "error", "warn", "info", "debug". */
const char *ctl_log_level_name(int level);

#endif
