/*
 * Key files on a real file system: keygen makes a 0600 secret and a matching public file,
 * refuses to overwrite either, leaves nothing behind when it cannot finish; loading refuses
 * files readable by others, wrong formats and mismatched pairs; public keys parse from hex and
 * base64 and nothing else.
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "broker.h"
#include "orders/keys.h"
#include "files.h"

static void path_of(char *out, size_t cap, const char *name)
{
    snprintf(out, cap, "%s/%s", tst_dir, name);
}

static void test_keygen_and_load(void **state)
{
    (void)state;
    char prefix[512], key[600], pub[600];
    path_of(prefix, sizeof prefix, "alice");
    snprintf(key, sizeof key, "%s.key", prefix);
    snprintf(pub, sizeof pub, "%s.pub", prefix);
    uint8_t pk[32];
    assert_int_equal(ctl_keygen_files(prefix, pk), CTL_KEY_OK);

    struct stat st;
    assert_int_equal(stat(key, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(stat(pub, &st), 0);
    assert_int_equal(st.st_mode & 0077 & ~(mode_t)044, 0); /* at most world/group readable */

    uint8_t pk_file[32];
    assert_int_equal(ctl_pubkey_load(pub, pk_file), CTL_KEY_OK);
    assert_memory_equal(pk, pk_file, 32);

    ctl_secret_key *k = NULL;
    assert_int_equal(ctl_key_load(key, &k), CTL_KEY_OK);
    assert_memory_equal(ctl_key_public(k), pk, 32);
    /* the secret signs for the public key */
    uint8_t sig[64];
    crypto_sign_detached(sig, NULL, (const uint8_t *)"hi", 2, ctl_key_secret(k));
    assert_int_equal(crypto_sign_verify_detached(sig, (const uint8_t *)"hi", 2, pk), 0);
    ctl_key_free(k);

    /* refuses to overwrite; the files are unchanged */
    char before[200];
    FILE *f = fopen(key, "r");
    size_t n = fread(before, 1, sizeof before, f);
    fclose(f);
    assert_int_equal(ctl_keygen_files(prefix, NULL), CTL_KEY_E_EXISTS);
    char after[200];
    f = fopen(key, "r");
    assert_int_equal(fread(after, 1, sizeof after, f), n);
    fclose(f);
    assert_memory_equal(before, after, n);

    /* a second key pair differs */
    char prefix2[512];
    path_of(prefix2, sizeof prefix2, "bob");
    uint8_t pk2[32];
    assert_int_equal(ctl_keygen_files(prefix2, pk2), CTL_KEY_OK);
    assert_memory_not_equal(pk, pk2, 32);
}

/* Only the .pub name is taken: nothing is written, no stray .key is left. */
static void test_keygen_all_or_nothing(void **state)
{
    (void)state;
    char prefix[512], key[600], pub[600];
    path_of(prefix, sizeof prefix, "carol");
    snprintf(key, sizeof key, "%s.key", prefix);
    snprintf(pub, sizeof pub, "%s.pub", prefix);
    tst_file_write(pub, "keep me\n", 0644);
    assert_int_equal(ctl_keygen_files(prefix, NULL), CTL_KEY_E_EXISTS);
    assert_int_equal(access(key, F_OK), -1);
    assert_int_equal(errno, ENOENT);
    /* a missing directory is an I/O error with errno kept */
    char bad[600];
    path_of(bad, sizeof bad, "no/such/tst_dir/dave");
    assert_int_equal(ctl_keygen_files(bad, NULL), CTL_KEY_E_IO);
    assert_int_equal(errno, ENOENT);
    assert_int_equal(ctl_keygen_files("", NULL), CTL_KEY_E_INVAL);
    assert_int_equal(ctl_keygen_files(NULL, NULL), CTL_KEY_E_INVAL);
}

