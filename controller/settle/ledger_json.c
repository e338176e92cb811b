/*
 * The JSON files of `mgx ledger` (see ledger_json.h): jansson for the syntax, then every
 * member checked for type and range here, so the CLI only ever sees values the ledger accepts.
 * Hashes are standard base64 (as RFC 6962 tooling prints them), transaction bodies hex.
 */
#include "settle/ledger_json.h"

#include "common/errbuf.h"

#include <jansson.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static json_t *load(const char *text, size_t len, int *rc, char *err, size_t errlen)
{
    json_error_t je;
    json_t *j = json_loadb(text, len, 0, &je);
    *rc = CTL_LJ_OK;
    if (!j) {
        snprintf(err, errlen, "%d:%d: %s", je.line, je.column, je.text);
        *rc = CTL_LJ_E_SYNTAX;
    }
    return j;
}

/* strdup is POSIX, not C11. */
static char *dup_text(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d)
        memcpy(d, s, n);
    return d;
}

/* ---- settle input ---- */

static int json_i64(json_t *obj, const char *key, int64_t min, int64_t max, int required,
                    int64_t *out, const char *what, size_t idx, char *err, size_t errlen)
{
    json_t *v = json_object_get(obj, key);
    if (!v && !required)
        return 0;
    if (!json_is_integer(v) || json_integer_value(v) < min || json_integer_value(v) > max)
        return ctl_fail(CTL_LJ_E_BAD, err, errlen,
                        "%s %zu: \"%s\" must be an integer in [%lld, %lld]", what, idx, key,
                        (long long)min, (long long)max);
    *out = json_integer_value(v);
    return 0;
}

static int parse_trade(json_t *t, const stl_tariffs *tf, size_t i, mkt_trade *x, char *err,
                       size_t errlen)
{
    int64_t s = 0, b = 0;
    if (json_i64(t, "seller", 0, INT64_MAX, 1, &s, "trade", i, err, errlen) ||
        json_i64(t, "buyer", 0, INT64_MAX, 1, &b, "trade", i, err, errlen) ||
        json_i64(t, "energy_wh", 1, MKT_ENERGY_MAX_WH, 1, &x->energy_wh, "trade", i, err,
                 errlen) ||
        json_i64(t, "price_uc_per_kwh", 0, MKT_PRICE_MAX_UC_PER_KWH, 1, &x->price_uc_per_kwh,
                 "trade", i, err, errlen))
        return CTL_LJ_E_BAD;
    x->seller = (uint64_t)s;
    x->buyer = (uint64_t)b;
    /* amounts default to the market's rule; given ones are checked by reconciliation */
    if (mkt_amount_uc(x->energy_wh, x->price_uc_per_kwh, &x->amount_uc) ||
        mkt_amount_uc(x->energy_wh, tf->network_fee_uc_per_kwh, &x->fee_uc))
        return ctl_fail(CTL_LJ_E_BAD, err, errlen, "trade %zu: amount overflows", i);
    if (json_i64(t, "amount_uc", 0, INT64_MAX, 0, &x->amount_uc, "trade", i, err, errlen) ||
        json_i64(t, "fee_uc", 0, INT64_MAX, 0, &x->fee_uc, "trade", i, err, errlen))
        return CTL_LJ_E_BAD;
    return CTL_LJ_OK;
}

static int parse_meter(json_t *m, size_t i, stl_metered *x, char *err, size_t errlen)
{
    int64_t p = 0, q = 0, tier = 0;
    json_t *held = json_object_get(m, "held");
    if (held && !json_is_boolean(held))
        return ctl_fail(CTL_LJ_E_BAD, err, errlen, "meter record %zu: \"held\" must be true or "
                        "false", i);
    x->held = json_is_true(held) ? 1 : 0;
    if (json_i64(m, "participant", 0, INT64_MAX, 1, &p, "meter record", i, err, errlen) ||
        json_i64(m, "import_wh", 0, STL_METER_MAX_WH, 1, &x->import_wh, "meter record", i, err,
                 errlen) ||
        json_i64(m, "export_wh", 0, STL_METER_MAX_WH, 1, &x->export_wh, "meter record", i, err,
                 errlen) ||
        json_i64(m, "quality", 0, UINT32_MAX, 0, &q, "meter record", i, err, errlen) ||
        json_i64(m, "tier", 0, STL_TIER_MAX, 0, &tier, "meter record", i, err, errlen))
        return CTL_LJ_E_BAD;
    x->participant = (uint64_t)p;
    x->quality = (uint32_t)q;
    x->tier = (uint8_t)tier;
    return CTL_LJ_OK;
}

