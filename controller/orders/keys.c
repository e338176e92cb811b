/*
 * Ed25519 key files. The secret file holds only the 32-byte seed (hex, after a format line);
 * the 64-byte libsodium secret key is re-derived on load, straight into guarded memory. Every
 * buffer that sees secret bytes is sodium_malloc'd and wiped by sodium_free.
 */
#define _GNU_SOURCE
#include "orders/keys.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define SECRET_HEADER "mgx-ed25519-secret-v1\n"
#define SECRET_FILE_MAX 256 /* header + 64 hex + newline, with room for stray white space */
#define PUB_FILE_MAX 4096

struct ctl_secret_key {
    uint8_t sk[CTL_SECKEY_BYTES]; /* seed || public key, libsodium's layout */
    uint8_t pk[CTL_PUBKEY_BYTES];
};

/* Scratch for text that holds a seed; lives in guarded memory. */
typedef struct {
    char text[SECRET_FILE_MAX + 1];
    uint8_t seed[32];
} secret_scratch;

static const char *const KEY_ERRORS[] = {
    "success",
    "invalid argument",
    "refusing to overwrite an existing key file",
    "input/output error",
    "secret key file is accessible by group or others (run: chmod 600 FILE)",
    "not a key file of the expected form",
    "out of guarded memory (sodium_malloc failed; check RLIMIT_MEMLOCK)",
    "libsodium failed to initialise",
    "not a regular file",
    "the .key and .pub files do not belong to the same key pair",
};

const char *ctl_key_strerror(int code)
{
    if (code > 0 || -code >= (int)(sizeof KEY_ERRORS / sizeof KEY_ERRORS[0]))
        return "unknown key error";
    return KEY_ERRORS[-code];
}

static int ensure_sodium(void)
{
    return sodium_init() < 0 ? CTL_KEY_E_SODIUM : CTL_KEY_OK;
}

char *ctl_pubkey_hex(const uint8_t pk[CTL_PUBKEY_BYTES], char out[2 * CTL_PUBKEY_BYTES + 1])
{
    sodium_bin2hex(out, 2 * CTL_PUBKEY_BYTES + 1, pk, CTL_PUBKEY_BYTES);
    return out;
}

/* Writes all of buf, retrying short writes. */
static int write_all(int fd, const void *buf, size_t len)
{
    const char *p = buf;
    while (len) {
        ssize_t w = write(fd, p, len);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        len -= (size_t)w;
    }
    return 0;
}

/* Makes the new directory entries durable. Best effort on file systems that refuse. */
static void sync_dir_of(const char *path)
{
    char copy[CTL_KEY_PREFIX_MAX + 8];
    snprintf(copy, sizeof copy, "%s", path);
    int fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        (void)fsync(fd);
        close(fd);
    }
}

static int create_excl(const char *path, mode_t mode)
{
    return open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
}

int ctl_write_secret_file(const char *path, const void *data, size_t len)
{
    if (!path || !*path || strlen(path) > CTL_KEY_PREFIX_MAX || (!data && len))
        return CTL_KEY_E_INVAL;
    int fd = create_excl(path, 0600);
    if (fd < 0)
        return errno == EEXIST ? CTL_KEY_E_EXISTS : CTL_KEY_E_IO;
    int rc = CTL_KEY_OK;
    if (fchmod(fd, 0600) || write_all(fd, data, len) || fsync(fd))
        rc = CTL_KEY_E_IO;
    int saved = errno;
    close(fd);
    if (rc != CTL_KEY_OK) {
        unlink(path);
        errno = saved;
        return rc;
    }
    sync_dir_of(path);
    return CTL_KEY_OK;
}

