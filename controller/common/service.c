/*
 * The sd_notify(3) datagram protocol, spoken directly (see service.h for why).
 */
#include "common/service.h"

#include <errno.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

static int64_t env_i64(const char *name)
{
    const char *v = getenv(name);
    if (!v || !*v)
        return -1;
    char *end = NULL;
    errno = 0;
    long long x = strtoll(v, &end, 10);
    return errno || *end || x < 0 ? -1 : (int64_t)x;
}

void ctl_service_init(ctl_service *s)
{
    memset(s, 0, sizeof *s);
    const char *p = getenv("NOTIFY_SOCKET");
    /* absolute paths and Linux abstract sockets ('@') only; anything else is not ours */
    if (p && (p[0] == '/' || p[0] == '@') && strlen(p) < sizeof s->path)
        snprintf(s->path, sizeof s->path, "%s", p);
    int64_t pid = env_i64("WATCHDOG_PID");
    int64_t usec = env_i64("WATCHDOG_USEC");
    if (usec > 0 && (pid < 0 || pid == (int64_t)getpid()))
        s->watchdog_ms = usec / 1000 > 0 ? usec / 1000 : 1;
}

int ctl_service_notify(const ctl_service *s, const char *state)
{
    if (!s->path[0])
        return 0;
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    size_t n = strlen(s->path);
    memcpy(sa.sun_path, s->path, n);
    if (sa.sun_path[0] == '@')
        sa.sun_path[0] = '\0'; /* abstract namespace: the address is not NUL-terminated */
    socklen_t len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n);
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    ssize_t w = sendto(fd, state, strlen(state), MSG_NOSIGNAL, (struct sockaddr *)&sa, len);
    int saved = errno;
    close(fd);
    errno = saved;
    return w < 0 ? -1 : 0;
}

void ctl_service_tick(ctl_service *s, int64_t now_ms)
{
    if (!s->path[0] || s->watchdog_ms <= 0)
        return;
    if (s->last_ping_ms != 0 && now_ms - s->last_ping_ms < s->watchdog_ms / 2)
        return;
    s->last_ping_ms = now_ms;
    (void)ctl_service_notify(s, "WATCHDOG=1");
}
