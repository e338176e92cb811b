/*
 * Solana JSON-RPC over HTTP: libcurl moves bytes, jansson reads them, and the decoders below
 * turn each method's answer into plain values. Responses are bounded (CTL_SOLRPC_MAX_RESPONSE)
 * and every field is checked for type before use.
 */
#include "solana/solana_rpc.h"

#include <curl/curl.h>
#include <jansson.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mgx/solana_base58.h"

struct ctl_sol_rpc {
    CURL *curl;
    struct curl_slist *headers;
    char *url;
    long timeout_ms;
    unsigned id;
    char err[CTL_SOLRPC_ERR_MAX];
    char *body;
    size_t body_len, body_cap;
    int too_big;
};

const char *ctl_sol_rpc_strerror(int code)
{
    switch (code) {
    case CTL_SOLRPC_OK: return "success";
    case CTL_SOLRPC_E_TRANSPORT: return "no answer from the RPC node (outcome unknown)";
    case CTL_SOLRPC_E_RPC: return "the RPC node returned an error";
    case CTL_SOLRPC_E_PROTO: return "malformed answer from the RPC node";
    case CTL_SOLRPC_E_INVAL: return "invalid argument";
    case CTL_SOLRPC_E_NOMEM: return "out of memory";
    default: return "unknown error";
    }
}

static void set_err(char *err, const char *what)
{
    if (err)
        snprintf(err, CTL_SOLRPC_ERR_MAX, "%s", what);
}

/* Loads body and returns its "result", or NULL with err set (E_RPC or E_PROTO in *rc). The
 * caller decrefs *root. */
static json_t *result_of(const char *body, size_t len, json_t **root, char *err, int *rc)
{
    json_error_t je;
    *root = json_loadb(body, len, 0, &je);
    if (!*root || !json_is_object(*root)) {
        set_err(err, "response is not a JSON object");
        *rc = CTL_SOLRPC_E_PROTO;
        return NULL;
    }
    json_t *e = json_object_get(*root, "error");
    if (e && !json_is_null(e)) {
        const char *msg = json_string_value(json_object_get(e, "message"));
        if (err)
            snprintf(err, CTL_SOLRPC_ERR_MAX, "RPC error %lld: %s",
                     (long long)json_integer_value(json_object_get(e, "code")),
                     msg ? msg : "(no message)");
        *rc = CTL_SOLRPC_E_RPC;
        return NULL;
    }
    json_t *r = json_object_get(*root, "result");
    if (!r) {
        set_err(err, "response has neither result nor error");
        *rc = CTL_SOLRPC_E_PROTO;
    }
    return r;
}

int ctl_sol_rpc_parse_send(const char *body, size_t len, char sig_b58[89], char *err)
{
    json_t *root;
    int rc = CTL_SOLRPC_OK;
    json_t *r = result_of(body, len, &root, err, &rc);
    if (r) {
        const char *s = json_string_value(r);
        uint8_t sig[64];
        if (!s || sol_base58_decode(s, sig, sizeof sig) != SOL_OK) {
            set_err(err, "result is not a base58 signature");
            rc = CTL_SOLRPC_E_PROTO;
        } else {
            snprintf(sig_b58, 89, "%s", s);
        }
    }
    json_decref(root);
    return rc;
}

int ctl_sol_rpc_parse_status(const char *body, size_t len, ctl_sol_status *st, char *err)
{
    json_t *root;
    int rc = CTL_SOLRPC_OK;
    json_t *r = result_of(body, len, &root, err, &rc);
    if (r) {
        json_t *value = json_object_get(r, "value");
        json_t *entry = json_array_get(value, 0);
        if (!json_is_array(value) || json_array_size(value) != 1) {
            set_err(err, "value is not a one-element array");
            rc = CTL_SOLRPC_E_PROTO;
        } else if (json_is_null(entry)) {
            *st = CTL_SOLSTAT_UNKNOWN;
        } else if (!json_is_object(entry)) {
            set_err(err, "status entry is not an object");
            rc = CTL_SOLRPC_E_PROTO;
        } else {
            /* Only a finalized (rooted) result is final; "confirmations": null also means
             * rooted on nodes that omit confirmationStatus. */
            const char *cs = json_string_value(json_object_get(entry, "confirmationStatus"));
            json_t *conf = json_object_get(entry, "confirmations");
            int final = cs ? strcmp(cs, "finalized") == 0 : (conf && json_is_null(conf));
            json_t *e = json_object_get(entry, "err");
            int failed = e && !json_is_null(e);
            *st = !final ? CTL_SOLSTAT_PROCESSED
                         : failed ? CTL_SOLSTAT_FAILED : CTL_SOLSTAT_CONFIRMED;
            if (failed && err) {
                char *txt = json_dumps(e, JSON_COMPACT);
                snprintf(err, CTL_SOLRPC_ERR_MAX, "%s", txt ? txt : "error");
                free(txt);
            }
        }
    }
    json_decref(root);
    return rc;
}