/* A document's reader: fills the ctl_lj_* struct behind dst from the loaded object. */
typedef int (*doc_from_fn)(json_t *root, void *dst, char *err, size_t errlen);

/* Loads text and hands the object to from; every document reports running out of memory the
 * same way and drops the tree whatever from did. */
static int parse_doc(const char *text, size_t len, doc_from_fn from, void *dst, char *err,
                     size_t errlen)
{
    int rc;
    json_t *root = load(text, len, &rc, err, errlen);
    if (root)
        rc = from(root, dst, err, errlen);
    if (rc == CTL_LJ_E_NOMEM)
        snprintf(err, errlen, "out of memory");
    json_decref(root);
    return rc;
}

static int settle_from(json_t *root, void *dst, char *err, size_t errlen)
{
    ctl_lj_settle *out = dst;
    ctl_ledger_input *in = &out->in;
    int64_t id = 0, len = 900;
    json_t *tf = json_object_get(root, "tariffs"), *tr = json_object_get(root, "trades"),
           *me = json_object_get(root, "meters");
    if (json_i64(root, "interval_id", INT64_MIN, INT64_MAX, 1, &id, "input", 0, err, errlen) ||
        json_i64(root, "interval_len_s", 1, 86400, 0, &len, "input", 0, err, errlen))
        return CTL_LJ_E_BAD;
    if (!json_is_object(tf) || !json_is_array(tr) || !json_is_array(me))
        return ctl_fail(CTL_LJ_E_BAD, err, errlen,
                        "input needs \"tariffs\" (object), \"trades\" and \"meters\" (arrays)");
    in->interval_id = id;
    in->interval_len_s = (uint32_t)len;
    json_t *timing = json_object_get(root, "timing");
    const char *ts = json_string_value(timing);
    if (timing && (!ts || (strcmp(ts, "ex_ante") != 0 && strcmp(ts, "ex_post") != 0)))
        return ctl_fail(CTL_LJ_E_BAD, err, errlen,
                        "input: \"timing\" must be \"ex_ante\" (the default) or \"ex_post\"");
    in->timing = ts && strcmp(ts, "ex_post") == 0 ? STL_TIMING_EX_POST : STL_TIMING_EX_ANTE;
    int64_t ctier = -1; /* "credit_min_tier": the block records credits minted from this tier */
    if (json_i64(root, "credit_min_tier", 0, STL_TIER_MAX, 0, &ctier, "input", 0, err, errlen))
        return CTL_LJ_E_BAD;
    in->credits_on = ctier >= 0;
    in->credit_min_tier = ctier >= 0 ? (uint8_t)ctier : 0;
    if (json_i64(tf, "feed_in_uc_per_kwh", 0, MKT_PRICE_MAX_UC_PER_KWH, 1,
                 &in->tariffs.feed_in_uc_per_kwh, "tariffs", 0, err, errlen) ||
        json_i64(tf, "retail_uc_per_kwh", 0, MKT_PRICE_MAX_UC_PER_KWH, 1,
                 &in->tariffs.retail_uc_per_kwh, "tariffs", 0, err, errlen) ||
        json_i64(tf, "network_fee_uc_per_kwh", 0, MKT_PRICE_MAX_UC_PER_KWH, 0,
                 &in->tariffs.network_fee_uc_per_kwh, "tariffs", 0, err, errlen))
        return CTL_LJ_E_BAD;
    size_t nt = json_array_size(tr), nm = json_array_size(me);
    out->trades = calloc(nt ? nt : 1, sizeof *out->trades);
    out->meters = calloc(nm ? nm : 1, sizeof *out->meters);
    if (!out->trades || !out->meters)
        return CTL_LJ_E_NOMEM;
    for (size_t i = 0; i < nt; i++)
        if (parse_trade(json_array_get(tr, i), &in->tariffs, i, &out->trades[i], err, errlen))
            return CTL_LJ_E_BAD;
    for (size_t i = 0; i < nm; i++)
        if (parse_meter(json_array_get(me, i), i, &out->meters[i], err, errlen))
            return CTL_LJ_E_BAD;
    in->trades = out->trades;
    in->n_trades = nt;
    in->meters = out->meters;
    in->n_meters = nm;
    return CTL_LJ_OK;
}

