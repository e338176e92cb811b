/*
 * Fixtures for the orders tests; see orders_fixture.h.
 */
#include "orders_fixture.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

const uint8_t TST_RFC8032_SEED[32] = {
    0x9d, 0x61, 0xb1, 0x9d, 0xef, 0xfd, 0x5a, 0x60, 0xba, 0x84, 0x4a, 0xf4, 0x92, 0xec, 0x2c, 0xc4,
    0x44, 0x49, 0xc5, 0x69, 0x7b, 0x32, 0x69, 0x19, 0x70, 0x3b, 0xac, 0x03, 0x1c, 0xae, 0x7f, 0x60};
const uint8_t TST_RFC8032_PK[32] = {
    0xd7, 0x5a, 0x98, 0x01, 0x82, 0xb1, 0x0a, 0xb7, 0xd5, 0x4b, 0xfe, 0xd3, 0xc9, 0x64, 0x07, 0x3a,
    0x0e, 0xe1, 0x72, 0xf3, 0xda, 0xa6, 0x23, 0x25, 0xaf, 0x02, 0x1a, 0x68, 0xf7, 0x07, 0x51, 0x1a};

void tst_example_order(ctl_order_msg *m)
{
    memset(m, 0, sizeof *m);
    strcpy(m->community, "elm-street");
    strcpy(m->participant, "home-07");
    m->interval_s = 900;
    m->interval_id = 1748779200 / 900; /* 1943088, exact */
    m->created_ms = (int64_t)(1748779200 - 20 * 60) * 1000;
    m->expiry_s = 1748779200;
    for (int i = 0; i < CTL_ORDER_NONCE_BYTES; i++)
        m->nonce[i] = (uint8_t)i;
    m->side = MKT_SELL;
    m->n_steps = 2;
    m->steps[0] = (mkt_step){1500, 80000};
    m->steps[1] = (mkt_step){1000, 120000};
}

void tst_sample_order(ctl_order_msg *m, unsigned i, int64_t interval_id)
{
    memset(m, 0, sizeof *m);
    strcpy(m->community, "elm-street");
    snprintf(m->participant, sizeof m->participant, "home-%u", i);
    m->interval_s = 900;
    m->interval_id = interval_id;
    m->created_ms = interval_id * 900 * 1000 - 600000;
    m->expiry_s = interval_id * 900;
    for (int b = 0; b < CTL_ORDER_NONCE_BYTES; b++)
        m->nonce[b] = (uint8_t)((i * 131u + (unsigned)b * 17u) ^ (unsigned)interval_id);
    m->side = i % 2 ? MKT_SELL : MKT_BUY;
    m->n_steps = 4;
    for (uint32_t s = 0; s < 4; s++) {
        m->steps[s].energy_wh = 200 + (int64_t)((i * 37u + s * 11u) % 900);
        m->steps[s].price_uc_per_kwh = 60000 + (int64_t)((i * 7919u + s * 104729u) % 200000);
    }
}

typedef struct {
    char *out;
    size_t cap, n;
} sbuf;

__attribute__((format(printf, 2, 3))) static void put(sbuf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int w = vsnprintf(b->out + b->n, b->n < b->cap ? b->cap - b->n : 0, fmt, ap);
    va_end(ap);
    if (w > 0)
        b->n += (size_t)w;
}

/* One line per field: offset, hex bytes (wrapped at 16), field name. */
static void field(sbuf *b, const uint8_t *enc, size_t *off, size_t len, const char *name)
{
    for (size_t done = 0; done < len || (len == 0 && done == 0); done += 16) {
        put(b, "%04zx  ", *off + done);
        size_t k = 0;
        for (; k < 16 && done + k < len; k++)
            put(b, "%02x ", enc[*off + done + k]);
        for (; k < 16; k++)
            put(b, "   ");
        put(b, " %s\n", done == 0 ? name : "");
        if (len == 0)
            break;
    }
    *off += len;
}

size_t tst_example_text(char *out, size_t cap)
{
    sbuf b = {out, cap, 0};
    ctl_order_msg m;
    tst_example_order(&m);
    ctl_secret_key *k = NULL;
    if (ctl_key_from_seed(TST_RFC8032_SEED, &k) != CTL_KEY_OK ||
        ctl_order_sign(&m, ctl_key_secret(k)) != CTL_R_OK) {
        ctl_key_free(k);
        return 0;
    }
    ctl_key_free(k);
    uint8_t enc[CTL_ORDER_ENC_MAX];
    size_t len = 0, off = 0;
    if (ctl_order_encode(&m, enc, &len) != CTL_R_OK)
        return 0;
    char name[96];
    put(&b, "```\n");
    field(&b, enc, &off, CTL_ORDER_DOMAIN_LEN, "domain tag \"mgx-order-v1\" + NUL");
    field(&b, enc, &off, 1, "community length = 10");
    field(&b, enc, &off, 10, "community \"elm-street\"");
    field(&b, enc, &off, 1, "participant length = 7");
    field(&b, enc, &off, 7, "participant \"home-07\"");
    field(&b, enc, &off, 8, "interval_id = 1943088");
    field(&b, enc, &off, 4, "interval_s = 900");
    field(&b, enc, &off, 8, "created_ms = 1748778000000");
    field(&b, enc, &off, 8, "expiry_s = 1748779200");
    field(&b, enc, &off, 16, "nonce");
    field(&b, enc, &off, 1, "side = 1 (sell)");
    field(&b, enc, &off, 1, "step count = 2");
    for (uint32_t s = 0; s < m.n_steps; s++) {
        snprintf(name, sizeof name, "steps[%u].energy_wh = %lld", s,
                 (long long)m.steps[s].energy_wh);
        field(&b, enc, &off, 8, name);
        snprintf(name, sizeof name, "steps[%u].price_uc_per_kwh = %lld", s,
                 (long long)m.steps[s].price_uc_per_kwh);
        field(&b, enc, &off, 8, name);
    }
    put(&b, "(%zu bytes)\n```\n\nSignature (Ed25519, RFC 8032 TEST 1 key, over the %zu bytes):\n\n```\n",
        len, len);
    for (int i = 0; i < CTL_ORDER_SIG_BYTES; i++)
        put(&b, "%02x%s", m.sig[i], i % 32 == 31 ? "\n" : "");
    put(&b, "```\n\nThe JSON message:\n\n```json\n");
    char json[CTL_ORDER_JSON_MAX];
    if (ctl_order_to_json(&m, json, sizeof json, NULL) != CTL_R_OK)
        return 0;
    put(&b, "%s\n```\n", json);
    return off == len ? b.n : 0;
}