static void test_load_refuses(void **state)
{
    (void)state;
    char prefix[512], key[600], pub[600];
    path_of(prefix, sizeof prefix, "erin");
    snprintf(key, sizeof key, "%s.key", prefix);
    snprintf(pub, sizeof pub, "%s.pub", prefix);
    assert_int_equal(ctl_keygen_files(prefix, NULL), CTL_KEY_OK);
    ctl_secret_key *k = NULL;
    const mode_t open_modes[] = {0640, 0604, 0620, 0602, 0610, 0601, 0644, 0666};
    for (size_t i = 0; i < sizeof open_modes / sizeof open_modes[0]; i++) {
        assert_int_equal(chmod(key, open_modes[i]), 0);
        assert_int_equal(ctl_key_load(key, &k), CTL_KEY_E_PERM);
        assert_null(k);
    }
    assert_int_equal(chmod(key, 0400), 0);
    assert_int_equal(ctl_key_load(key, &k), CTL_KEY_OK);
    ctl_key_free(k);
    k = NULL;

    /* a .pub of another key pair */
    char other[512], other_pub[600];
    path_of(other, sizeof other, "frank");
    assert_int_equal(ctl_keygen_files(other, NULL), CTL_KEY_OK);
    snprintf(other_pub, sizeof other_pub, "%s.pub", other);
    assert_int_equal(rename(other_pub, pub), 0);
    assert_int_equal(ctl_key_load(key, &k), CTL_KEY_E_MISMATCH);
    /* without a .pub next to it, the key loads */
    assert_int_equal(unlink(pub), 0);
    assert_int_equal(ctl_key_load(key, &k), CTL_KEY_OK);
    ctl_key_free(k);
    k = NULL;

    /* formats */
    const char *bad[] = {
        "",
        "mgx-ed25519-secret-v1\n",
        "mgx-ed25519-secret-v1\n9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f6\n",
        "mgx-ed25519-secret-v1\n9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f6g\n",
        "mgx-ed25519-secret-v1\n9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60x\n",
        "mgx-ed25519-secret-v2\n9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60\n",
        "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60\n",
    };
    char p[600];
    path_of(p, sizeof p, "bad.secret");
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        unlink(p);
        tst_file_write(p, bad[i], 0600);
        assert_int_equal(ctl_key_load(p, &k), CTL_KEY_E_FORMAT);
    }
    /* a known seed loads to the RFC 8032 TEST 1 public key */
    unlink(p);
    tst_file_write(p,
               "mgx-ed25519-secret-v1\n"
               "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60\r\n\n",
               0600);
    assert_int_equal(ctl_key_load(p, &k), CTL_KEY_OK);
    char hex[65];
    assert_string_equal(ctl_pubkey_hex(ctl_key_public(k), hex),
                        "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a");
    ctl_key_free(k);
    /* too long */
    char big[400];
    memset(big, ' ', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    memcpy(big, "mgx-ed25519-secret-v1\n"
                "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
           22 + 64);
    unlink(p);
    tst_file_write(p, big, 0600);
    assert_int_equal(ctl_key_load(p, &k), CTL_KEY_E_FORMAT);
    /* a directory, a missing file */
    assert_int_equal(chmod(tst_dir, 0700), 0);
    assert_int_equal(ctl_key_load(tst_dir, &k), CTL_KEY_E_NOTFILE);
    path_of(p, sizeof p, "missing.key");
    assert_int_equal(ctl_key_load(p, &k), CTL_KEY_E_IO);
    assert_int_equal(errno, ENOENT);
    for (int c = 0; c >= -9; c--)
        assert_string_not_equal(ctl_key_strerror(c), "unknown key error");
    assert_string_equal(ctl_key_strerror(-10), "unknown key error");
}

static void test_pubkey_parse(void **state)
{
    (void)state;
    uint8_t pk[32];
    static const uint8_t RFC_PK[32] = {0xd7, 0x5a, 0x98, 0x01, 0x82, 0xb1, 0x0a, 0xb7,
                                       0xd5, 0x4b, 0xfe, 0xd3, 0xc9, 0x64, 0x07, 0x3a,
                                       0x0e, 0xe1, 0x72, 0xf3, 0xda, 0xa6, 0x23, 0x25,
                                       0xaf, 0x02, 0x1a, 0x68, 0xf7, 0x07, 0x51, 0x1a};
    const char *good[] = {
        "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a",
        "  D75A980182B10AB7D54BFED3C964073A0EE172F3DAA62325AF021A68F707511A\n",
        /* base64 of the same 32 bytes */
        "11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=",
        "\t11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=\r\n",
    };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        memset(pk, 0, sizeof pk);
        assert_int_equal(ctl_pubkey_parse(good[i], pk), CTL_KEY_OK);
        assert_memory_equal(pk, RFC_PK, 32);
    }
    const char *bad[] = {
        "",
        "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511",
        "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a00",
        "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f70751 a",
        "x75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a",
        "11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo",
        "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo=",
        "11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHUR==",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(ctl_pubkey_parse(bad[i], pk), CTL_KEY_E_FORMAT);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_keygen_and_load),
        cmocka_unit_test(test_keygen_all_or_nothing),
        cmocka_unit_test(test_load_refuses),
        cmocka_unit_test(test_pubkey_parse),
    };
    return cmocka_run_group_tests(tests, tst_dir_setup, tst_dir_teardown);
}
