/*
 * bench_settle: time to settle one interval of 10,000 trades (reconcile, encode and hash the
 * transactions, extend the Merkle log, sign the block and checkpoint, commit to SQLite with
 * synchronous=FULL), per step and in total, on one core. Baseline in the same process: raw
 * crypto_sign_detached over 10,000 messages of one transaction's size, the cost a scheme that
 * signed every transaction would pay.
 *
 *   ./build-rel/bench/bench_settle [trades] [intervals]
 */
#define _POSIX_C_SOURCE 200809L
#include "bench_util.h"
#include "settle/ledger_store.h"
#include "settle/settle_interval.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static double now_ms(void)
{
    return bench_now_s() * 1e3;
}

static uint64_t rnd(uint64_t *s)
{
    return bench_splitmix(s);
}

/* A 10k-trade interval: 1,000 sellers and 1,000 buyers, about a quarter of them short. */
static void make_interval(uint64_t seed, size_t nt, size_t np, const stl_tariffs *tf, mkt_trade *t,
                          stl_metered *m)
{
    int64_t *sold = calloc(np, sizeof *sold), *bought = calloc(np, sizeof *bought);
    uint64_t s = seed;
    size_t half = np / 2;
    for (size_t i = 0; i < nt; i++) {
        size_t a = rnd(&s) % half, b = half + rnd(&s) % half;
        t[i].seller = a + 1;
        t[i].buyer = b + 1;
        t[i].energy_wh = 1 + (int64_t)(rnd(&s) % 3000);
        t[i].price_uc_per_kwh = 80000 + (int64_t)(rnd(&s) % 200001);
        /* the market's money rule; these energies and prices cannot overflow it */
        if (mkt_amount_uc(t[i].energy_wh, t[i].price_uc_per_kwh, &t[i].amount_uc) != MKT_OK ||
            mkt_amount_uc(t[i].energy_wh, tf->network_fee_uc_per_kwh, &t[i].fee_uc) != MKT_OK)
            abort();
        sold[a] += t[i].energy_wh;
        bought[b] += t[i].energy_wh;
    }
    for (size_t i = 0; i < np; i++) {
        m[i].participant = i + 1;
        m[i].export_wh = rnd(&s) % 4 == 0 ? sold[i] * 3 / 4 : sold[i];
        m[i].import_wh = rnd(&s) % 4 == 0 ? bought[i] * 3 / 4 : bought[i] + 100;
        m[i].quality = rnd(&s) % 100 == 0 ? 16u : 0u;
    }
    free(sold);
    free(bought);
}

