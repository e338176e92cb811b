/*
 * A block signed by the community key over the test's own transactions (forged_block.h).
 */
#include "forged_block.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "mgx/checkpoint.h"
#include "mgx/ledger_record.h"
#include "mgx/merkle.h"

void tst_forge_block(ctl_db *db, const ctl_ledger_key *k, int64_t interval_id,
                     const stl_tariffs *tar, const ctl_ledger_txs *s, const stl_totals *totals)
{
    stl_block prev, b;
    uint8_t prev_hash[32], hash[32], sig[64];
    assert_int_equal(ctl_ledger_block_load(db, -1, INT64_MIN, &prev, prev_hash), CTL_LEDGER_OK);
    assert_int_equal(ctl_db_begin(db), SQLITE_OK);
    memset(&b, 0, sizeof b);
    b.version = STL_LEDGER_V2;
    strcpy(b.community, k->name);
    b.height = prev.height + 1;
    b.interval_id = interval_id;
    b.interval_len_s = 900;
    b.tariffs = *tar;
    memcpy(b.prev_hash, prev_hash, 32);
    b.n_tx = (uint32_t)s->n;
    assert_int_equal(ctl_ledger_txs_insert(db, s, b.height, prev.log_size), CTL_LEDGER_OK);
    stl_frontier f;
    assert_int_equal(ctl_ledger_log_append(db, s, prev.log_size, &f), CTL_LEDGER_OK);
    stl_merkle_root((const uint8_t(*)[STL_HASH_LEN])s->leaf, s->n, b.tx_root);
    b.log_size = f.size;
    stl_frontier_root(&f, b.log_root);
    b.totals = *totals;
    uint8_t enc[STL_BLOCK_MAX_LEN];
    size_t len = stl_block_encode(&b, enc);
    assert_true(len > 0);
    stl_block_hash(enc, len, hash);
    stl_sign(enc, len, k->sk, sig);
    char note[STL_NOTE_MAX];
    assert_true(stl_checkpoint_sign(k->name, b.log_size, b.log_root, k->name, k->sk, note,
                                    sizeof note) >= 0);
    assert_int_equal(ctl_ledger_block_insert(db, &b, enc, len, hash, sig, note), CTL_LEDGER_OK);
    assert_int_equal(ctl_db_exec(db, "COMMIT"), SQLITE_OK);
}
