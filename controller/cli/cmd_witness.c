/*
 * `mgx witness CONFIG [--once]`: runs a witness of the community ledger (witness/witness.h,
 * docs/witness.md). The shell: reads the clock, loops until SIGINT/SIGTERM, prints each step.
 */
#define _POSIX_C_SOURCE 200809L
#include "cli/cli.h"

#include "bus/bus.h"
#include "common/file.h"
#include "common/stop_signal.h"
#include "common/wall_clock.h"
#include "witness/witness.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char USAGE[] =
    "usage: mgx witness CONFIG [--once]\n"
    "\n"
    "Follows the community ledger named in CONFIG's [witness] section (read-only), audits\n"
    "every block, checks that each new checkpoint extends the one it cosigned before and\n"
    "cosigns it (C2SP tlog-cosignature v1). --once: one step, then exit.\n"
    "\n"
    "Exit status (--once): 0 cosigned, unchanged or empty ledger; 1 refused or failed;\n"
    "2 usage. Without --once it runs until SIGINT/SIGTERM, refusing (and saying so) as long\n"
    "as the ledger is not an extension. With a [bus] section it also publishes its cosigned\n"
    "checkpoint, retained, on mgx/v1/<community>/ledger/cosigned/<client_id> (--once: waits\n"
    "up to 30 s for the broker's acknowledgement). See docs/witness.md.\n";

/* Publishing the out file on the bus, when the config has [bus]. */
typedef struct {
    bus_client *bus;
    char topic[BUS_TOPIC_MAX];
    const char *out;
    int want;   /* the out file changed (or was never published) */
    int failed; /* the last publish was not acknowledged */
    int sent;   /* something was published */
} publisher;

static void published(void *arg, int status)
{
    publisher *p = arg;
    if (status != BUS_OK) {
        p->want = 1;
        p->failed = 1;
    }
}

/* Publishes the out file, retained, QoS 1, when it is wanted and the client is connected. */
static void publish_out(publisher *p)
{
    if (!p->bus || !p->want || !bus_connected(p->bus))
        return;
    char *text = NULL;
    size_t len = 0;
    if (ctl_read_file(p->out, STL_NOTE_MAX + STL_COSIG_LINE_MAX, &text, &len) != 0) {
        p->want = 0; /* nothing cosigned yet */
        return;
    }
    p->failed = 0;
    if (bus_publish(p->bus, p->topic, text, len, 1, true, published, p) == BUS_OK) {
        p->want = 0;
        p->sent = 1;
    }
    free(text);
}

/* Runs the bus for up to ms milliseconds (or sleeps without one), stopping early on *stop. */
static void wait_ms(publisher *p, int64_t ms, volatile sig_atomic_t *stop)
{
    for (int64_t t = 0; t < ms && !(stop && *stop); t += 100) {
        if (p->bus) {
            bus_loop(p->bus, 100);
            publish_out(p);
        } else {
            struct timespec ts = {0, 100 * 1000 * 1000};
            nanosleep(&ts, NULL);
        }
    }
}

int ctl_cmd_witness(int argc, char **argv)
{
    const char *path = NULL;
    int once = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--once") == 0)
            once = 1;
        else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            fputs(USAGE, stdout);
            return CTL_EXIT_OK;
        } else if (argv[i][0] == '-' || path) {
            fprintf(stderr, "mgx witness: unexpected argument '%s'\n%s", argv[i], USAGE);
            return CTL_EXIT_USAGE;
        } else
            path = argv[i];
    }
    if (!path) {
        fputs(USAGE, stderr);
        return CTL_EXIT_USAGE;
    }
    if (sodium_init() < 0) {
        fputs("mgx witness: libsodium failed to initialise\n", stderr);
        return CTL_EXIT_FAILURE;
    }
    ctl_witness_config c;
    char err[2048];
    if (ctl_witness_config_load(path, &c, err, sizeof err) != CFG_OK) {
        fprintf(stderr, "mgx witness: %s\n", err);
        return CTL_EXIT_FAILURE;
    }
    ctl_witness *w = NULL;
    publisher pub = {.out = c.out, .want = 1};
    int rc = CTL_EXIT_FAILURE;
    if (ctl_witness_new(&c, &w, err, sizeof err) != CTL_WITNESS_OK) {
        fprintf(stderr, "mgx witness: %s\n", err);
        goto out;
    }
    if (c.bus.line) {
        bus_config bc;
        cfg_bus_config(&c.bus, &bc);
        int berr = 0;
        if (ctl_witness_topic(c.bus.community, c.bus.client_id, pub.topic, sizeof pub.topic) !=
                CTL_WITNESS_OK ||
            !(pub.bus = bus_new(&bc, NULL, NULL, NULL, &berr)) || bus_start(pub.bus) != BUS_OK) {
            fprintf(stderr, "mgx witness: cannot start the bus client\n");
            goto out;
        }
    }
    volatile sig_atomic_t *stop = once ? NULL : ctl_stop_on_signals();
    int last = 99;
    rc = CTL_EXIT_OK;
    for (;;) {
        int s = ctl_witness_step(w, (uint64_t)(ctl_wall_ms() / 1000), err, sizeof err);
        /* a running witness reports what changed, not every unchanged poll */
        if (once || s != last || s == CTL_WITNESS_COSIGNED)
            fprintf(s < 0 ? stderr : stdout, "mgx witness: %s\n", err);
        fflush(stdout);
        last = s;
        if (s == CTL_WITNESS_COSIGNED)
            pub.want = 1;
        if (once) {
            rc = s < 0 ? CTL_EXIT_FAILURE : CTL_EXIT_OK;
            break;
        }
        wait_ms(&pub, c.poll_s * 1000, stop);
        if (*stop)
            break;
    }
    if (once && pub.bus && rc == CTL_EXIT_OK) {
        /* one step from a timer: publish and wait for the broker's acknowledgement (30 s) */
        for (int t = 0; t < 300 && (pub.want || bus_pending(pub.bus) > 0); t++) {
            bus_loop(pub.bus, 100);
            publish_out(&pub);
        }
        if (pub.want || pub.failed || bus_pending(pub.bus) > 0) {
            fprintf(stderr, "mgx witness: %s: not published (no broker acknowledgement)\n",
                    pub.topic);
            rc = CTL_EXIT_FAILURE;
        } else if (pub.sent)
            printf("mgx witness: published on %s\n", pub.topic);
    }
out:
    if (pub.bus) {
        bus_stop(pub.bus, 2000);
        bus_free(pub.bus);
    }
    ctl_witness_free(w);
    ctl_witness_config_clear(&c);
    return rc;
}
