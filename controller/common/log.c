/*
 * The daemons' log lines (see log.h): the level test, the formatting, and the choice between
 * the plain line and the journal's priority prefix.
 */
#define _POSIX_C_SOURCE 200809L
#include "common/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#define LOG_MSG_MAX 1024

/* A level outside the range is written as the nearest one. */
static int clamp_level(int level)
{
    return level < CTL_LOG_ERROR ? CTL_LOG_ERROR : level > CTL_LOG_DEBUG ? CTL_LOG_DEBUG : level;
}

const char *ctl_log_level_name(int level)
{
    static const char *const names[] = {"error", "warn", "info", "debug"};
    return names[clamp_level(level)];
}

/* systemd sets JOURNAL_STREAM=DEV:INODE for a service whose stderr is the journal; a child that
 * redirects stderr elsewhere inherits the variable, so the device and inode are compared too.
 * Checked per line (an fstat), not cached: logging is not on a hot path, and a cache would be
 * shared state between threads. */
static bool stderr_is_journal(void)
{
    const char *js = getenv("JOURNAL_STREAM");
    unsigned long long dev, ino;
    struct stat st;
    if (!js || sscanf(js, "%llu:%llu", &dev, &ino) != 2 || fstat(STDERR_FILENO, &st) != 0)
        return false;
    return (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino;
}

static void write_line(const char *name, int level, const char *msg)
{
    /* syslog priorities: LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG */
    static const int prio[] = {3, 4, 6, 7};
    char line[LOG_MSG_MAX + 64];
    int lv = clamp_level(level);
    int n = stderr_is_journal()
                ? snprintf(line, sizeof line, "<%d>mgx %s: ", prio[lv], name)
                : snprintf(line, sizeof line, "mgx %s %s: ", name, ctl_log_level_name(lv));
    if (n < 0)
        return;
    size_t at = (size_t)n < sizeof line ? (size_t)n : sizeof line - 1;
    for (const char *p = msg; *p && at < sizeof line - 2; p++)
        line[at++] = *p == '\n' || *p == '\r' ? ' ' : *p;
    line[at++] = '\n';
    line[at] = '\0';
    fputs(line, stderr);
}

static void emit(const ctl_log *lg, int level, const char *msg)
{
    if (lg->sink)
        lg->sink(lg->user, level, msg);
    else
        write_line(lg->name ? lg->name : "?", level, msg);
}

void ctl_vlogf(const ctl_log *lg, int level, const char *fmt, va_list ap)
{
    if (!ctl_log_on(lg, level))
        return;
    char msg[LOG_MSG_MAX];
    vsnprintf(msg, sizeof msg, fmt, ap);
    emit(lg, level, msg);
}

void ctl_logf(const ctl_log *lg, int level, const char *fmt, ...)
{
    if (!ctl_log_on(lg, level))
        return;
    va_list ap;
    va_start(ap, fmt);
    ctl_vlogf(lg, level, fmt, ap);
    va_end(ap);
}

void ctl_log_sink(void *user, int level, const char *msg)
{
    const ctl_log *lg = user;
    if (ctl_log_on(lg, level))
        emit(lg, level, msg);
}
