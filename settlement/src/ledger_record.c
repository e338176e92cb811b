/*
 * Canonical encodings of ledger transactions and blocks (mgx/ledger_record.h).
 *
 * Writers and readers are mirror images over a small cursor; a decode succeeds only when every
 * byte is consumed, every field is in range and re-encoding gives the same bytes, so two
 * encodings of one record cannot both be accepted. Both versions share one writer and one
 * reader: version 2 differs only by the fields it adds (position tier, block timing), the
 * statuses it admits, and the salt that its ids and leaves hash in.
 */
#include "mgx/ledger_record.h"

#include "mgx/merkle.h"

#include <sodium.h>
#include <string.h>

typedef struct {
    uint8_t *p;
    size_t n;
} wcur;

typedef struct {
    const uint8_t *p;
    size_t n;
    int bad;
} rcur;

/* Integers are big-endian, width bytes (1 to 8). */
static void put_be(wcur *w, uint64_t v, int width)
{
    for (int i = width - 1; i >= 0; i--)
        w->p[w->n++] = (uint8_t)(v >> (8 * i));
}

static void put_u64(wcur *w, uint64_t v)
{
    put_be(w, v, 8);
}

static void put_u32(wcur *w, uint32_t v)
{
    put_be(w, v, 4);
}

static void put_i64(wcur *w, int64_t v)
{
    put_u64(w, (uint64_t)v);
}

static void put_bytes(wcur *w, const void *b, size_t len)
{
    memcpy(w->p + w->n, b, len);
    w->n += len;
}

/* A short input marks the cursor bad and reads as 0; decoders test r.bad after reading. */
static uint64_t get_be(rcur *r, size_t width)
{
    if (r->n < width) {
        r->bad = 1;
        return 0;
    }
    uint64_t v = 0;
    for (size_t i = 0; i < width; i++)
        v = (v << 8) | r->p[i];
    r->p += width;
    r->n -= width;
    return v;
}

static uint64_t get_u64(rcur *r)
{
    return get_be(r, 8);
}

static uint32_t get_u32(rcur *r)
{
    return (uint32_t)get_be(r, 4);
}

static int64_t get_i64(rcur *r)
{
    return (int64_t)get_u64(r);
}

static uint8_t get_u8(rcur *r)
{
    return (uint8_t)get_be(r, 1);
}

static void get_bytes(rcur *r, void *out, size_t len)
{
    if (r->n < len) {
        r->bad = 1;
        memset(out, 0, len);
        return;
    }
    memcpy(out, r->p, len);
    r->p += len;
    r->n -= len;
}

static const uint8_t TX_TAG[4] = {'M', 'G', 'X', 'T'};
static const uint8_t BLOCK_TAG[4] = {'M', 'G', 'X', 'B'};

static int version_ok(uint8_t v)
{
    return v == STL_LEDGER_V1 || v == STL_LEDGER_V2;
}

/* Whether the input starts with this record type's tag and a known version byte (to *version). */
static int get_head(rcur *r, const uint8_t tag[4], uint8_t *version)
{
    uint8_t got[4];
    get_bytes(r, got, 4);
    *version = get_u8(r);
    return !r->bad && memcmp(got, tag, 4) == 0 && version_ok(*version);
}

/* Starts a decode: out zeroed and *r over the input after its head. 0 if there is no input or
 * output, the input is longer than max or its head is not this record type's. */
static int begin_decode(rcur *r, const uint8_t *buf, size_t len, size_t max, const uint8_t tag[4],
                        void *out, size_t out_size, uint8_t *version)
{
    if (!buf || !out || len > max)
        return 0;
    memset(out, 0, out_size);
    *r = (rcur){buf, len, 0};
    return get_head(r, tag, version);
}

/* Ends a decode whose fields took every byte without running short: STL_OK only if the record
 * encodes again (again, n bytes) to the very input, so one record has one accepted encoding. */
static int end_decode(const uint8_t *buf, size_t len, const uint8_t *again, size_t n)
{
    return n == len && memcmp(again, buf, len) == 0 ? STL_OK : STL_E_ENCODING;
}

static int nonneg(const int64_t *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (v[i] < 0)
            return 0;
    return 1;
}

