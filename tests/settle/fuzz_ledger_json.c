/*
 * Fuzz harness for the JSON files of `mgx ledger` (controller/settle/ledger_json.c): the settle
 * input, the inclusion proof and the consistency proof. Every input goes to all three parsers,
 * so a corpus of real files of one kind also mutates into the others.
 *
 * Invariants, for every input:
 *   - nothing crashes, leaks or reads out of bounds (the sanitizers watch);
 *   - a failed parse says why: a non-empty, terminated reason, "LINE:COLUMN: ..." for a
 *     syntax error;
 *   - what parses holds only values the ledger accepts (the documented ranges), and writing it
 *     back out (ctl_lj_*_format) gives text that parses to exactly the same struct.
 */
#include "fuzz.h"

#include "settle/ledger_json.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ERR_LEN 512

static void check_error(int rc, const char *err)
{
    FUZZ_CHECK(rc == CTL_LJ_E_SYNTAX || rc == CTL_LJ_E_BAD || rc == CTL_LJ_E_NOMEM);
    FUZZ_CHECK(memchr(err, '\0', ERR_LEN) != NULL && err[0] != '\0');
    if (rc == CTL_LJ_E_SYNTAX) {
        int line = -2, col = -2, used = 0;
        FUZZ_CHECK(sscanf(err, "%d:%d: %n", &line, &col, &used) == 2 && used > 0);
    }
}

