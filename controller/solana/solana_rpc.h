/*
 * Internal: a Solana JSON-RPC client for the settlement outbox (libcurl + jansson), with the
 * four calls it needs: sendTransaction (base64), getSignatureStatuses, getLatestBlockhash and
 * getBlockHeight.
 *
 * Every response is decoded by a pure function (ctl_sol_rpc_parse_*) that the unit tests drive
 * with fixed JSON, so the HTTP part is a thin shell. Errors keep the distinction the outbox
 * relies on: a transport error (timeout, connection reset, HTTP 5xx) means "unknown: the node
 * may or may not have the transaction"; an RPC error object means the node answered and
 * refused. Neither says the transaction cannot land: only the chain's status and block height
 * say that (see solana_outbox.h).
 *
 * Thread safety: one client per thread.
 */
#ifndef MGX_CTL_SOLANA_RPC_H
#define MGX_CTL_SOLANA_RPC_H

#include <stddef.h>
#include <stdint.h>

enum {
    CTL_SOLRPC_OK = 0,
    CTL_SOLRPC_E_TRANSPORT = -1, /* no (complete) answer: outcome unknown */
    CTL_SOLRPC_E_RPC = -2,       /* the node answered with a JSON-RPC error */
    CTL_SOLRPC_E_PROTO = -3,     /* the answer is not what the method returns */
    CTL_SOLRPC_E_INVAL = -4,
    CTL_SOLRPC_E_NOMEM = -5
};

const char *ctl_sol_rpc_strerror(int code);

#define CTL_SOLRPC_MAX_RESPONSE (1024 * 1024) /* bytes; larger answers are protocol errors */
#define CTL_SOLRPC_ERR_MAX 256

typedef enum {
    CTL_SOLSTAT_UNKNOWN = 0,   /* the node does not know the signature */
    CTL_SOLSTAT_PROCESSED = 1, /* in a block, not yet confirmed */
    CTL_SOLSTAT_CONFIRMED = 2, /* confirmed or finalized, no error */
    CTL_SOLSTAT_FAILED = 3     /* landed with an error: fee paid, instructions rolled back */
} ctl_sol_status;

typedef struct ctl_sol_rpc ctl_sol_rpc;

/* A client for url (http:// or https://) with a per-request timeout. NULL on failure. */
ctl_sol_rpc *ctl_sol_rpc_new(const char *url, long timeout_ms);
void ctl_sol_rpc_free(ctl_sol_rpc *r);
/* The last error's text (RPC message or transport reason); never NULL. */
const char *ctl_sol_rpc_last_error(const ctl_sol_rpc *r);

/* sendTransaction with base64 encoding. On success sig_b58 gets the signature the node
 * reports (up to 88 characters + NUL). */
int ctl_sol_rpc_send(ctl_sol_rpc *r, const uint8_t *tx, size_t len, char sig_b58[89]);
/* getSignatureStatuses for one signature, searching the transaction history. */
int ctl_sol_rpc_status(ctl_sol_rpc *r, const char *sig_b58, ctl_sol_status *st);
/* getLatestBlockhash at the given commitment ("finalized", "confirmed"). */
int ctl_sol_rpc_latest_blockhash(ctl_sol_rpc *r, const char *commitment, uint8_t hash[32],
                                 uint64_t *last_valid_block_height);
/* getBlockHeight at the given commitment. */
int ctl_sol_rpc_block_height(ctl_sol_rpc *r, const char *commitment, uint64_t *height);

/* Pure decoders of a JSON-RPC response body. err (CTL_SOLRPC_ERR_MAX bytes, may be NULL)
 * gets the RPC error message or the reason the body is malformed. */
int ctl_sol_rpc_parse_send(const char *body, size_t len, char sig_b58[89], char *err);
int ctl_sol_rpc_parse_status(const char *body, size_t len, ctl_sol_status *st, char *err);
int ctl_sol_rpc_parse_blockhash(const char *body, size_t len, uint8_t hash[32],
                                uint64_t *last_valid_block_height, char *err);
int ctl_sol_rpc_parse_u64(const char *body, size_t len, uint64_t *v, char *err);

#endif
