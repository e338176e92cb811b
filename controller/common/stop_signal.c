/*
 * SIGINT/SIGTERM stop flag and SIGPIPE policy for the daemons (see stop_signal.h).
 */
#define _POSIX_C_SOURCE 200809L
#include "common/stop_signal.h"

#include <string.h>

static volatile sig_atomic_t stop_flag;

static void on_stop(int sig)
{
    (void)sig;
    stop_flag = 1;
}

volatile sig_atomic_t *ctl_stop_on_signals(void)
{
    stop_flag = 0;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    return &stop_flag;
}