int ctl_sol_rpc_parse_blockhash(const char *body, size_t len, uint8_t hash[32],
                                uint64_t *last_valid_block_height, char *err)
{
    json_t *root;
    int rc = CTL_SOLRPC_OK;
    json_t *r = result_of(body, len, &root, err, &rc);
    if (r) {
        json_t *value = json_object_get(r, "value");
        const char *bh = json_string_value(json_object_get(value, "blockhash"));
        json_t *lv = json_object_get(value, "lastValidBlockHeight");
        if (!bh || sol_base58_decode(bh, hash, 32) != SOL_OK || !json_is_integer(lv) ||
            json_integer_value(lv) < 0) {
            set_err(err, "value lacks a base58 blockhash or lastValidBlockHeight");
            rc = CTL_SOLRPC_E_PROTO;
        } else {
            *last_valid_block_height = (uint64_t)json_integer_value(lv);
        }
    }
    json_decref(root);
    return rc;
}

int ctl_sol_rpc_parse_u64(const char *body, size_t len, uint64_t *v, char *err)
{
    json_t *root;
    int rc = CTL_SOLRPC_OK;
    json_t *r = result_of(body, len, &root, err, &rc);
    if (r) {
        if (!json_is_integer(r) || json_integer_value(r) < 0) {
            set_err(err, "result is not a non-negative integer");
            rc = CTL_SOLRPC_E_PROTO;
        } else {
            *v = (uint64_t)json_integer_value(r);
        }
    }
    json_decref(root);
    return rc;
}

static size_t on_body(char *data, size_t size, size_t n, void *user)
{
    ctl_sol_rpc *r = user;
    size_t len = size * n;
    if (r->body_len + len + 1 > CTL_SOLRPC_MAX_RESPONSE) {
        r->too_big = 1;
        return 0;
    }
    if (r->body_len + len + 1 > r->body_cap) {
        size_t cap = r->body_cap ? r->body_cap : 4096;
        while (cap < r->body_len + len + 1)
            cap *= 2;
        char *b = realloc(r->body, cap);
        if (!b)
            return 0;
        r->body = b;
        r->body_cap = cap;
    }
    memcpy(r->body + r->body_len, data, len);
    r->body_len += len;
    r->body[r->body_len] = '\0';
    return len;
}

ctl_sol_rpc *ctl_sol_rpc_new(const char *url, long timeout_ms)
{
    if (!url || timeout_ms <= 0)
        return NULL;
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        return NULL;
    ctl_sol_rpc *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    size_t n = strlen(url) + 1;
    r->url = malloc(n);
    if (r->url)
        memcpy(r->url, url, n);
    r->curl = curl_easy_init();
    r->headers = curl_slist_append(NULL, "Content-Type: application/json");
    if (!r->url || !r->curl || !r->headers) {
        ctl_sol_rpc_free(r);
        return NULL;
    }
    r->timeout_ms = timeout_ms;
    return r;
}

void ctl_sol_rpc_free(ctl_sol_rpc *r)
{
    if (!r)
        return;
    if (r->curl)
        curl_easy_cleanup(r->curl);
    curl_slist_free_all(r->headers);
    free(r->url);
    free(r->body);
    free(r);
}

const char *ctl_sol_rpc_last_error(const ctl_sol_rpc *r)
{
    return r ? r->err : "no client";
}

