/*
 * `mgx controller` under a service manager (label integration): the test plays systemd's side
 * of sd_notify(3) with a real AF_UNIX datagram socket in NOTIFY_SOCKET and WATCHDOG_USEC set,
 * starts the real binary against a real mosquitto, and checks what a Type=notify unit with
 * WatchdogSec= relies on: READY=1 once the daemon is up, WATCHDOG=1 again and again while it
 * runs (within a generous deadline, never a count per time window), STOPPING=1 on SIGTERM and
 * a clean exit. A second run with WATCHDOG_PID naming another process must send no watchdog
 * pings (the variable was meant for someone else).
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "broker.h"
#include "common/wall_clock.h"
#include "homes.h"

#define COMMUNITY   "notifyville"
#define DEADLINE_MS 60000

/* The manager's socket, bound at path. */
static int manager_socket(const char *path)
{
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    assert_true(strlen(path) < sizeof sa.sun_path);
    strcpy(sa.sun_path, path);
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    return fd;
}

/* Waits up to the deadline for a datagram equal to want; counts the WATCHDOG=1 seen on the
 * way. Returns 1 when want arrived. */
static int wait_for(int fd, const char *want, int64_t deadline, int *pings)
{
    for (;;) {
        int64_t left = deadline - ctl_wall_ms();
        if (left <= 0)
            return 0;
        struct pollfd p = {fd, POLLIN, 0};
        if (poll(&p, 1, (int)(left > 1000 ? 1000 : left)) <= 0)
            continue;
        char buf[256];
        ssize_t n = recv(fd, buf, sizeof buf - 1, 0);
        if (n <= 0)
            continue;
        buf[n] = '\0';
        if (strcmp(buf, "WATCHDOG=1") == 0 && pings)
            (*pings)++;
        if (strcmp(buf, want) == 0)
            return 1;
    }
}

static void run(const char *watchdog_pid, int want_pings)
{
    const char *bin = getenv("MGX_BIN");
    assert_non_null(bin);
    tst_broker *br = tst_broker_start(NULL);
    assert_non_null(br);
    char db_path[TST_CTL_PATH_MAX], conf[TST_CTL_PATH_MAX], log[TST_CTL_PATH_MAX];
    char anchor[64], sock[TST_CTL_PATH_MAX + 16];
    char *dir = tst_controller_dir("notify", db_path, conf, log);
    fclose(tst_controller_config(conf, tst_broker_port(br), COMMUNITY, db_path, -1));
    snprintf(sock, sizeof sock, "%s/notify.sock", dir);
    int fd = manager_socket(sock);
    tst_sim_clock(anchor, sizeof anchor);

    setenv("NOTIFY_SOCKET", sock, 1);
    setenv("WATCHDOG_USEC", "200000", 1); /* a ping at least every 100 ms */
    if (watchdog_pid)
        setenv("WATCHDOG_PID", watchdog_pid, 1);
    pid_t ctl = tst_controller_start(bin, conf, anchor, log, NULL);
    unsetenv("NOTIFY_SOCKET");
    unsetenv("WATCHDOG_USEC");
    unsetenv("WATCHDOG_PID");

    int pings = 0;
    assert_true(wait_for(fd, "READY=1", ctl_wall_ms() + DEADLINE_MS, &pings));
    if (want_pings) {
        /* three pings in a row prove the loop keeps pinging, whatever the machine's speed */
        for (int i = 0; i < 3; i++)
            assert_true(wait_for(fd, "WATCHDOG=1", ctl_wall_ms() + DEADLINE_MS, NULL));
    } else {
        tst_sleep_ms(1000); /* ten periods: a ping would have come */
    }
    tst_controller_stop(ctl); /* SIGTERM; exit status 0 checked */
    assert_true(wait_for(fd, "STOPPING=1", ctl_wall_ms() + 5000, &pings));
    if (!want_pings)
        assert_int_equal(pings, 0);
    close(fd);
    tst_broker_free(br);
    tst_rmtree(dir);
    free(dir);
}

static void test_ready_watchdog_stopping(void **state)
{
    (void)state;
    run(NULL, 1);
}

static void test_watchdog_for_another_pid_is_ignored(void **state)
{
    (void)state;
    run("1", 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ready_watchdog_stopping),
        cmocka_unit_test(test_watchdog_for_another_pid_is_ignored),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
