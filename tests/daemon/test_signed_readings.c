/*
 * Signed readings end to end (issue 12, layer 5), through a real mosquitto started by the test:
 * the real `mgx meter` reads a simulated SDM630 over Modbus TCP and signs each reading with the
 * gateway key of its [signing] section; the real `mgx controller` verifies it against the key
 * registered with `mgx participant meter-key` and records its tier. Readings published raw by
 * anyone with broker access (here a plain MQTT client, as `mosquitto_pub` would) get tier 0:
 * unsigned, or signed with a key that is not the meter's (a forgery). With
 * [controller] min_attestation_tier = 1 the controller refuses those and still stores the
 * gateway's; with the default 0 it stores them at tier 0.
 */
#define _POSIX_C_SOURCE 200809L
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <sodium.h>
#include <sqlite3.h>

#include "broker.h"
#include "bus/payload.h"
#include "bus/reading_sig.h"
#include "files.h"
#include "mgx/meter_server.h"
#include "mqtt_client.h"
#include "shell.h"

static const char *bin(void)
{
    const char *b = getenv("MGX_BIN");
    return b ? b : MGX_BINARY_DIR "/mgx";
}

static int64_t real_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_REALTIME, &t);
    return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

typedef struct {
    char *dir;
    char db[600], ctl_conf[600], ctl_log[600], meter_conf[600], meter_log[600];
    tst_broker *br;
    mtr_server *srv;
    pid_t ctl, meter, meter3;
    tc_client *raw;
} fixture;

static pid_t spawn(const char *cmd, const char *conf, const char *log)
{
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        if (!freopen(log, "a", stderr))
            _exit(126);
        execl(bin(), "mgx", cmd, conf, (char *)NULL);
        _exit(127);
    }
    return pid;
}

static void write_ctl_conf(fixture *f, int min_tier)
{
    FILE *c = fopen(f->ctl_conf, "w");
    assert_non_null(c);
    fprintf(c,
            "[bus]\nhost = 127.0.0.1\nport = %d\nclient_id = controller\ncommunity = sig\n"
            "[controller]\ndb = %s\ninterval_s = 900\n%s",
            tst_broker_port(f->br), f->db,
            min_tier ? "min_attestation_tier = 1\n" : "");
    fclose(c);
}

/* Waits until the controller's retained status says online (again): its subscriptions are
 * acknowledged by then (bus.c), so what is published next reaches it. */
static void wait_online(fixture *f, size_t *from)
{
    tc_message m;
    int64_t until = real_ms() + 30000;
    while (real_ms() < until) {
        if (tc_wait_topic(f->raw, "mgx/v1/sig/status/controller", from, &m, 1000) &&
            strcmp(m.payload, "online") == 0)
            return;
    }
    fail_msg("the controller did not come online");
}

/* count of stored readings of meter with from <= ts_ms < to and the given tier (-1: no tier
 * row), in one query (the meter daemon keeps adding readings meanwhile) */