int ctl_lj_settle_parse(const char *text, size_t len, ctl_lj_settle *out, char *err,
                        size_t errlen)
{
    memset(out, 0, sizeof *out);
    return parse_doc(text, len, settle_from, out, err, errlen);
}

void ctl_lj_settle_free(ctl_lj_settle *s)
{
    if (!s)
        return;
    free(s->trades);
    free(s->meters);
    memset(s, 0, sizeof *s);
}

/* json_pack's I takes json_int_t (long long); every field here fits. */
#define JI(v) ((json_int_t)(v))

char *ctl_lj_settle_format(const ctl_ledger_input *in)
{
    json_t *tr = json_array(), *me = json_array(), *root = NULL;
    char *text = NULL;
    if (!tr || !me)
        goto out;
    for (size_t i = 0; i < in->n_trades; i++) {
        const mkt_trade *t = &in->trades[i];
        if (json_array_append_new(
                tr, json_pack("{s:I, s:I, s:I, s:I, s:I, s:I}", "seller", JI(t->seller), "buyer",
                              JI(t->buyer), "energy_wh", JI(t->energy_wh), "price_uc_per_kwh",
                              JI(t->price_uc_per_kwh), "amount_uc", JI(t->amount_uc), "fee_uc",
                              JI(t->fee_uc))) != 0)
            goto out;
    }
    for (size_t i = 0; i < in->n_meters; i++) {
        const stl_metered *m = &in->meters[i];
        if (json_array_append_new(
                me, json_pack("{s:I, s:I, s:I, s:I, s:I, s:b}", "participant", JI(m->participant),
                              "import_wh", JI(m->import_wh), "export_wh", JI(m->export_wh),
                              "quality", JI(m->quality), "tier", JI(m->tier), "held",
                              m->held ? 1 : 0)) != 0)
            goto out;
    }
    root = json_pack("{s:I, s:I, s:s, s:{s:I, s:I, s:I}, s:O, s:O}", "interval_id",
                     JI(in->interval_id), "interval_len_s", JI(in->interval_len_s), "timing",
                     in->timing == STL_TIMING_EX_POST ? "ex_post" : "ex_ante", "tariffs",
                     "feed_in_uc_per_kwh", JI(in->tariffs.feed_in_uc_per_kwh),
                     "retail_uc_per_kwh", JI(in->tariffs.retail_uc_per_kwh),
                     "network_fee_uc_per_kwh", JI(in->tariffs.network_fee_uc_per_kwh), "trades",
                     tr, "meters", me);
    if (root && in->credits_on &&
        json_object_set_new(root, "credit_min_tier", json_integer(in->credit_min_tier)) != 0)
        goto out;
    if (root)
        text = json_dumps(root, JSON_COMPACT);
out:
    json_decref(root);
    json_decref(tr);
    json_decref(me);
    return text;
}

/* ---- hashes ---- */

static json_t *hash_array(const uint8_t (*h)[STL_HASH_LEN], size_t n)
{
    json_t *a = json_array();
    for (size_t i = 0; a && i < n; i++) {
        char b64[64];
        sodium_bin2base64(b64, sizeof b64, h[i], STL_HASH_LEN, sodium_base64_VARIANT_ORIGINAL);
        if (json_array_append_new(a, json_string(b64)) != 0) {
            json_decref(a);
            return NULL;
        }
    }
    return a;
}

