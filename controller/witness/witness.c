/*
 * One witness step (witness.h): audit the ledger read-only, check that its latest checkpoint
 * extends the one this witness cosigned before, cosign it and replace the state and out files.
 * The decision itself is the pure stl_witness_check (settlement/); this file does the I/O.
 */
#define _POSIX_C_SOURCE 200809L
#include "witness/witness.h"

#include "common/errbuf.h"
#include "common/file.h"
#include "orders/keys.h"
#include "settle/ledger_proof.h"
#include "settle/ledger_store.h"
#include "settle/ledger_verify.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct ctl_witness {
    ctl_witness_config c;
    ctl_secret_key *key;
    char log_name[STL_COMMUNITY_MAX + 1];
    uint8_t log_pk[STL_PK_LEN];
};

int ctl_witness_new(const ctl_witness_config *c, ctl_witness **out, char *err, size_t errlen)
{
    *out = NULL;
    ctl_witness *w = calloc(1, sizeof *w);
    char *text = NULL;
    size_t len;
    if (!w)
        return ctl_fail(CTL_WITNESS_E_IO, err, errlen, "out of memory");
    w->c = *c;
    int rc = ctl_key_load(c->key_file, &w->key);
    if (rc != CTL_KEY_OK) {
        ctl_errf(err, errlen, "%s: %s", c->key_file, ctl_key_strerror(rc));
        rc = CTL_WITNESS_E_KEY;
        goto fail;
    }
    if (ctl_read_file(c->log_key_file, 4096, &text, &len) != 0 ||
        stl_vkey_parse(text, w->log_name, w->log_pk) != STL_OK) {
        ctl_errf(err, errlen, "%s: not the community's verifier key (NAME+ID+KEY)",
                 c->log_key_file);
        rc = CTL_WITNESS_E_KEY;
        goto fail;
    }
    free(text);
    *out = w;
    return CTL_WITNESS_OK;
fail:
    free(text);
    ctl_witness_free(w);
    return rc;
}

void ctl_witness_free(ctl_witness *w)
{
    if (!w)
        return;
    ctl_key_free(w->key);
    free(w);
}

/* Replaces path by len bytes of data: a temporary file beside it, fsync, rename, fsync of the
 * folder. 0 or -1 with errno. */
static int replace_file(const char *path, const char *data, size_t len)
{
    char tmp[CFG_PATH_MAX + 8], dir[CFG_PATH_MAX];
    if (snprintf(tmp, sizeof tmp, "%s.tmp", path) >= (int)sizeof tmp ||
        snprintf(dir, sizeof dir, "%s", path) >= (int)sizeof dir) {
        errno = ENAMETOOLONG;
        return -1;
    }
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return -1;
    size_t done = 0;
    while (done < len) {
        ssize_t n = write(fd, data + done, len - done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            close(fd);
            unlink(tmp);
            return -1;
        }
        done += (size_t)n;
    }
    if (fsync(fd) != 0 || close(fd) != 0 || rename(tmp, path) != 0) {
        unlink(tmp);
        return -1;
    }
    int dfd = open(dirname(dir), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        fsync(dfd);
        close(dfd);
    }
    return 0;
}

/* The checkpoint this witness cosigned last: 1 loaded, 0 none yet, -1 unreadable or not a
 * checkpoint of this log (a damaged state file is never silently restarted from scratch:
 * that would let the log roll back). */
static int load_trusted(const ctl_witness *w, stl_checkpoint *cp, char **note, char *msg,
                        size_t msglen)
{
    size_t len;
    *note = NULL;
    if (ctl_read_file(w->c.state, STL_NOTE_MAX, note, &len) != 0) {
        if (errno == ENOENT)
            return 0;
        ctl_errf(msg, msglen, "%s: cannot read the witness state: %s", w->c.state, strerror(errno));
        return -1;
    }
    if (stl_checkpoint_open(*note, len, w->log_name, w->log_pk, w->log_name, cp) != STL_OK) {
        ctl_errf(msg, msglen,
                 "%s: the witness state is not a checkpoint of %s signed by its key; restore it "
                 "(deleting it would accept a rolled-back ledger)",
                 w->c.state, w->log_name);
        return -1;
    }
    return 1;
}

static int file_exists(const char *path)
{
    return access(path, F_OK) == 0;
}

