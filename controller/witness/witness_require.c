/*
 * The auditor's side of witnesses (witness.h, ctl_witness_require): k of n known witnesses
 * must vouch for the ledger's latest checkpoint, and nothing any of them cosigned may be
 * missing from or differ from this ledger's log.
 */
#include "witness/witness.h"

#include "common/errbuf.h"
#include "settle/ledger_proof.h"
#include "settle/ledger_store.h"

#include <stdlib.h>
#include <string.h>

#define FAULT(...)                                                                                 \
    do {                                                                                           \
        ctl_errf(msg, msglen, __VA_ARGS__);                                                        \
        rc = CTL_LEDGER_E_FAULT;                                                                   \
        goto out;                                                                                  \
    } while (0)

int ctl_witness_require(ctl_db *db, const uint8_t (*pks)[STL_PK_LEN], size_t n_pk, size_t k,
                        const char *const *notes, const size_t *lens, size_t n_notes, char *msg,
                        size_t msglen)
{
    char community[STL_COMMUNITY_MAX + 1], vkey[STL_VKEY_MAX], name[STL_COMMUNITY_MAX + 1];
    uint8_t pk[STL_PK_LEN];
    char *head_note = NULL;
    int *vouched = calloc(n_pk ? n_pk : 1, sizeof *vouched);
    int rc = CTL_LEDGER_OK;
    stl_checkpoint head;
    uint64_t head_size = 0;
    memset(&head, 0, sizeof head);
    if (!vouched) {
        rc = CTL_LEDGER_E_NOMEM;
        goto out;
    }
    rc = ctl_ledger_meta(db, community, vkey, sizeof vkey);
    if (rc == CTL_LEDGER_E_NOTFOUND)
        FAULT("the ledger is empty; the witnesses cosigned nothing of it");
    if (rc != CTL_LEDGER_OK)
        goto out;
    if (stl_vkey_parse(vkey, name, pk) != STL_OK)
        FAULT("the ledger's key record is malformed");
    head_note = ctl_ledger_checkpoint(db, -1, &head_size);
    if (!head_note ||
        stl_checkpoint_open(head_note, strlen(head_note), name, pk, community, &head) != STL_OK)
        FAULT("the ledger has no readable latest checkpoint");
    for (size_t j = 0; j < n_notes; j++) {
        stl_checkpoint cp;
        if (stl_checkpoint_open(notes[j], lens[j], name, pk, community, &cp) != STL_OK)
            FAULT("cosigned checkpoint %zu is not a checkpoint of %s signed by the ledger's key",
                  j + 1, community);
        for (size_t i = 0; i < n_pk; i++) {
            uint64_t t = 0;
            char who[STL_COSIG_NAME_MAX + 1];
            if (stl_cosig_find(notes[j], lens[j], pks[i], NULL, &t, who) != STL_OK)
                continue;
            if (cp.size > head.size)
                FAULT("witness %s cosigned a log of %llu transactions (at time %llu) but the "
                      "ledger has %llu: it was truncated or rolled back",
                      who, (unsigned long long)cp.size, (unsigned long long)t,
                      (unsigned long long)head.size);
            uint8_t root[STL_HASH_LEN];
            if (stl_merkle_root_at(cp.size, ctl_ledger_node, db, root) != STL_OK)
                FAULT("the ledger's Merkle log cannot give its root at size %llu",
                      (unsigned long long)cp.size);
            if (memcmp(root, cp.root, STL_HASH_LEN) != 0)
                FAULT("witness %s cosigned a log of %llu transactions (at time %llu) whose root "
                      "differs from this ledger's at that size: the ledger forked from what the "
                      "witness saw",
                      who, (unsigned long long)cp.size, (unsigned long long)t);
            if (cp.size == head.size)
                vouched[i] = 1;
        }
    }
    size_t got = 0, distinct = 0;
    for (size_t i = 0; i < n_pk; i++) {
        int dup = 0;
        for (size_t q = 0; q < i; q++)
            dup |= memcmp(pks[q], pks[i], STL_PK_LEN) == 0;
        if (dup)
            continue;
        distinct++;
        got += (size_t)vouched[i];
    }
    if (got < k)
        FAULT("%zu of the %zu known witnesses cosigned the latest checkpoint (log size %llu); "
              "%zu required",
              got, distinct, (unsigned long long)head.size, k);
    ctl_errf(msg, msglen, "%zu of %zu witnesses cosigned the latest checkpoint (log size %llu)",
             got, distinct, (unsigned long long)head.size);
    rc = CTL_LEDGER_OK;
out:
    free(vouched);
    free(head_note);
    return rc;
}

size_t ctl_witness_count_on(const stl_checkpoint *cp, const char *log_name,
                            const uint8_t log_pk[STL_PK_LEN], const uint8_t (*pks)[STL_PK_LEN],
                            size_t n_pk, const char *const *notes, const size_t *lens,
                            size_t n_notes)
{
    size_t got = 0;
    for (size_t i = 0; i < n_pk; i++) {
        int dup = 0;
        for (size_t q = 0; q < i; q++)
            dup |= memcmp(pks[q], pks[i], STL_PK_LEN) == 0;
        for (size_t j = 0; j < n_notes && !dup; j++) {
            stl_checkpoint c;
            if (stl_checkpoint_open(notes[j], lens[j], log_name, log_pk, cp->origin, &c) ==
                    STL_OK &&
                c.size == cp->size && memcmp(c.root, cp->root, STL_HASH_LEN) == 0 &&
                stl_cosig_find(notes[j], lens[j], pks[i], NULL, NULL, NULL) == STL_OK) {
                got++;
                break;
            }
        }
    }
    return got;
}