static int parse_hashes(json_t *a, uint8_t (*h)[STL_HASH_LEN], size_t *n)
{
    if (!json_is_array(a) || json_array_size(a) > STL_MERKLE_MAX_PROOF)
        return -1;
    *n = json_array_size(a);
    for (size_t i = 0; i < *n; i++) {
        const char *s = json_string_value(json_array_get(a, i));
        size_t got;
        if (!s || sodium_base642bin(h[i], STL_HASH_LEN, s, strlen(s), NULL, &got, NULL,
                                    sodium_base64_VARIANT_ORIGINAL) != 0 ||
            got != STL_HASH_LEN)
            return -1;
    }
    return 0;
}

/* A string member copied out, or NULL (absent or not a string). */
static int opt_string(json_t *obj, const char *key, char **out)
{
    const char *s = json_string_value(json_object_get(obj, key));
    *out = s ? dup_text(s) : NULL;
    return s && !*out ? CTL_LJ_E_NOMEM : CTL_LJ_OK;
}

/* ---- inclusion proof ---- */

static int proof_from(json_t *j, void *dst, char *err, size_t errlen)
{
    ctl_lj_proof *p = dst;
    json_t *li = json_object_get(j, "log_index"), *ts = json_object_get(j, "tree_size");
    const char *txh = json_string_value(json_object_get(j, "tx"));
    if (!json_is_integer(li) || !json_is_integer(ts) || json_integer_value(li) < 0)
        return ctl_fail(CTL_LJ_E_BAD, err, errlen,
                        "needs \"log_index\" (>= 0) and \"tree_size\" (integers)");
    if (!txh || sodium_hex2bin(p->body, sizeof p->body, txh, strlen(txh), NULL, &p->body_len,
                               NULL) != 0 ||
        stl_tx_decode(p->body, p->body_len, &p->tx) != STL_OK)
        return ctl_fail(CTL_LJ_E_BAD, err, errlen, "\"tx\" is not a hex ledger transaction");
    json_t *salt = json_object_get(j, "salt");
    p->has_salt = p->tx.version != STL_LEDGER_V1;
    if (p->has_salt) {
        const char *b64 = json_string_value(salt);
        size_t got = 0;
        if (!b64 || sodium_base642bin(p->salt, STL_SALT_LEN, b64, strlen(b64), NULL, &got, NULL,
                                      sodium_base64_VARIANT_ORIGINAL) != 0 ||
            got != STL_SALT_LEN)
            return ctl_fail(CTL_LJ_E_BAD, err, errlen,
                            "\"salt\" must be the transaction's base64 32-byte salt");
    } else if (salt) {
        return ctl_fail(CTL_LJ_E_BAD, err, errlen,
                        "a ledger version 1 transaction has no \"salt\"");
    }
    if (parse_hashes(json_object_get(j, "hashes"), p->path, &p->n_path) != 0)
        return ctl_fail(CTL_LJ_E_BAD, err, errlen,
                        "\"hashes\" must be an array of at most %d base64 SHA-256 hashes",
                        STL_MERKLE_MAX_PROOF);
    p->log_index = json_integer_value(li);
    p->tree_size = json_integer_value(ts);
    return opt_string(j, "checkpoint", &p->checkpoint);
}

int ctl_lj_proof_parse(const char *text, size_t len, ctl_lj_proof *out, char *err,
                       size_t errlen)
{
    memset(out, 0, sizeof *out);
    return parse_doc(text, len, proof_from, out, err, errlen);
}

void ctl_lj_proof_free(ctl_lj_proof *p)
{
    if (!p)
        return;
    free(p->checkpoint);
    p->checkpoint = NULL;
}