int main(int argc, char **argv)
{
    size_t nt = argc > 1 ? (size_t)atol(argv[1]) : 10000, np = 2000;
    int reps = argc > 2 ? atoi(argv[2]) : 15;
    if (sodium_init() < 0 || nt == 0 || reps < 1)
        return 1;
    stl_tariffs tf = {80000, 300000, 10000};
    mkt_trade *t = calloc(nt, sizeof *t);
    stl_metered *m = calloc(np, sizeof *m);
    ctl_ledger_key *key = sodium_malloc(sizeof *key);
    strcpy(key->name, "bench.example/mgx");
    uint8_t pk[32];
    crypto_sign_keypair(pk, key->sk);
    char dbpath[] = "/tmp/bench_settle_XXXXXX";
    int fd = mkstemp(dbpath);
    if (fd < 0)
        return 1;
    close(fd);
    remove(dbpath);
    ctl_db *db;
    char err[512];
    if (ctl_db_open(dbpath, &db, err, sizeof err) != CTL_DB_OK) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    double *tr = calloc((size_t)reps, sizeof(double)), *te = calloc((size_t)reps, sizeof(double));
    double *ts = calloc((size_t)reps, sizeof(double)), *tt = calloc((size_t)reps, sizeof(double));
    stl_reconciler *r = stl_reconciler_new(nt, np);
    uint8_t (*leaf)[32] = malloc((nt + np) * 32);
    uint8_t salt_secret[STL_SALT_LEN] = {7}; /* any secret: the cost is the same */
    size_t ntx = 0;
    for (int i = 0; i < reps; i++) {
        make_interval((uint64_t)i + 1, nt, np, &tf, t, m);
        /* the steps alone */
        double a = now_ms();
        if (stl_reconcile(r, &tf, t, nt, m, np, NULL) != STL_OK)
            return 1;
        double b = now_ms();
        size_t n1, n2;
        const stl_settled_trade *st = stl_reconciled_trades(r, &n1);
        const stl_position *ps = stl_reconciled_positions(r, &n2);
        for (size_t k = 0; k < n1 + n2; k++) {
            stl_tx tx;
            memset(&tx, 0, sizeof tx);
            tx.version = STL_LEDGER_VERSION;
            tx.interval_id = i;
            tx.seq = (uint32_t)k;
            tx.kind = k < n1 ? STL_TX_TRADE : STL_TX_POSITION;
            if (k < n1)
                tx.trade = st[k];
            else
                tx.position = ps[k - n1];
            uint8_t enc[STL_TX_MAX_LEN], id[32], salt[STL_SALT_LEN];
            size_t len = stl_tx_encode(&tx, enc);
            stl_leaf_salt(salt_secret, i, tx.seq, salt); /* as settlement does (ledger v2) */
            if (stl_tx_leaf(salt, enc, len, leaf[k]) != STL_OK ||
                stl_tx_id(salt, enc, len, id) != STL_OK)
                return 1;
        }
        uint8_t root[32];
        stl_merkle_root((const uint8_t(*)[32])leaf, n1 + n2, root);
        double c = now_ms();
        uint8_t sig[64];
        char note[STL_NOTE_MAX];
        stl_sign(root, 32, key->sk, sig);
        stl_checkpoint_sign("bench.example/mgx", 1, root, "bench.example/mgx", key->sk, note, sizeof note);
        double d = now_ms();
        tr[i] = b - a;
        te[i] = c - b;
        ts[i] = d - c;
        ntx = n1 + n2;
        /* the whole thing, into a ledger that grows by one interval per repetition */
        ctl_ledger_input in = {1900000 + i, 900, tf, t, nt, m, np, STL_TIMING_EX_ANTE, 0, 0, 0};
        ctl_ledger_result res;
        double e = now_ms();
        if (ctl_ledger_settle(db, &in, key, &res, err, sizeof err) != CTL_LEDGER_OK) {
            fprintf(stderr, "%s\n", err);
            return 1;
        }
        tt[i] = now_ms() - e;
    }
    /* baseline: one Ed25519 signature per transaction */
    uint8_t msg[STL_TX_TRADE_LEN] = {1}, sig[64];
    double a = now_ms();
    for (size_t k = 0; k < nt; k++) {
        msg[0] = (uint8_t)k;
        crypto_sign_detached(sig, NULL, msg, sizeof msg, key->sk);
    }
    double base = now_ms() - a;
    double mr = bench_median(tr, (size_t)reps), me = bench_median(te, (size_t)reps),
           ms = bench_median(ts, (size_t)reps), mt = bench_median(tt, (size_t)reps);
    printf("bench_settle: %zu trades, %zu participants, %zu transactions per interval, %d intervals "
           "(medians)\n",
           nt, np, ntx, reps);
    printf("  reconcile                          %8.2f ms\n", mr);
    printf("  encode + ids + leaf hashes + root  %8.2f ms\n", me);
    printf("  sign block + checkpoint            %8.3f ms\n", ms);
    printf("  settle total (all of the above + Merkle log + SQLite insert + COMMIT, FULL sync)\n"
           "                                     %8.2f ms   (min %.2f, max %.2f)\n",
           mt, tt[0], tt[reps - 1]);
    printf("  of which SQLite and the log        %8.2f ms (total minus the steps)\n",
           mt - mr - me - ms);
    printf("baseline: crypto_sign_detached x %zu (%d-byte messages) %8.2f ms = %.0f signatures/s\n",
           nt, STL_TX_TRADE_LEN, base, (double)nt / base * 1e3);
    ctl_db_close(db);
    char side[600];
    remove(dbpath);
    snprintf(side, sizeof side, "%s-wal", dbpath);
    remove(side);
    snprintf(side, sizeof side, "%s-shm", dbpath);
    remove(side);
    sodium_free(key);
    stl_reconciler_free(r);
    free(t), free(m), free(tr), free(te), free(ts), free(tt), free(leaf);
    return 0;
}