size_t stl_tx_encode(const stl_tx *tx, uint8_t out[STL_TX_MAX_LEN])
{
    if (!version_ok(tx->version))
        return 0;
    wcur w = {out, 0};
    put_bytes(&w, TX_TAG, 4);
    out[w.n++] = tx->version;
    out[w.n++] = (uint8_t)tx->kind;
    put_i64(&w, tx->interval_id);
    put_u32(&w, tx->seq);
    if (tx->kind == STL_TX_TRADE) {
        const stl_settled_trade *t = &tx->trade;
        int64_t v[9] = {t->contracted_wh, t->price_uc_per_kwh, t->amount_uc, t->contract_fee_uc,
                        t->delivered_wh,  t->paid_uc,          t->received_uc, t->fee_uc,
                        t->rounding_uc};
        if (!nonneg(v, 9))
            return 0;
        put_u64(&w, t->seller);
        put_u64(&w, t->buyer);
        for (int i = 0; i < 9; i++)
            put_i64(&w, v[i]);
    } else if (tx->kind == STL_TX_POSITION) {
        const stl_position *p = &tx->position;
        int64_t v[13] = {p->import_wh,        p->export_wh,         p->contracted_bought_wh,
                         p->contracted_sold_wh, p->local_bought_wh, p->local_sold_wh,
                         p->grid_bought_wh,   p->grid_sold_wh,      p->local_paid_uc,
                         p->fee_paid_uc,      p->local_received_uc, p->grid_paid_uc,
                         p->grid_received_uc};
        int v1 = tx->version == STL_LEDGER_V1;
        if (!nonneg(v, 13) || p->status > (v1 ? STL_POS_MISSING : STL_POS_STATUS_MAX) ||
            p->tier > (v1 ? 0 : STL_TIER_MAX))
            return 0;
        put_u64(&w, p->participant);
        out[w.n++] = (uint8_t)p->status;
        if (!v1)
            out[w.n++] = p->tier;
        put_u32(&w, p->quality);
        for (int i = 0; i < 13; i++)
            put_i64(&w, v[i]);
    } else if (tx->kind == STL_TX_CREDIT) {
        const stl_credit *c = &tx->credit;
        if (tx->version == STL_LEDGER_V1 || !stl_credit_valid(c))
            return 0;
        put_u64(&w, c->participant);
        out[w.n++] = c->status;
        out[w.n++] = c->tier;
        out[w.n++] = c->min_tier;
        put_u32(&w, c->source_seq);
        int64_t v[5] = {c->minted_wh, c->in_wh, c->out_wh, c->retired_wh, c->kept_wh};
        for (int i = 0; i < 5; i++)
            put_i64(&w, v[i]);
    } else {
        return 0;
    }
    return w.n;
}

int stl_tx_decode(const uint8_t *buf, size_t len, stl_tx *tx)
{
    rcur r;
    uint8_t version;
    if (!begin_decode(&r, buf, len, STL_TX_MAX_LEN, TX_TAG, tx, sizeof *tx, &version))
        return STL_E_ENCODING;
    tx->version = version;
    uint8_t kind = get_u8(&r);
    tx->interval_id = get_i64(&r);
    tx->seq = get_u32(&r);
    if (kind == STL_TX_TRADE) {
        stl_settled_trade *t = &tx->trade;
        tx->kind = STL_TX_TRADE;
        t->seller = get_u64(&r);
        t->buyer = get_u64(&r);
        int64_t *f[9] = {&t->contracted_wh, &t->price_uc_per_kwh, &t->amount_uc,
                         &t->contract_fee_uc, &t->delivered_wh, &t->paid_uc,
                         &t->received_uc, &t->fee_uc, &t->rounding_uc};
        for (int i = 0; i < 9; i++)
            *f[i] = get_i64(&r);
    } else if (kind == STL_TX_POSITION) {
        stl_position *p = &tx->position;
        tx->kind = STL_TX_POSITION;
        p->participant = get_u64(&r);
        p->status = (stl_pos_status)get_u8(&r);
        if (version != STL_LEDGER_V1)
            p->tier = get_u8(&r);
        p->quality = get_u32(&r);
        int64_t *f[13] = {&p->import_wh,         &p->export_wh,       &p->contracted_bought_wh,
                          &p->contracted_sold_wh, &p->local_bought_wh, &p->local_sold_wh,
                          &p->grid_bought_wh,    &p->grid_sold_wh,    &p->local_paid_uc,
                          &p->fee_paid_uc,       &p->local_received_uc, &p->grid_paid_uc,
                          &p->grid_received_uc};
        for (int i = 0; i < 13; i++)
            *f[i] = get_i64(&r);
    } else if (kind == STL_TX_CREDIT) {
        stl_credit *c = &tx->credit;
        tx->kind = STL_TX_CREDIT;
        c->participant = get_u64(&r);
        c->status = get_u8(&r);
        c->tier = get_u8(&r);
        c->min_tier = get_u8(&r);
        c->source_seq = get_u32(&r);
        int64_t *f[5] = {&c->minted_wh, &c->in_wh, &c->out_wh, &c->retired_wh, &c->kept_wh};
        for (int i = 0; i < 5; i++)
            *f[i] = get_i64(&r);
    } else {
        return STL_E_ENCODING;
    }
    if (r.bad || r.n != 0)
        return STL_E_ENCODING;
    uint8_t again[STL_TX_MAX_LEN];
    return end_decode(buf, len, again, stl_tx_encode(tx, again));
}