char *ctl_lj_proof_format(const ctl_lj_proof *p, const uint8_t txid[STL_ID_LEN])
{
    if (p->body_len > STL_TX_MAX_LEN || p->n_path > STL_MERKLE_MAX_PROOF)
        return NULL;
    char bodyhex[2 * STL_TX_MAX_LEN + 1], idhex[2 * STL_ID_LEN + 1], salt64[64];
    sodium_bin2hex(bodyhex, sizeof bodyhex, p->body, p->body_len);
    sodium_bin2hex(idhex, sizeof idhex, txid, STL_ID_LEN);
    if (p->has_salt)
        sodium_bin2base64(salt64, sizeof salt64, p->salt, STL_SALT_LEN,
                          sodium_base64_VARIANT_ORIGINAL);
    json_t *out = json_pack("{s:s, s:I, s:I, s:s, s:s, s:s*, s:o, s:s?}", "format",
                            p->has_salt ? "mgx-inclusion-proof/2" : "mgx-inclusion-proof/1",
                            "log_index", JI(p->log_index), "tree_size", JI(p->tree_size), "txid",
                            idhex, "tx", bodyhex, "salt", p->has_salt ? salt64 : NULL, "hashes",
                            hash_array((const uint8_t(*)[STL_HASH_LEN])p->path, p->n_path),
                            "checkpoint", p->checkpoint);
    sodium_memzero(salt64, sizeof salt64);
    char *s = out ? json_dumps(out, JSON_INDENT(2)) : NULL;
    json_decref(out);
    return s;
}

/* ---- consistency proof ---- */

static int consistency_from(json_t *j, void *dst, char *err, size_t errlen)
{
    ctl_lj_consistency *c = dst;
    if (parse_hashes(json_object_get(j, "hashes"), c->path, &c->n_path) != 0 ||
        !json_is_string(json_object_get(j, "old_checkpoint")) ||
        !json_is_string(json_object_get(j, "new_checkpoint")))
        return ctl_fail(CTL_LJ_E_BAD, err, errlen, "needs both signed checkpoints and the hashes");
    int rc = opt_string(j, "old_checkpoint", &c->old_checkpoint);
    return rc ? rc : opt_string(j, "new_checkpoint", &c->new_checkpoint);
}

int ctl_lj_consistency_parse(const char *text, size_t len, ctl_lj_consistency *out, char *err,
                             size_t errlen)
{
    memset(out, 0, sizeof *out);
    return parse_doc(text, len, consistency_from, out, err, errlen);
}

void ctl_lj_consistency_free(ctl_lj_consistency *c)
{
    if (!c)
        return;
    free(c->old_checkpoint);
    free(c->new_checkpoint);
    c->old_checkpoint = c->new_checkpoint = NULL;
}

char *ctl_lj_consistency_format(const ctl_lj_consistency *c)
{
    if (c->n_path > STL_MERKLE_MAX_PROOF)
        return NULL;
    uint8_t rr[2][STL_HASH_LEN];
    memcpy(rr[0], c->old_root, STL_HASH_LEN);
    memcpy(rr[1], c->new_root, STL_HASH_LEN);
    json_t *out = json_pack(
        "{s:s, s:I, s:I, s:o, s:o, s:s?, s:s?}", "format", "mgx-consistency-proof/1", "old_size",
        JI(c->old_size), "new_size", JI(c->new_size), "roots",
        hash_array((const uint8_t(*)[STL_HASH_LEN])rr, 2), "hashes",
        hash_array((const uint8_t(*)[STL_HASH_LEN])c->path, c->n_path), "old_checkpoint",
        c->old_checkpoint, "new_checkpoint", c->new_checkpoint);
    char *s = out ? json_dumps(out, JSON_INDENT(2)) : NULL;
    json_decref(out);
    return s;
}

const char *ctl_lj_strerror(int rc)
{
    switch (rc) {
    case CTL_LJ_OK: return "ok";
    case CTL_LJ_E_SYNTAX: return "not JSON";
    case CTL_LJ_E_BAD: return "not the expected kind of file";
    case CTL_LJ_E_NOMEM: return "out of memory";
    default: return "unknown error";
    }
}