int ctl_witness_step(ctl_witness *w, uint64_t now_s, char *msg, size_t msglen)
{
    ctl_db *db = NULL;
    char *note = NULL, *old = NULL, *cosigned = NULL, err[1024] = "";
    int rc = CTL_WITNESS_E_IO, reading = 0;
    stl_checkpoint trusted, cp;
    if (ctl_db_open_readonly(w->c.ledger, &db, err, sizeof err) != CTL_DB_OK) {
        ctl_errf(msg, msglen, "%s", err);
        goto out;
    }
    /* one read transaction: the audit, the checkpoint and the proof see one state of the file
     * even while the controller appends */
    reading = ctl_db_read_begin(db);
    uint64_t size = 0;
    note = ctl_ledger_checkpoint(db, -1, &size);
    int have = load_trusted(w, &trusted, &old, msg, msglen);
    if (have < 0)
        goto out;
    /* a poll that finds the checkpoint already cosigned costs no audit */
    if (note && have && old && strcmp(note, old) == 0 && file_exists(w->c.out)) {
        ctl_errf(msg, msglen, "unchanged: log size %llu is cosigned already",
                 (unsigned long long)trusted.size);
        rc = CTL_WITNESS_UNCHANGED;
        goto out;
    }
    /* blocks up to the trusted checkpoint were audited when it was cosigned, and the
     * consistency proof below binds their leaves to its root: only the new ones are audited */
    int v =
        ctl_ledger_verify_since(db, w->log_pk, have ? (int64_t)trusted.size : -1, err, sizeof err);
    if (v == CTL_LEDGER_E_DB) {
        ctl_errf(msg, msglen, "%s: database error during the audit", w->c.ledger);
        goto out;
    }
    if (v == CTL_LEDGER_OK && w->c.reclear)
        v = ctl_witness_reclear(db, have ? (int64_t)trusted.size : -1, w->c.mechanism,
                                &w->c.meter_rules, &w->c.topology, err, sizeof err);
    if (v == CTL_LEDGER_E_DB || v == CTL_LEDGER_E_NOMEM) {
        ctl_errf(msg, msglen, "%s: database error while re-clearing", w->c.ledger);
        goto out;
    }
    if (v != CTL_LEDGER_OK) {
        ctl_errf(msg, msglen, "refused: the ledger fails the audit: %s", err);
        rc = CTL_WITNESS_REFUSED;
        goto out;
    }
    if (!note && have) {
        ctl_errf(msg, msglen,
                 "refused: the ledger is empty but log size %llu was cosigned before: it was "
                 "truncated or replaced",
                 (unsigned long long)trusted.size);
        rc = CTL_WITNESS_REFUSED;
        goto out;
    }
    if (!note) {
        ctl_errf(msg, msglen, "the ledger has no block yet");
        rc = CTL_WITNESS_EMPTY;
        goto out;
    }
    uint8_t proof[STL_MERKLE_MAX_PROOF][STL_HASH_LEN];
    size_t n = 0;
    if (have && trusted.size < size &&
        stl_merkle_consistency_proof(trusted.size, size, ctl_ledger_node, db, proof, &n) != STL_OK)
        n = 0; /* no proof to be had: the check below refuses */
    size_t len = strlen(note);
    stl_witness_verdict verdict =
        stl_witness_check(w->log_name, w->log_pk, have ? &trusted : NULL, note, len,
                          (const uint8_t(*)[STL_HASH_LEN])proof, n, &cp);
    if (verdict != STL_WITNESS_COSIGN) {
        ctl_errf(msg, msglen, "refused: the latest checkpoint (log size %llu) is %s%s",
                 (unsigned long long)size, stl_witness_reason(verdict),
                 have ? "" : " (no checkpoint cosigned before)");
        if (have)
            ctl_errf(err, sizeof err, " (cosigned before: log size %llu)",
                     (unsigned long long)trusted.size);
        else
            err[0] = 0;
        size_t ml = strlen(msg);
        if (ml < msglen)
            snprintf(msg + ml, msglen - ml, "%s", err);
        rc = CTL_WITNESS_REFUSED;
        goto out;
    }
    if (have && trusted.size == cp.size && file_exists(w->c.out)) {
        /* the same checkpoint signed again (Ed25519 is deterministic, so only another note
         * text gets here): nothing new to vouch for */
        ctl_errf(msg, msglen, "unchanged: log size %llu is cosigned already",
                 (unsigned long long)cp.size);
        rc = CTL_WITNESS_UNCHANGED;
        goto out;
    }
    size_t body = 0;
    char line[STL_COSIG_LINE_MAX];
    if (stl_note_open(note, len, w->log_name, w->log_pk, &body) != STL_OK ||
        stl_cosig_sign(note, body, now_s, w->c.name, ctl_key_secret(w->key), line, sizeof line) <
            0) {
        ctl_errf(msg, msglen, "cannot cosign the checkpoint");
        goto out;
    }
    cosigned = malloc(len + strlen(line) + 1);
    if (!cosigned) {
        ctl_errf(msg, msglen, "out of memory");
        goto out;
    }
    memcpy(cosigned, note, len);
    strcpy(cosigned + len, line);
    /* state first: a crash before the out file is written only repeats this cosignature */
    if (replace_file(w->c.state, note, len) != 0) {
        ctl_errf(msg, msglen, "%s: %s", w->c.state, strerror(errno));
        goto out;
    }
    if (replace_file(w->c.out, cosigned, strlen(cosigned)) != 0) {
        ctl_errf(msg, msglen, "%s: %s", w->c.out, strerror(errno));
        goto out;
    }
    ctl_errf(msg, msglen, "cosigned log size %llu%s at time %llu", (unsigned long long)cp.size,
             have && trusted.size < cp.size ? " (consistent with the one cosigned before)" : "",
             (unsigned long long)now_s);
    rc = CTL_WITNESS_COSIGNED;
out:
    if (reading)
        ctl_db_read_end(db);
    ctl_db_close(db);
    free(note);
    free(old);
    free(cosigned);
    return rc;
}