static int64_t count_range(const fixture *f, const char *meter, int64_t from, int64_t to,
                           int tier)
{
    sqlite3 *db;
    assert_int_equal(sqlite3_open_v2(f->db, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    sqlite3_busy_timeout(db, 5000);
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_prepare_v2(db,
                                        "SELECT count(*) FROM readings r LEFT JOIN reading_tiers t "
                                        "USING(meter_id, ts_ms) WHERE r.meter_id = ?1 AND "
                                        "r.ts_ms >= ?2 AND r.ts_ms < ?4 AND "
                                        "coalesce(t.tier, -1) = ?3",
                                        -1, &st, NULL),
                     SQLITE_OK);
    sqlite3_bind_text(st, 1, meter, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, from);
    sqlite3_bind_int(st, 3, tier);
    sqlite3_bind_int64(st, 4, to);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    int64_t n = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return n;
}

/* the same from `from` on */
static int64_t count_tier(const fixture *f, const char *meter, int64_t from, int tier)
{
    return count_range(f, meter, from, INT64_MAX, tier);
}

static int64_t count_at(const fixture *f, const char *meter, int64_t ts)
{
    int64_t n = 0;
    for (int t = -1; t <= 2; t++)
        n += count_range(f, meter, ts, ts + 1, t);
    return n;
}

/* Waits (generously) until at least want readings of meter from `from` on have tier. */
static void wait_tier(const fixture *f, const char *meter, int64_t from, int tier, int64_t want)
{
    int64_t until = real_ms() + 60000;
    while (count_tier(f, meter, from, tier) < want && real_ms() < until)
        tst_sleep_ms(100);
    assert_true(count_tier(f, meter, from, tier) >= want);
}

static void wait_log(const char *path, const char *needle, int count)
{
    int64_t until = real_ms() + 60000;
    for (;;) {
        char *text = tst_file_text_or_empty(path);
        int n = 0;
        for (const char *p = text ? text : ""; (p = strstr(p, needle)) != NULL; p++)
            n++;
        free(text);
        if (n >= count)
            return;
        if (real_ms() > until)
            fail_msg("%s: fewer than %d lines with '%s'", path, count, needle);
        tst_sleep_ms(100);
    }
}

static void publish_raw(fixture *f, const mtr_sample *s, const uint8_t *forger_sk)
{
    char body[BUS_JSON_MAX];
    int n = forger_sk ? bus_state_encode_signed(s, "home-1", forger_sk, body, sizeof body)
                      : bus_state_encode(s, body, sizeof body);
    assert_true(n > 0);
    char topic[128];
    snprintf(topic, sizeof topic, "mgx/v1/sig/meter/%s/state", s->meter_id);
    assert_int_equal(tc_publish(f->raw, topic, body, (size_t)n, 1, false, 5000), 0);
}

/* A published OCMF record (SAFE e.V. Transparenzsoftware, src/test/resources/xml/
 * test_ocmf_ebee_01.xml, as in tests/bus/test_ocmf.c) and its meter's key. */
static const char EBEE[] =
    "OCMF|{\"FV\":\"1.0\",\"GI\":\"Heinz_CSA\",\"GS\":\"\",\"GV\":\"1.6.0\",\"PG\":\"T28\",\"MV\":\"DZG\","
    "\"MM\":\"DVH4013\",\"MS\":\"000033022620\",\"MF\":\"\",\"IS\":true,\"IT\":\"ISO14443\",\"ID\":"
    "\"7bcf78ad\",\"RD\":[{\"TM\":\"2021-08-25T10:01:04,000+0200 I\",\"TX\":\"B\",\"RV\":7753,\"RI\":"
    "\"1-b:1.8.0\",\"RU\":\"Wh\",\"RT\":\"AC\",\"EF\":\"\",\"ST\":\"G\"}]}|{\"SD\":\"3045022100AA010A60"
    "9E2A6D5E5DAC54CB469FA4A430BFBADC0CDF5F82F5291A6C9CEACE9B022052E7ECC79DEF081C303703ABC67C07C4C"
    "FA842AF6EE21B12C1263C21E80D92FF\"}";
static const char EBEE_KEY[] =
    "3059301306072A8648CE3D020106082A8648CE3D0301070342000"
    "4E5CE2801D716BF55B71477CA666BE6A8B8994FEBBF05B04BC0AE7879A62AE77460A14335F3F30657DD7ADC4338"
    "398C837DD2DE52D8FCAAE78601D1476FE1C21F";

/* test_ocmf_keba_kcp30.xml and test_ocmf_keba_kcp30_fail.xml of the same folder: a KEBA KCP30
 * record, the same with its first time stamp changed (published as one that must fail), and
 * the wallbox's key. */
static const char KEBA[] =
    "OCMF|{\"FV\":\"1.0\",\"GI\":\"KEBA_KCP30\",\"GS\":\"17619300\",\"GV\":\"2.8.5\",\"PG\":\"T32\","
    "\"IS\":false,\"IL\":\"NONE\",\"IF\":[\"RFID_NONE\",\"OCPP_NONE\",\"ISO15118_NONE\",\"PLMN_NONE\"],"
    "\"IT\":\"NONE\",\"ID\":\"\",\"RD\":[{\"TM\":\"2019-08-13T10:03:15,000+0000 I\",\"TX\":\"B\","
    "\"EF\":\"\",\"ST\":\"G\",\"RV\":0.2596,\"RI\":\"1-b:1.8.0\",\"RU\":\"kWh\"},{\"TM\":"
    "\"2019-08-13T10:03:36,000+0000 R\",\"TX\":\"E\",\"EF\":\"\",\"ST\":\"G\",\"RV\":0.2597,\"RI\":"
    "\"1-b:1.8.0\",\"RU\":\"kWh\"}]}|{\"SD\":\"304502200E2F107C987A300AC1695CA89EA149A8CDFA16188AF"
    "0A33EE64B67964AA943F9022100889A72B6D65364BEA8562E7F6A0253157ACFF84FE4929A93B5964D23C4265699\"}";
static const char KEBA_KEY[] =
    "3059301306072A8648CE3D020106082A8648CE3D030107034200043AEEB45C392357820A58FDFB0857BD77ADA315"
    "85C61C430531DFA53B440AFBFDD95AC887C658EA55260F808F55CA948DF235C2108A0D6DC7D4AB1A5E1A7955BE";

static void publish_ocmf(fixture *f, const char *meter, const char *text, int64_t ts,
                         int64_t import_wh)
{
    mtr_sample s = {.ts_ms = ts, .import_wh = import_wh, .soc_permille = -1};
    snprintf(s.meter_id, sizeof s.meter_id, "%s", meter);
    char body[BUS_JSON_MAX];
    int n = bus_state_encode_ocmf(&s, text, strlen(text), body, sizeof body);
    assert_true(n > 0);
    char topic[128];
    snprintf(topic, sizeof topic, "mgx/v1/sig/meter/%s/state", meter);
    assert_int_equal(tc_publish(f->raw, topic, body, (size_t)n, 1, false, 5000), 0);
}

static mtr_sample fake(const char *meter, int64_t ts)
{
    mtr_sample s = {.ts_ms = ts, .power_w = -95000, .import_wh = 10, .export_wh = 999999,
                    .soc_permille = -1, .quality = MTR_Q_GOOD};
    snprintf(s.meter_id, sizeof s.meter_id, "%s", meter);
    return s;
}

static void stop(pid_t *pid)
{
    if (*pid > 0) {
        kill(*pid, SIGTERM);
        assert_int_equal(tst_wait_exit(*pid, 15000), 0);
    }
    *pid = 0;
}

static fixture F; /* the teardown stops what a failed test left running */

static int teardown(void **state)
{
    (void)state;
    if (F.meter > 0)
        kill(F.meter, SIGKILL), waitpid(F.meter, NULL, 0);
    if (F.ctl > 0)
        kill(F.ctl, SIGKILL), waitpid(F.ctl, NULL, 0);
    if (F.meter3 > 0)
        kill(F.meter3, SIGKILL), waitpid(F.meter3, NULL, 0);
    F.meter = F.ctl = F.meter3 = 0;
    return 0;
}

static void test_signed_readings_end_to_end(void **state)
{
    (void)state;
    fixture *f = &F;
    f->dir = tst_tmpdir("signedreadings");
    snprintf(f->db, sizeof f->db, "%s/ctl.db", f->dir);
    snprintf(f->ctl_conf, sizeof f->ctl_conf, "%s/controller.ini", f->dir);
    snprintf(f->ctl_log, sizeof f->ctl_log, "%s/controller.log", f->dir);
    snprintf(f->meter_conf, sizeof f->meter_conf, "%s/meter.ini", f->dir);
    snprintf(f->meter_log, sizeof f->meter_log, "%s/meter.log", f->dir);
    f->br = tst_broker_start(NULL);
    assert_non_null(f->br);

    /* the registry: home-1 with meter m1 and its gateway key; home-2 with meter m2, no key */
    assert_int_equal(tst_sh("cd '%s' && '%s' keygen --out gw >/dev/null 2>&1 && "
                            "'%s' keygen --out h1 >/dev/null 2>&1 && "
                            "'%s' keygen --out h2 >/dev/null 2>&1 && "
                            "'%s' participant add --db ctl.db --id home-1 --pubkey h1.pub "
                            "--meter m1 >/dev/null && "
                            "'%s' participant add --db ctl.db --id home-2 --pubkey h2.pub "
                            "--meter m2 >/dev/null && "
                            "'%s' participant meter-key --db ctl.db --meter m1 "
                            "--gateway-key gw.pub >/dev/null && "
                            "'%s' participant meter-key --db ctl.db --meter m2 "
                            "--ocmf-key %s >/dev/null && "
                            "'%s' keygen --out h3 >/dev/null 2>&1 && "
                            "'%s' participant add --db ctl.db --id home-3 --pubkey h3.pub "
                            "--meter m3 >/dev/null && "
                            "'%s' participant meter-key --db ctl.db --meter m3 "
                            "--ocmf-key %s >/dev/null",
                            f->dir, bin(), bin(), bin(), bin(), bin(), bin(), bin(), EBEE_KEY,
                            bin(), bin(), bin(), KEBA_KEY),
                     0);

    /* the home's meter, its gateway signing every reading */
    mtr_server_opts so = {.host = "127.0.0.1"};
    assert_int_equal(mtr_server_new(&so, &f->srv), MTR_SERVER_OK);
    assert_int_equal(mtr_server_add(f->srv, 1, MTR_SERVER_SDM630, NULL), MTR_SERVER_OK);
    assert_int_equal(mtr_server_set(f->srv, 1, 1500, 123456, 7890), MTR_SERVER_OK);
    assert_int_equal(mtr_server_start(f->srv), MTR_SERVER_OK);
    FILE *c = fopen(f->meter_conf, "w");
    assert_non_null(c);
    fprintf(c,
            "[bus]\nhost = 127.0.0.1\nport = %d\ncommunity = sig\nclient_id = meter-m1\n"
            "[signing]\nkey = gw.key\nparticipant = home-1\n"
            "[meter m1]\nprofile = sdm630\nhost = 127.0.0.1\nport = %u\nunit = 1\n"
            "poll_ms = 200\ntimeout_ms = 500\n",
            tst_broker_port(f->br), mtr_server_port(f->srv));
    fclose(c);

    tc_opts o = {.port = tst_broker_port(f->br), .client_id = "cheater"};
    int reason = 0;
    f->raw = tc_connect(&o, 5000, &reason);
    assert_non_null(f->raw);
    assert_true(tc_subscribe(f->raw, "mgx/v1/sig/status/+", 5000) >= 0);
    size_t seen = 0;
    uint8_t forger_pk[32], forger_sk[64];
    crypto_sign_keypair(forger_pk, forger_sk);

    /* ---- min_attestation_tier 0 (the default): everything stored, each with its tier ---- */
    write_ctl_conf(f, 0);
    int64_t t0 = real_ms();
    f->ctl = spawn("controller", f->ctl_conf, f->ctl_log);
    wait_online(f, &seen);
    f->meter = spawn("meter", f->meter_conf, f->meter_log);
    wait_tier(f, "m1", t0, 1, 3); /* the gateway's readings verify: tier 1 */

    int64_t base = (real_ms() / 1000 - 7200) * 1000; /* two hours ago, clear of the meter's */
    mtr_sample unsigned_m1 = fake("m1", base), forged_m1 = fake("m1", base + 1000),
               unsigned_m2 = fake("m2", base + 2000);
    publish_raw(f, &unsigned_m1, NULL);
    publish_raw(f, &forged_m1, forger_sk);
    publish_raw(f, &unsigned_m2, NULL);
    int64_t until = real_ms() + 60000;
    /* the tier is written just after its reading (another transaction): wait for both */
    while (count_tier(f, "m2", base, 0) == 0 && real_ms() < until)
        tst_sleep_ms(100);
    assert_int_equal(count_tier(f, "m2", base, 0), 1);
    assert_int_equal(count_range(f, "m1", base, base + 1001, 0), 2);
    assert_int_equal(count_range(f, "m1", base, base + 1001, -1), 0);
    stop(&f->ctl);

    /* ---- min_attestation_tier 1: raw and forged readings refused, the gateway's stored ---- */
    write_ctl_conf(f, 1);
    int64_t t1 = real_ms();
    f->ctl = spawn("controller", f->ctl_conf, f->ctl_log);
    int64_t b2 = base + 100000;
    mtr_sample u2 = fake("m1", b2), g2 = fake("m1", b2 + 1000), m2 = fake("m2", b2 + 2000);
    wait_online(f, &seen);
    publish_raw(f, &u2, NULL);
    publish_raw(f, &g2, forger_sk);
    publish_raw(f, &m2, NULL);
    wait_log(f->ctl_log, "refused: attestation unsigned (tier 0) is below min_attestation_tier 1",
             3);
    wait_log(f->ctl_log, "does not verify with the gateway key of meter m1", 2);
    wait_tier(f, "m1", t1, 1, 3); /* the signed ones still come in */
    assert_int_equal(count_at(f, "m1", b2), 0);
    assert_int_equal(count_at(f, "m1", b2 + 1000), 0);
    assert_int_equal(count_at(f, "m2", b2 + 2000), 0);
    assert_int_equal(count_tier(f, "m1", t1, 0), 0);

    /* ---- a certified meter: the OCMF record it signed verifies with its registered key and
     * certifies the reading (2021-08-25T08:01:04Z, 7,753 Wh): tier 2. The same record with one
     * byte changed (7753 -> 7754 Wh), or a reading claiming other counters, is refused. ---- */
    const int64_t ebee_ts = 1629878464000LL;
    char flipped[sizeof EBEE];
    memcpy(flipped, EBEE, sizeof EBEE);
    char *rv = strstr(flipped, "7753");
    assert_non_null(rv);
    rv[3] = '4';
    publish_ocmf(f, "m2", flipped, ebee_ts - 1000, 7754); /* the forged record */
    publish_ocmf(f, "m2", EBEE, ebee_ts + 1000, 7753);    /* a true record, a false time */
    publish_ocmf(f, "m2", EBEE, ebee_ts, 7753);
    until = real_ms() + 60000;
    while (count_tier(f, "m2", ebee_ts, 2) == 0 && real_ms() < until)
        tst_sleep_ms(100);
    assert_int_equal(count_tier(f, "m2", ebee_ts, 2), 1);
    assert_int_equal(count_at(f, "m2", ebee_ts - 1000), 0);
    assert_int_equal(count_at(f, "m2", ebee_ts + 1000), 0);
    wait_log(f->ctl_log, "OCMF: the signature does not verify", 1);
    wait_log(f->ctl_log, "OCMF: time", 1);

    /* ---- `mgx meter` following a certified meter's OCMF file: the failing record is
     * refused, the true one (its last import reading: 2019-08-13T10:03:36Z, 0.2597 kWh =
     * 259 Wh) stored at tier 2; a line that is no record is skipped with a warning ---- */
    char path[700], conf3[700], log3[700];
    snprintf(path, sizeof path, "%s/m3.ocmf", f->dir);
    snprintf(conf3, sizeof conf3, "%s/meter3.ini", f->dir);
    snprintf(log3, sizeof log3, "%s/meter3.log", f->dir);
    char *fail_rec = strdup(KEBA);
    char *day = strstr(fail_rec, "2019-08-13T10:03:15");
    assert_non_null(day);
    day[9] = '2'; /* 2019-08-12, exactly as the published failing record */
    FILE *of = fopen(path, "w");
    assert_non_null(of);
    fprintf(of, "%s\nnot a record\n%s\n", fail_rec, KEBA);
    fclose(of);
    free(fail_rec);
    c = fopen(conf3, "w");
    assert_non_null(c);
    fprintf(c,
            "[bus]\nhost = 127.0.0.1\nport = %d\ncommunity = sig\nclient_id = meter-m3\n"
            "[ocmf m3]\nfile = m3.ocmf\npoll_ms = 200\n",
            tst_broker_port(f->br));
    fclose(c);
    /* --once shows the installer the file's last record as the reading it becomes */
    assert_int_equal(tst_sh("'%s' meter '%s' --once | grep -q "
                            "'\"meter_id\":\"m3\",\"ts\":1565690616000,.*\"import_wh\":259,.*"
                            "\"ok\":true,\"profile\":\"ocmf\"'",
                            bin(), conf3),
                     0);
    f->meter3 = spawn("meter", conf3, log3);
    const int64_t keba_ts = 1565690616000LL;
    until = real_ms() + 60000;
    while (count_tier(f, "m3", keba_ts, 2) == 0 && real_ms() < until)
        tst_sleep_ms(100);
    assert_int_equal(count_tier(f, "m3", keba_ts, 2), 1);
    assert_int_equal(count_tier(f, "m3", 0, 2), 1); /* nothing else of m3 */
    wait_log(f->ctl_log, "OCMF: the signature does not verify", 2);
    wait_log(log3, "a line skipped", 1);
    stop(&f->meter3);

    stop(&f->meter);
    stop(&f->ctl);
    tc_free(f->raw);
    mtr_server_free(f->srv);
    tst_broker_free(f->br);
    tst_rmtree(f->dir);
    free(f->dir);
}

int main(void)
{
    if (sodium_init() < 0)
        return 1;
    const struct CMUnitTest tests[] = {cmocka_unit_test_teardown(test_signed_readings_end_to_end, teardown)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