int ctl_keygen_files(const char *prefix, uint8_t pk_out[CTL_PUBKEY_BYTES])
{
    if (!prefix || !*prefix || strlen(prefix) > CTL_KEY_PREFIX_MAX)
        return CTL_KEY_E_INVAL;
    int rc = ensure_sodium();
    if (rc)
        return rc;
    char key_path[CTL_KEY_PREFIX_MAX + 8], pub_path[CTL_KEY_PREFIX_MAX + 8];
    snprintf(key_path, sizeof key_path, "%s.key", prefix);
    snprintf(pub_path, sizeof pub_path, "%s.pub", prefix);
    int kfd = -1, pfd = -1, made_key = 0, made_pub = 0, saved = 0;
    secret_scratch *s = sodium_malloc(sizeof *s);
    ctl_secret_key *k = sodium_malloc(sizeof *k);
    if (!s || !k) {
        rc = CTL_KEY_E_NOMEM;
        goto out;
    }
    randombytes_buf(s->seed, sizeof s->seed);
    crypto_sign_seed_keypair(k->pk, k->sk, s->seed);
    memcpy(s->text, SECRET_HEADER, sizeof SECRET_HEADER - 1);
    sodium_bin2hex(s->text + sizeof SECRET_HEADER - 1, 65, s->seed, sizeof s->seed);
    size_t secret_len = sizeof SECRET_HEADER - 1 + 64;
    s->text[secret_len++] = '\n';

    /* Both names must be free before anything is written: fail as a whole. */
    rc = CTL_KEY_E_EXISTS;
    if ((kfd = create_excl(key_path, 0600)) < 0)
        goto io_out;
    made_key = 1;
    if ((pfd = create_excl(pub_path, 0644)) < 0)
        goto io_out;
    made_pub = 1;
    rc = CTL_KEY_E_IO;
    char pub_text[2 * CTL_PUBKEY_BYTES + 2];
    ctl_pubkey_hex(k->pk, pub_text);
    pub_text[2 * CTL_PUBKEY_BYTES] = '\n';
    if (fchmod(kfd, 0600) || write_all(kfd, s->text, secret_len) || fsync(kfd) ||
        write_all(pfd, pub_text, sizeof pub_text - 1) || fsync(pfd))
        goto io_out;
    sync_dir_of(key_path);
    if (pk_out)
        memcpy(pk_out, k->pk, CTL_PUBKEY_BYTES);
    rc = CTL_KEY_OK;
    goto out;
io_out:
    saved = errno;
    if (rc == CTL_KEY_E_EXISTS && saved != EEXIST)
        rc = CTL_KEY_E_IO;
out:
    if (kfd >= 0)
        close(kfd);
    if (pfd >= 0)
        close(pfd);
    if (rc != CTL_KEY_OK) {
        if (made_key)
            unlink(key_path);
        if (made_pub)
            unlink(pub_path);
        if (saved)
            errno = saved;
    }
    sodium_free(s);
    sodium_free(k);
    return rc;
}

static int key_from_seed(const uint8_t seed[32], ctl_secret_key **out)
{
    ctl_secret_key *k = sodium_malloc(sizeof *k);
    if (!k)
        return CTL_KEY_E_NOMEM;
    crypto_sign_seed_keypair(k->pk, k->sk, seed);
    sodium_mprotect_readonly(k);
    *out = k;
    return CTL_KEY_OK;
}

int ctl_key_from_seed(const uint8_t seed[32], ctl_secret_key **out)
{
    if (!seed || !out)
        return CTL_KEY_E_INVAL;
    int rc = ensure_sodium();
    return rc ? rc : key_from_seed(seed, out);
}