/* POSTs {"jsonrpc":"2.0","id":N,"method":method,"params":params} (steals params). */
static int call(ctl_sol_rpc *r, const char *method, json_t *params)
{
    json_t *req = json_pack("{s:s, s:I, s:s, s:o}", "jsonrpc", "2.0", "id", (json_int_t)++r->id,
                            "method", method, "params", params);
    char *text = req ? json_dumps(req, JSON_COMPACT) : NULL;
    json_decref(req);
    if (!text)
        return CTL_SOLRPC_E_NOMEM;
    r->body_len = 0;
    r->too_big = 0;
    r->err[0] = '\0';
    CURL *c = r->curl;
    curl_easy_setopt(c, CURLOPT_URL, r->url);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, r->headers);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, text);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, r->timeout_ms);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, r);
    CURLcode cc = curl_easy_perform(c);
    free(text);
    long status = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    if (r->too_big) {
        set_err(r->err, "response larger than the bound");
        return CTL_SOLRPC_E_PROTO;
    }
    if (cc != CURLE_OK) {
        snprintf(r->err, sizeof r->err, "%s: %s", method, curl_easy_strerror(cc));
        return CTL_SOLRPC_E_TRANSPORT;
    }
    /* JSON-RPC errors may come with any status; without a body it is the transport's. */
    if (status != 200 && r->body_len == 0) {
        snprintf(r->err, sizeof r->err, "%s: HTTP %ld", method, status);
        return CTL_SOLRPC_E_TRANSPORT;
    }
    if (!r->body)
        return CTL_SOLRPC_E_PROTO;
    return CTL_SOLRPC_OK;
}

int ctl_sol_rpc_send(ctl_sol_rpc *r, const uint8_t *tx, size_t len, char sig_b58[89])
{
    if (!r || !tx || len == 0 || len > 2048 || !sig_b58)
        return CTL_SOLRPC_E_INVAL;
    char b64[4096];
    sodium_bin2base64(b64, sizeof b64, tx, len, sodium_base64_VARIANT_ORIGINAL);
    /* Preflight stays on: a transaction the node's simulation refuses is not forwarded. */
    json_t *params = json_pack("[s, {s:s, s:s}]", b64, "encoding", "base64",
                               "preflightCommitment", "confirmed");
    int rc = call(r, "sendTransaction", params);
    if (rc == CTL_SOLRPC_OK)
        rc = ctl_sol_rpc_parse_send(r->body, r->body_len, sig_b58, r->err);
    return rc;
}

int ctl_sol_rpc_status(ctl_sol_rpc *r, const char *sig_b58, ctl_sol_status *st)
{
    if (!r || !sig_b58 || !st)
        return CTL_SOLRPC_E_INVAL;
    json_t *params = json_pack("[[s], {s:b}]", sig_b58, "searchTransactionHistory", 1);
    int rc = call(r, "getSignatureStatuses", params);
    if (rc == CTL_SOLRPC_OK)
        rc = ctl_sol_rpc_parse_status(r->body, r->body_len, st, r->err);
    return rc;
}

int ctl_sol_rpc_latest_blockhash(ctl_sol_rpc *r, const char *commitment, uint8_t hash[32],
                                 uint64_t *last_valid_block_height)
{
    if (!r || !commitment || !hash || !last_valid_block_height)
        return CTL_SOLRPC_E_INVAL;
    int rc = call(r, "getLatestBlockhash", json_pack("[{s:s}]", "commitment", commitment));
    if (rc == CTL_SOLRPC_OK)
        rc = ctl_sol_rpc_parse_blockhash(r->body, r->body_len, hash, last_valid_block_height,
                                         r->err);
    return rc;
}

int ctl_sol_rpc_block_height(ctl_sol_rpc *r, const char *commitment, uint64_t *height)
{
    if (!r || !commitment || !height)
        return CTL_SOLRPC_E_INVAL;
    int rc = call(r, "getBlockHeight", json_pack("[{s:s}]", "commitment", commitment));
    if (rc == CTL_SOLRPC_OK)
        rc = ctl_sol_rpc_parse_u64(r->body, r->body_len, height, r->err);
    return rc;
}
