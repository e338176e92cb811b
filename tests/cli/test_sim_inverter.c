/*
 * `mgx sim --serve-modbus` as a battery inverter: the battery home of tests/cli/battery-night.ini
 * gets a SunSpec model 124 device (its address in --inverter-list). A child process plays the
 * home agent: it writes a 1,000 W charge setpoint through storage control (meters/storage_ctl.h)
 * with InOutWRte_RvrtTms 1800 s, over and over, and is killed with SIGKILL mid-run.
 *
 * The clock runs 3,600 x real time from a start the test chooses, so interval k of the day plays
 * from start + 250 ms x k on the wall clock. The scenario starts at midnight: the first hours
 * have no PV, so at the meter (home_intervals.csv) grid - load is the battery alone: +250 Wh
 * (1,000 W for 15 minutes) in an interval that followed the setpoint, and <= 0 under the
 * inverter's own self-consumption mode (it only discharges into the load at night). Checks:
 *  - the setpoint is followed (at least 3 intervals at exactly +250 Wh while the child lives);
 *  - after the kill the inverter's watchdog gives control back: the run logs it, StorCtl_Mod
 *    reads 0 over Modbus, and every dark interval from 4 intervals after the kill (the revert
 *    time is 2 intervals) is self-consumption again.
 * Intervals are asserted on the simulated clock the run keeps, not on how much happens in a
 * wall-time window: a slow machine only moves which intervals the child reaches.
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "broker.h" /* tst_tmpdir, tst_rmtree, tst_sleep_ms */
#include "files.h"
#include "mgx/device_config.h"
#include "mgx/meter_error.h"
#include "mgx/modbus_device.h"
#include "mgx/storage_ctl.h"
#include "shell.h"

#define SPEED       3600
#define INTERVAL_MS 250 /* 15 minutes at SPEED */
#define MAX_K       96

static const char *mgx_bin;

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int file_has(const char *path, const char *text)
{
    char *e = tst_file_read(path, NULL);
    int found = e && strstr(e, text);
    free(e);
    return found;
}

static int wait_file_has(const char *path, const char *text, int timeout_ms)
{
    for (int t = 0; t < timeout_ms; t += 20) {
        if (file_has(path, text))
            return 1;
        tst_sleep_ms(20);
    }
    return 0;
}

static mtr_link *inverter_link(int port, int unit)
{
    mtr_device_config d;
    mtr_device_config_default(&d);
    snprintf(d.id, sizeof d.id, "inverter");
    d.profile = MTR_PROFILE_SUNSPEC;
    d.port = port;
    d.unit = unit;
    d.timeout_ms = 1000;
    d.retries = 1;
    return mtr_link_new(&d);
}

/* The child: writes the setpoint until killed. */
static void agent_child(int port, int unit)
{
    mtr_link *l = inverter_link(port, unit);
    mtr_storage_config cfg = {.kind = MTR_STORAGE_SUNSPEC, .unit = unit, .revert_s = 1800};
    mtr_storage_ctl *c = l ? mtr_storage_ctl_new(&cfg, l) : NULL;
    if (!c)
        _exit(2);
    for (;;) {
        mtr_storage_ctl_set(c, 1000, wall_ms());
        tst_sleep_ms(20);
    }
}