uint8_t stl_tx_version(const uint8_t *enc, size_t len)
{
    return enc && len > 4 ? enc[4] : 0;
}

/* Whether salt fits the encoding's version: none for version 1, one for version 2. */
static int salt_fits(const uint8_t *salt, const uint8_t *enc, size_t len)
{
    uint8_t v = stl_tx_version(enc, len);
    return len <= STL_TX_MAX_LEN &&
           ((v == STL_LEDGER_V1 && !salt) || (v == STL_LEDGER_V2 && salt));
}

int stl_tx_id(const uint8_t *salt, const uint8_t *enc, size_t len, uint8_t id[STL_ID_LEN])
{
    if (!salt_fits(salt, enc, len))
        return STL_E_INVAL;
    crypto_hash_sha256_state st;
    crypto_hash_sha256_init(&st);
    if (salt)
        crypto_hash_sha256_update(&st, salt, STL_SALT_LEN);
    crypto_hash_sha256_update(&st, enc, len);
    crypto_hash_sha256_final(&st, id);
    return STL_OK;
}

int stl_tx_leaf(const uint8_t *salt, const uint8_t *enc, size_t len, uint8_t leaf[STL_ID_LEN])
{
    if (!salt_fits(salt, enc, len))
        return STL_E_INVAL;
    uint8_t data[STL_SALT_LEN + STL_TX_MAX_LEN];
    size_t n = 0;
    if (salt) {
        memcpy(data, salt, STL_SALT_LEN);
        n = STL_SALT_LEN;
    }
    memcpy(data + n, enc, len);
    stl_merkle_leaf_hash(data, n + len, leaf);
    sodium_memzero(data, n); /* the salt is the coordinator's secret */
    return STL_OK;
}

void stl_salt_secret(const uint8_t sk[STL_SK_LEN], uint8_t secret[STL_SALT_LEN])
{
    /* crypto_kdf: BLAKE2b keyed with the seed, personalised by the context and subkey id */
    crypto_kdf_derive_from_key(secret, STL_SALT_LEN, 1, "mgxsalt2", sk);
}

void stl_leaf_salt(const uint8_t secret[STL_SALT_LEN], int64_t interval_id, uint32_t seq,
                   uint8_t salt[STL_SALT_LEN])
{
    uint8_t msg[4 + 8 + 4];
    wcur w = {msg, 0};
    put_bytes(&w, "MGXS", 4);
    put_i64(&w, interval_id);
    put_u32(&w, seq);
    crypto_generichash(salt, STL_SALT_LEN, msg, sizeof msg, secret, STL_SALT_LEN);
}

int stl_community_valid(const char *s)
{
    if (!s)
        return 0;
    size_t n = strlen(s);
    if (n == 0 || n > STL_COMMUNITY_MAX)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '/' || c == ':' || c == '-'))
            return 0;
    }
    return 1;
}

static void totals_fields(const stl_totals *t, int64_t v[12])
{
    int64_t x[12] = {t->contracted_wh,  t->delivered_wh,   t->paid_uc,          t->received_uc,
                     t->fees_uc,        t->rounding_uc,    t->grid_bought_wh,   t->grid_sold_wh,
                     t->grid_paid_uc,   t->grid_received_uc, t->import_wh,      t->export_wh};
    memcpy(v, x, sizeof x);
}