static int same_str(const char *a, const char *b)
{
    return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

static void check_settle(const ctl_ledger_input *in)
{
    FUZZ_CHECK(in->interval_len_s >= 1 && in->interval_len_s <= 86400);
    const stl_tariffs *t = &in->tariffs;
    FUZZ_CHECK(t->feed_in_uc_per_kwh >= 0 && t->feed_in_uc_per_kwh <= MKT_PRICE_MAX_UC_PER_KWH);
    FUZZ_CHECK(t->retail_uc_per_kwh >= 0 && t->retail_uc_per_kwh <= MKT_PRICE_MAX_UC_PER_KWH);
    FUZZ_CHECK(t->network_fee_uc_per_kwh >= 0 &&
          t->network_fee_uc_per_kwh <= MKT_PRICE_MAX_UC_PER_KWH);
    for (size_t i = 0; i < in->n_trades; i++) {
        const mkt_trade *x = &in->trades[i];
        FUZZ_CHECK(x->energy_wh >= 1 && x->energy_wh <= MKT_ENERGY_MAX_WH);
        FUZZ_CHECK(x->price_uc_per_kwh >= 0 && x->price_uc_per_kwh <= MKT_PRICE_MAX_UC_PER_KWH);
        FUZZ_CHECK(x->amount_uc >= 0 && x->fee_uc >= 0 && x->seller <= INT64_MAX &&
              x->buyer <= INT64_MAX);
    }
    for (size_t i = 0; i < in->n_meters; i++) {
        const stl_metered *m = &in->meters[i];
        FUZZ_CHECK(m->import_wh >= 0 && m->import_wh <= STL_METER_MAX_WH);
        FUZZ_CHECK(m->export_wh >= 0 && m->export_wh <= STL_METER_MAX_WH);
        FUZZ_CHECK(m->participant <= INT64_MAX);
        FUZZ_CHECK(m->tier <= STL_TIER_MAX && m->held <= 1);
    }
    FUZZ_CHECK(in->timing <= STL_TIMING_EX_POST);
}

static int same_settle(const ctl_ledger_input *a, const ctl_ledger_input *b)
{
    if (a->interval_id != b->interval_id || a->interval_len_s != b->interval_len_s ||
        memcmp(&a->tariffs, &b->tariffs, sizeof a->tariffs) != 0 || a->timing != b->timing ||
        a->n_trades != b->n_trades || a->n_meters != b->n_meters)
        return 0;
    for (size_t i = 0; i < a->n_trades; i++) {
        const mkt_trade *x = &a->trades[i], *y = &b->trades[i];
        if (x->seller != y->seller || x->buyer != y->buyer || x->energy_wh != y->energy_wh ||
            x->price_uc_per_kwh != y->price_uc_per_kwh || x->amount_uc != y->amount_uc ||
            x->fee_uc != y->fee_uc)
            return 0;
    }
    for (size_t i = 0; i < a->n_meters; i++) {
        const stl_metered *x = &a->meters[i], *y = &b->meters[i];
        if (x->participant != y->participant || x->import_wh != y->import_wh ||
            x->export_wh != y->export_wh || x->quality != y->quality || x->tier != y->tier ||
            x->held != y->held)
            return 0;
    }
    return 1;
}

static void fuzz_settle(const char *text, size_t size)
{
    char err[ERR_LEN] = "";
    ctl_lj_settle a, b;
    int rc = ctl_lj_settle_parse(text, size, &a, err, sizeof err);
    if (rc != CTL_LJ_OK) {
        check_error(rc, err);
        ctl_lj_settle_free(&a);
        return;
    }
    check_settle(&a.in);
    char *again = ctl_lj_settle_format(&a.in);
    FUZZ_CHECK(again != NULL);
    FUZZ_CHECK(ctl_lj_settle_parse(again, strlen(again), &b, err, sizeof err) == CTL_LJ_OK);
    FUZZ_CHECK(same_settle(&a.in, &b.in));
    free(again);
    ctl_lj_settle_free(&a);
    ctl_lj_settle_free(&b);
}

static void fuzz_proof(const char *text, size_t size)
{
    char err[ERR_LEN] = "";
    /* ~2.5 KB each: on the heap, as the CLI keeps them */
    ctl_lj_proof *a = malloc(sizeof *a), *b = malloc(sizeof *b);
    FUZZ_CHECK(a && b);
    memset(b, 0, sizeof *b);
    int rc = ctl_lj_proof_parse(text, size, a, err, sizeof err);
    if (rc != CTL_LJ_OK) {
        check_error(rc, err);
        goto out;
    }
    FUZZ_CHECK(a->log_index >= 0 && a->body_len <= STL_TX_MAX_LEN &&
          a->n_path <= STL_MERKLE_MAX_PROOF);
    uint8_t id[STL_ID_LEN];
    FUZZ_CHECK(stl_tx_id(a->has_salt ? a->salt : NULL, a->body, a->body_len, id) == STL_OK);
    char *again = ctl_lj_proof_format(a, id);
    FUZZ_CHECK(again != NULL);
    FUZZ_CHECK(ctl_lj_proof_parse(again, strlen(again), b, err, sizeof err) == CTL_LJ_OK);
    FUZZ_CHECK(a->log_index == b->log_index && a->tree_size == b->tree_size);
    FUZZ_CHECK(a->body_len == b->body_len && memcmp(a->body, b->body, a->body_len) == 0);
    FUZZ_CHECK(a->has_salt == b->has_salt &&
               (!a->has_salt || memcmp(a->salt, b->salt, STL_SALT_LEN) == 0));
    FUZZ_CHECK(a->n_path == b->n_path && memcmp(a->path, b->path, a->n_path * STL_HASH_LEN) == 0);
    FUZZ_CHECK(same_str(a->checkpoint, b->checkpoint));
    free(again);
out:
    ctl_lj_proof_free(a);
    ctl_lj_proof_free(b);
    free(a);
    free(b);
}

static void fuzz_consistency(const char *text, size_t size)
{
    char err[ERR_LEN] = "";
    ctl_lj_consistency *a = malloc(sizeof *a), *b = malloc(sizeof *b);
    FUZZ_CHECK(a && b);
    memset(b, 0, sizeof *b);
    int rc = ctl_lj_consistency_parse(text, size, a, err, sizeof err);
    if (rc != CTL_LJ_OK) {
        check_error(rc, err);
        goto out;
    }
    FUZZ_CHECK(a->old_checkpoint && a->new_checkpoint && a->n_path <= STL_MERKLE_MAX_PROOF);
    char *again = ctl_lj_consistency_format(a);
    FUZZ_CHECK(again != NULL);
    FUZZ_CHECK(ctl_lj_consistency_parse(again, strlen(again), b, err, sizeof err) == CTL_LJ_OK);
    FUZZ_CHECK(a->n_path == b->n_path && memcmp(a->path, b->path, a->n_path * STL_HASH_LEN) == 0);
    FUZZ_CHECK(same_str(a->old_checkpoint, b->old_checkpoint) &&
          same_str(a->new_checkpoint, b->new_checkpoint));
    free(again);
out:
    ctl_lj_consistency_free(a);
    ctl_lj_consistency_free(b);
    free(a);
    free(b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (sodium_init() < 0)
        abort();
    if (size > (1u << 20)) /* the CLI reads at most 1 MiB of a proof */
        return 0;
    const char *text = (const char *)data;
    fuzz_settle(text, size);
    fuzz_proof(text, size);
    fuzz_consistency(text, size);
    return 0;
}