static void test_inverter_follows_and_reverts(void **state)
{
    (void)state;
    char *dir = tst_tmpdir("sim-inverter");
    assert_non_null(dir);
    char err_path[600], out_dir[600], list[600], start[32], csv[700];
    snprintf(err_path, sizeof err_path, "%s/stderr.txt", dir);
    snprintf(out_dir, sizeof out_dir, "%s/out", dir);
    snprintf(list, sizeof list, "%s/inverters.csv", dir);
    int64_t start_ms = wall_ms() + 1500;
    snprintf(start, sizeof start, "%lld", (long long)start_ms);
    pid_t sim = fork();
    assert_true(sim >= 0);
    if (sim == 0) {
        if (!freopen("/dev/null", "w", stdout) || !freopen(err_path, "w", stderr))
            _exit(126);
        execl(mgx_bin, mgx_bin, "sim", MGX_SOURCE_DIR "/tests/cli/battery-night.ini", "--out",
              out_dir, "--no-plots", "--home-intervals", "--serve-modbus", "127.0.0.1:0",
              "--clock-speed", "3600", "--clock-start", start, "--inverter-list", list,
              "--linger", "30", (char *)NULL);
        _exit(127);
    }
    assert_true(wait_file_has(err_path, "battery inverters", 20000));
    char *text = tst_file_read(list, NULL);
    assert_non_null(text);
    char home[80] = "";
    int port = 0, unit = 0;
    const char *row = strchr(text, '\n');
    assert_non_null(row);
    assert_int_equal(sscanf(row + 1, "%79[^,],127.0.0.1,%d,%d,10000,5000", home, &port, &unit),
                     3);
    free(text);

    pid_t agent = fork();
    assert_true(agent >= 0);
    if (agent == 0)
        agent_child(port, unit);
    /* let it steer about 8 intervals of the night, then kill it */
    int64_t kill_at = start_ms + 8 * INTERVAL_MS;
    while (wall_ms() < kill_at)
        tst_sleep_ms(20);
    kill(agent, SIGKILL);
    int64_t killed = wall_ms();
    waitpid(agent, NULL, 0);
    size_t k_kill = (size_t)((killed - start_ms) / INTERVAL_MS);

    /* the watchdog: logged, and StorCtl_Mod reads 0 */
    assert_true(wait_file_has(err_path, "back to its own mode", 30000));
    assert_true(wait_file_has(err_path, "scenario finished", 60000));
    mtr_link *l = inverter_link(port, unit);
    assert_non_null(l);
    uint16_t mod = 9;
    assert_int_equal(mtr_link_read(l, unit, 3, 40072 + MTR_124_STORCTL_MOD, 1, &mod, NULL),
                     MTR_OK);
    assert_int_equal(mod, 0);
    mtr_link_free(l);
    kill(sim, SIGTERM);
    assert_int_equal(tst_wait_exit(sim, 10000), 0);

    /* the meter's view of the night */
    snprintf(csv, sizeof csv, "%s/home_intervals.csv", out_dir);
    FILE *f = fopen(csv, "r");
    assert_non_null(f);
    char line[1024];
    size_t followed = 0, checked = 0;
    while (fgets(line, sizeof line, f)) {
        char name[80];
        size_t k;
        char when[40];
        long long load, pv, imp, exp;
        if (sscanf(line, "%79[^,],%zu,%39[^,],%lld,%lld,%lld,%lld", name, &k, when, &load, &pv,
                   &imp, &exp) != 7 ||
            strcmp(name, home) != 0 || pv != 0 || k >= MAX_K)
            continue;
        long long battery = imp - exp - load;
        if (k <= k_kill && battery == 250)
            followed++;
        if (k >= k_kill + 4 && k < 40) { /* dark and long after the kill */
            checked++;
            if (battery > 0)
                fail_msg("interval %zu (killed in %zu): battery %+lld Wh from the grid", k,
                         k_kill, battery);
        }
    }
    fclose(f);
    fprintf(stderr, "killed in interval %zu; %zu intervals followed the setpoint, %zu dark "
                    "intervals after the revert checked\n",
            k_kill, followed, checked);
    assert_true(followed >= 3);
    assert_true(checked >= 3);
    tst_rmtree(dir);
    free(dir);
}

int main(int argc, char **argv)
{
    mgx_bin = getenv("MGX_BIN");
    if (argc > 1)
        mgx_bin = argv[1];
    if (!mgx_bin) {
        fprintf(stderr, "test_sim_inverter: give the mgx binary (argv[1] or MGX_BIN)\n");
        return 2;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_inverter_follows_and_reverts),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