/* Reads at most max bytes of an open file into buf (NUL-terminated); -1 if longer. */
static ssize_t read_small(int fd, char *buf, size_t max)
{
    size_t n = 0;
    for (;;) {
        ssize_t r = read(fd, buf + n, max + 1 - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return -1;
        if (r == 0)
            break;
        n += (size_t)r;
        if (n > max) {
            errno = EFBIG;
            return -1;
        }
    }
    buf[n] = '\0';
    return (ssize_t)n;
}

/* Parses "mgx-ed25519-secret-v1\n" + 64 hex digits + optional white space. */
static int parse_secret(secret_scratch *s, size_t len)
{
    size_t hl = sizeof SECRET_HEADER - 1;
    if (len < hl + 64 || memcmp(s->text, SECRET_HEADER, hl) != 0)
        return CTL_KEY_E_FORMAT;
    for (size_t i = hl + 64; i < len; i++)
        if (s->text[i] != '\n' && s->text[i] != '\r' && s->text[i] != ' ' && s->text[i] != '\t')
            return CTL_KEY_E_FORMAT;
    size_t bin_len = 0;
    if (sodium_hex2bin(s->seed, sizeof s->seed, s->text + hl, 64, NULL, &bin_len, NULL) != 0 ||
        bin_len != sizeof s->seed)
        return CTL_KEY_E_FORMAT;
    return CTL_KEY_OK;
}

/* For PREFIX.key: if PREFIX.pub exists it must hold pk. */
static int check_pub_partner(const char *path, const uint8_t pk[CTL_PUBKEY_BYTES])
{
    size_t n = strlen(path);
    if (n < 5 || n > CTL_KEY_PREFIX_MAX + 4 || strcmp(path + n - 4, ".key") != 0)
        return CTL_KEY_OK;
    char pub_path[CTL_KEY_PREFIX_MAX + 8];
    snprintf(pub_path, sizeof pub_path, "%.*s.pub", (int)(n - 4), path);
    uint8_t pub[CTL_PUBKEY_BYTES];
    int rc = ctl_pubkey_load(pub_path, pub);
    if (rc == CTL_KEY_E_IO && errno == ENOENT)
        return CTL_KEY_OK;
    if (rc)
        return rc;
    return sodium_memcmp(pub, pk, CTL_PUBKEY_BYTES) == 0 ? CTL_KEY_OK : CTL_KEY_E_MISMATCH;
}

int ctl_key_load(const char *path, ctl_secret_key **out)
{
    if (!path || !out)
        return CTL_KEY_E_INVAL;
    *out = NULL;
    int rc = ensure_sodium();
    if (rc)
        return rc;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return CTL_KEY_E_IO;
    secret_scratch *s = NULL;
    ctl_secret_key *k = NULL;
    struct stat st;
    rc = CTL_KEY_E_IO;
    if (fstat(fd, &st))
        goto out;
    /* Checked on the open descriptor, so the file cannot be swapped after the check. */
    rc = !S_ISREG(st.st_mode) ? CTL_KEY_E_NOTFILE
         : (st.st_mode & 077) ? CTL_KEY_E_PERM
                              : CTL_KEY_OK;
    if (rc)
        goto out;
    if (!(s = sodium_malloc(sizeof *s))) {
        rc = CTL_KEY_E_NOMEM;
        goto out;
    }
    ssize_t len = read_small(fd, s->text, SECRET_FILE_MAX);
    if (len < 0) {
        rc = errno == EFBIG ? CTL_KEY_E_FORMAT : CTL_KEY_E_IO;
        goto out;
    }
    if ((rc = parse_secret(s, (size_t)len)) || (rc = key_from_seed(s->seed, &k)))
        goto out;
    if ((rc = check_pub_partner(path, k->pk)))
        goto out;
    *out = k;
    k = NULL;
out:
    {
        int saved = errno;
        close(fd);
        sodium_free(s);
        ctl_key_free(k);
        errno = saved;
    }
    return rc;
}

void ctl_key_free(ctl_secret_key *k)
{
    if (!k)
        return;
    /* sodium_free wipes too; unlocking and wiping here keeps that explicit. */
    sodium_mprotect_readwrite(k);
    sodium_memzero(k, sizeof *k);
    sodium_free(k);
}

const uint8_t *ctl_key_public(const ctl_secret_key *k)
{
    return k ? k->pk : NULL;
}

const uint8_t *ctl_key_secret(const ctl_secret_key *k)
{
    return k ? k->sk : NULL;
}

static int is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

int ctl_pubkey_parse(const char *text, uint8_t pk[CTL_PUBKEY_BYTES])
{
    if (!text || !pk)
        return CTL_KEY_E_INVAL;
    int rc = ensure_sodium();
    if (rc)
        return rc;
    while (is_space(*text))
        text++;
    size_t n = strlen(text);
    while (n && is_space(text[n - 1]))
        n--;
    size_t got = 0;
    const char *end = NULL;
    if (n == 2 * CTL_PUBKEY_BYTES) {
        if (sodium_hex2bin(pk, CTL_PUBKEY_BYTES, text, n, NULL, &got, &end) == 0 &&
            got == CTL_PUBKEY_BYTES && end == text + n)
            return CTL_KEY_OK;
    } else if (n == 44) {
        if (sodium_base642bin(pk, CTL_PUBKEY_BYTES, text, n, NULL, &got, &end,
                              sodium_base64_VARIANT_ORIGINAL) == 0 &&
            got == CTL_PUBKEY_BYTES && end == text + n)
            return CTL_KEY_OK;
    }
    return CTL_KEY_E_FORMAT;
}

int ctl_pubkey_load(const char *path, uint8_t pk[CTL_PUBKEY_BYTES])
{
    if (!path || !pk)
        return CTL_KEY_E_INVAL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return CTL_KEY_E_IO;
    char buf[PUB_FILE_MAX + 1];
    ssize_t n = read_small(fd, buf, PUB_FILE_MAX);
    int saved = errno;
    close(fd);
    if (n < 0) {
        errno = saved;
        return saved == EFBIG ? CTL_KEY_E_FORMAT : CTL_KEY_E_IO;
    }
    if (memchr(buf, '\0', (size_t)n))
        return CTL_KEY_E_FORMAT;
    return ctl_pubkey_parse(buf, pk);
}
