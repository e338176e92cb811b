/*
 * The pure decoders of Solana JSON-RPC answers (controller/src/solana_rpc.h), on answers
 * shaped as the Solana RPC documentation shows them, and on malformed ones.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "solana/solana_rpc.h"

#define P(s) s, strlen(s)

static const char SIG[] =
    "5VERv8NMvzbJMEkV8xnrLkEaWRtSz9CosKDYjCJjBRnbJLgp8uirBgmQpjKhoR4tjF3ZpRzrFmBV6UjKdiSZkQUW";

static void send_answers(void **state)
{
    (void)state;
    char sig[89], err[CTL_SOLRPC_ERR_MAX], body[256];
    snprintf(body, sizeof body, "{\"jsonrpc\":\"2.0\",\"result\":\"%s\",\"id\":1}", SIG);
    assert_int_equal(ctl_sol_rpc_parse_send(P(body), sig, err), CTL_SOLRPC_OK);
    assert_string_equal(sig, SIG);
    assert_int_equal(ctl_sol_rpc_parse_send(P("{\"jsonrpc\":\"2.0\",\"error\":{\"code\":-32002,"
                                              "\"message\":\"Transaction simulation failed: "
                                              "Blockhash not found\"},\"id\":1}"),
                                            sig, err),
                     CTL_SOLRPC_E_RPC);
    assert_non_null(strstr(err, "-32002"));
    assert_non_null(strstr(err, "Blockhash not found"));
    assert_int_equal(ctl_sol_rpc_parse_send(P("{\"result\":\"0OIl\"}"), sig, err), CTL_SOLRPC_E_PROTO);
    assert_int_equal(ctl_sol_rpc_parse_send(P("{\"result\":42}"), sig, err), CTL_SOLRPC_E_PROTO);
    assert_int_equal(ctl_sol_rpc_parse_send(P("[1,2]"), sig, err), CTL_SOLRPC_E_PROTO);
    assert_int_equal(ctl_sol_rpc_parse_send(P("not json"), sig, NULL), CTL_SOLRPC_E_PROTO);
    assert_int_equal(ctl_sol_rpc_parse_send(P("{\"id\":1}"), sig, err), CTL_SOLRPC_E_PROTO);
}

static void status_answers(void **state)
{
    (void)state;
    ctl_sol_status st;
    char err[CTL_SOLRPC_ERR_MAX];
    assert_int_equal(ctl_sol_rpc_parse_status(P("{\"result\":{\"context\":{\"slot\":82},"
                                                "\"value\":[null]}}"), &st, err), CTL_SOLRPC_OK);
    assert_int_equal(st, CTL_SOLSTAT_UNKNOWN);
    assert_int_equal(ctl_sol_rpc_parse_status(P("{\"result\":{\"value\":[{\"slot\":72,"
                                                "\"confirmations\":10,\"err\":null,"
                                                "\"confirmationStatus\":\"confirmed\"}]}}"),
                                              &st, err), CTL_SOLRPC_OK);
    assert_int_equal(st, CTL_SOLSTAT_PROCESSED); /* only finalized is final */
    assert_int_equal(ctl_sol_rpc_parse_status(P("{\"result\":{\"value\":[{\"slot\":48,"
                                                "\"confirmations\":null,\"err\":null,"
                                                "\"confirmationStatus\":\"finalized\"}]}}"),
                                              &st, err), CTL_SOLRPC_OK);
    assert_int_equal(st, CTL_SOLSTAT_CONFIRMED);
    /* older nodes: no confirmationStatus, confirmations null = rooted */
    assert_int_equal(ctl_sol_rpc_parse_status(P("{\"result\":{\"value\":[{\"slot\":48,"
                                                "\"confirmations\":null,\"err\":null}]}}"),
                                              &st, err), CTL_SOLRPC_OK);
    assert_int_equal(st, CTL_SOLSTAT_CONFIRMED);
    assert_int_equal(ctl_sol_rpc_parse_status(
                         P("{\"result\":{\"value\":[{\"slot\":48,\"confirmations\":null,"
                           "\"err\":{\"InstructionError\":[1,{\"Custom\":1}]},"
                           "\"confirmationStatus\":\"finalized\"}]}}"), &st, err),
                     CTL_SOLRPC_OK);
    assert_int_equal(st, CTL_SOLSTAT_FAILED);
    assert_non_null(strstr(err, "Custom"));
    assert_int_equal(ctl_sol_rpc_parse_status(P("{\"result\":{\"value\":[]}}"), &st, err),
                     CTL_SOLRPC_E_PROTO);
    assert_int_equal(ctl_sol_rpc_parse_status(P("{\"result\":{\"value\":[7]}}"), &st, err),
                     CTL_SOLRPC_E_PROTO);
}

static void blockhash_and_height_answers(void **state)
{
    (void)state;
    uint8_t hash[32];
    uint64_t v;
    char err[CTL_SOLRPC_ERR_MAX];
    assert_int_equal(ctl_sol_rpc_parse_blockhash(
                         P("{\"result\":{\"context\":{\"slot\":2792},\"value\":{\"blockhash\":"
                           "\"EkSnNWid2cvwEVnVx9aBqawnmiCNiDgp3gUdkDPTKN1N\","
                           "\"lastValidBlockHeight\":3090}}}"), hash, &v, err),
                     CTL_SOLRPC_OK);
    assert_int_equal(v, 3090);
    assert_int_equal(ctl_sol_rpc_parse_blockhash(
                         P("{\"result\":{\"value\":{\"blockhash\":\"short\","
                           "\"lastValidBlockHeight\":3090}}}"), hash, &v, err),
                     CTL_SOLRPC_E_PROTO);
    assert_int_equal(ctl_sol_rpc_parse_blockhash(
                         P("{\"result\":{\"value\":{\"blockhash\":"
                           "\"EkSnNWid2cvwEVnVx9aBqawnmiCNiDgp3gUdkDPTKN1N\","
                           "\"lastValidBlockHeight\":-1}}}"), hash, &v, err),
                     CTL_SOLRPC_E_PROTO);
    assert_int_equal(ctl_sol_rpc_parse_u64(P("{\"result\":1233}"), &v, err), CTL_SOLRPC_OK);
    assert_int_equal(v, 1233);
    assert_int_equal(ctl_sol_rpc_parse_u64(P("{\"result\":\"1233\"}"), &v, err), CTL_SOLRPC_E_PROTO);
    assert_int_equal(ctl_sol_rpc_parse_u64(P("{\"error\":{\"code\":-32601,\"message\":\"Method "
                                             "not found\"}}"), &v, err), CTL_SOLRPC_E_RPC);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(send_answers),
        cmocka_unit_test(status_answers),
        cmocka_unit_test(blockhash_and_height_answers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
