/*
 * Test support for the Solana tests: the LiteSVM-backed JSON-RPC server (rpc_server.mjs, run by
 * node) that the outbox and `mgx controller` with [solana] submit to.
 */
#ifndef MGX_TEST_RPC_NODE_H
#define MGX_TEST_RPC_NODE_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* Starts `node rpc_server.mjs PORT SCENARIO [SPEC]` on a free loopback port (spec may be NULL),
 * with stderr appended to log (NULL: the test's own), and waits for its READY line. Returns its
 * pid with its URL ("http://127.0.0.1:PORT") in url, or -1 when it did not come up (then it is
 * stopped). Stop it with SIGTERM. */
pid_t sol_node_start(const char *scenario, const char *spec, const char *log, char *url,
                     size_t cap);

/* true (after a SKIP line on stdout) when tests/solana/node_modules lacks LiteSVM: `npm ci` in
 * tests/solana was not run; the test then reports itself skipped (exit 77). */
bool sol_node_missing(void);

#endif