size_t stl_block_encode(const stl_block *b, uint8_t out[STL_BLOCK_MAX_LEN])
{
    if (!stl_community_valid(b->community))
        return 0;
    int64_t tv[12];
    totals_fields(&b->totals, tv);
    int64_t tf[3] = {b->tariffs.feed_in_uc_per_kwh, b->tariffs.retail_uc_per_kwh,
                     b->tariffs.network_fee_uc_per_kwh};
    if (!nonneg(tv, 12) || !nonneg(tf, 3) || b->interval_len_s == 0 || !version_ok(b->version) ||
        b->timing > (b->version == STL_LEDGER_V1 ? 0 : STL_TIMING_EX_POST))
        return 0;
    wcur w = {out, 0};
    put_bytes(&w, BLOCK_TAG, 4);
    out[w.n++] = b->version;
    size_t cl = strlen(b->community);
    out[w.n++] = (uint8_t)cl;
    put_bytes(&w, b->community, cl);
    put_u64(&w, b->height);
    put_i64(&w, b->interval_id);
    put_u32(&w, b->interval_len_s);
    if (b->version != STL_LEDGER_V1)
        out[w.n++] = b->timing;
    for (int i = 0; i < 3; i++)
        put_i64(&w, tf[i]);
    put_bytes(&w, b->prev_hash, STL_ID_LEN);
    put_u32(&w, b->n_tx);
    put_bytes(&w, b->tx_root, STL_ID_LEN);
    put_u64(&w, b->log_size);
    put_bytes(&w, b->log_root, STL_ID_LEN);
    put_u32(&w, b->totals.n_trades);
    put_u32(&w, b->totals.n_positions);
    put_u32(&w, b->totals.n_held);
    for (int i = 0; i < 12; i++)
        put_i64(&w, tv[i]);
    return w.n;
}

int stl_block_decode(const uint8_t *buf, size_t len, stl_block *b)
{
    rcur r;
    uint8_t version;
    if (!begin_decode(&r, buf, len, STL_BLOCK_MAX_LEN, BLOCK_TAG, b, sizeof *b, &version))
        return STL_E_ENCODING;
    b->version = version;
    uint8_t cl = get_u8(&r);
    if (cl > STL_COMMUNITY_MAX)
        return STL_E_ENCODING;
    get_bytes(&r, b->community, cl);
    b->community[cl] = 0;
    b->height = get_u64(&r);
    b->interval_id = get_i64(&r);
    b->interval_len_s = get_u32(&r);
    if (version != STL_LEDGER_V1)
        b->timing = get_u8(&r);
    b->tariffs.feed_in_uc_per_kwh = get_i64(&r);
    b->tariffs.retail_uc_per_kwh = get_i64(&r);
    b->tariffs.network_fee_uc_per_kwh = get_i64(&r);
    get_bytes(&r, b->prev_hash, STL_ID_LEN);
    b->n_tx = get_u32(&r);
    get_bytes(&r, b->tx_root, STL_ID_LEN);
    b->log_size = get_u64(&r);
    get_bytes(&r, b->log_root, STL_ID_LEN);
    stl_totals *t = &b->totals;
    t->n_trades = get_u32(&r);
    t->n_positions = get_u32(&r);
    t->n_held = get_u32(&r);
    int64_t *f[12] = {&t->contracted_wh, &t->delivered_wh,   &t->paid_uc,        &t->received_uc,
                      &t->fees_uc,       &t->rounding_uc,    &t->grid_bought_wh, &t->grid_sold_wh,
                      &t->grid_paid_uc,  &t->grid_received_uc, &t->import_wh,    &t->export_wh};
    for (int i = 0; i < 12; i++)
        *f[i] = get_i64(&r);
    if (r.bad || r.n != 0)
        return STL_E_ENCODING;
    uint8_t again[STL_BLOCK_MAX_LEN];
    return end_decode(buf, len, again, stl_block_encode(b, again));
}

void stl_block_hash(const uint8_t *enc, size_t len, uint8_t hash[STL_ID_LEN])
{
    crypto_hash_sha256(hash, enc, len);
}

void stl_sign(const uint8_t *msg, size_t len, const uint8_t sk[STL_SK_LEN],
              uint8_t sig[STL_SIG_LEN])
{
    crypto_sign_detached(sig, NULL, msg, len, sk);
}

int stl_verify(const uint8_t *msg, size_t len, const uint8_t *sig, size_t sig_len,
               const uint8_t pk[STL_PK_LEN])
{
    if (!sig || !pk || sig_len != STL_SIG_LEN)
        return STL_E_SIGNATURE;
    return crypto_sign_verify_detached(sig, msg, len, pk) == 0 ? STL_OK : STL_E_SIGNATURE;
}
