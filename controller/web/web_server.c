/*
 * The dashboard's HTTP server on libmicrohttpd (see web_server.h).
 */
#define _POSIX_C_SOURCE 200809L
#include "web/web_server.h"

#include "common/wall_clock.h"
#include "common/errbuf.h"
#include "db/registry.h"
#include "web/web_assets.h"
#include "web/web_auth.h"
#include "web/web_data.h"
#include "web/web_live.h"

#include <arpa/inet.h>
#include <jansson.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <stdint.h>

#define LOGIN_BODY_MAX 1024 /* {"user":..,"password":..}: more is refused */
#define COOKIE "mgx_session"

#define DB_POOL_MAX 256

struct web_server {
    struct MHD_Daemon *d;
    /* one database handle per server thread (a ctl_db is used by one thread at a time): the
     * caller's and threads - 1 more, read only, lent out under pool_lock */
    ctl_db *dbs[DB_POOL_MAX];
    int db_busy[DB_POOL_MAX];
    size_t n_dbs;
    pthread_mutex_t pool_lock;
    pthread_cond_t pool_free;
    int pool_init;
    web_live *live;
    web_sessions *sessions;
    web_throttle *throttle;
    web_config cfg;
    int tls;
    char *cert, *key; /* PEM, libmicrohttpd reads them at start; key in sodium_malloc */
};

typedef struct {
    char *body; /* sodium_malloc, LOGIN_BODY_MAX + 1 */
    size_t len;
    int too_big;
} request;

static int64_t now_ms(void) { return ctl_wall_ms(); }

/* Lends a database handle to the calling server thread until db_put. */
static ctl_db *db_get(web_server *s)
{
    pthread_mutex_lock(&s->pool_lock);
    for (;;) {
        for (size_t i = 0; i < s->n_dbs; i++)
            if (!s->db_busy[i]) {
                s->db_busy[i] = 1;
                pthread_mutex_unlock(&s->pool_lock);
                return s->dbs[i];
            }
        pthread_cond_wait(&s->pool_free, &s->pool_lock);
    }
}

static void db_put(web_server *s, ctl_db *db)
{
    pthread_mutex_lock(&s->pool_lock);
    for (size_t i = 0; i < s->n_dbs; i++)
        if (s->dbs[i] == db)
            s->db_busy[i] = 0;
    pthread_cond_signal(&s->pool_free);
    pthread_mutex_unlock(&s->pool_lock);
}

/* The headers every answer carries: nothing cached, no framing, only our own scripts. */
static void common_headers(struct MHD_Response *r)
{
    MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
    MHD_add_response_header(r, "X-Frame-Options", "DENY");
    MHD_add_response_header(r, "Referrer-Policy", "no-referrer");
    MHD_add_response_header(r, "Content-Security-Policy",
                            "default-src 'self'; script-src 'self'; style-src 'self'; "
                            "img-src 'self' data:; frame-ancestors 'none'; form-action 'self'");
}

static enum MHD_Result send_buf(struct MHD_Connection *c, unsigned status, const char *type,
                                const void *data, size_t len, enum MHD_ResponseMemoryMode mode,
                                const char *cookie)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(len, (void *)(uintptr_t)data, mode);
    if (!r)
        return MHD_NO;
    common_headers(r);
    MHD_add_response_header(r, "Content-Type", type);
    MHD_add_response_header(r, "Cache-Control", "no-store");
    if (cookie)
        MHD_add_response_header(r, "Set-Cookie", cookie);
    enum MHD_Result rc = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return rc;
}

static enum MHD_Result send_json(struct MHD_Connection *c, unsigned status, json_t *doc,
                                 const char *cookie)
{
    char *text = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
    json_decref(doc);
    if (!text)
        return send_buf(c, 500, "application/json", "{\"error\":\"internal\"}", 20,
                        MHD_RESPMEM_PERSISTENT, NULL);
    enum MHD_Result rc = send_buf(c, status, "application/json", text, strlen(text),
                                  MHD_RESPMEM_MUST_FREE, cookie);
    return rc;
}

static enum MHD_Result send_error(struct MHD_Connection *c, unsigned status, const char *what)
{
    return send_json(c, status, json_pack("{ss}", "error", what), NULL);
}

/* The session of the request's cookie, 0 with *who filled or -1. */
static int session_of(web_server *s, struct MHD_Connection *c, web_who *who)
{
    const char *tok = MHD_lookup_connection_value(c, MHD_COOKIE_KIND, COOKIE);
    return tok && web_sessions_find(s->sessions, tok, now_ms() / 1000, who) == WEB_AUTH_OK ? 0
                                                                                            : -1;
}

static const char *role_name(web_role r) { return r == WEB_ROLE_ADMIN ? "coordinator" : "home"; }

/* Checks user and password: the admin file first (a coordinator), else the bus password file
 * and the registry (a home). */
static int check_login(web_server *s, const char *user, const char *password, web_who *who)
{
    if (!user[0] || strlen(user) >= WEB_USER_MAX)
        return -1;
    snprintf(who->user, sizeof who->user, "%s", user);
    if (s->cfg.admin_file[0] &&
        web_pw_file_check(s->cfg.admin_file, user, password) == WEB_AUTH_OK) {
        who->role = WEB_ROLE_ADMIN;
        return 0;
    }
    ctl_participant p;
    if (s->cfg.password_file[0] &&
        web_pw_file_check(s->cfg.password_file, user, password) == WEB_AUTH_OK) {
        ctl_db *db = db_get(s);
        int home = ctl_registry_lookup(db, user, &p) == 0 && p.role == CTL_ROLE_HOME;
        db_put(s, db);
        if (home) {
            who->role = WEB_ROLE_HOME;
            return 0;
        }
    }
    return -1;
}

static enum MHD_Result do_login(web_server *s, struct MHD_Connection *c, request *rq)
{
    if (rq->too_big)
        return send_error(c, 413, "too large");
    /* JSON only: a page on another site can post a form (urlencoded, multipart or text/plain)
     * here without asking, but not application/json, so no other site can log a browser in */
    const char *type = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Type");
    if (!type || strncasecmp(type, "application/json", 16) != 0)
        return send_error(c, 415, "application/json");
    rq->body[rq->len] = 0;
    json_error_t je;
    json_t *j = json_loads(rq->body, 0, &je);
    const char *user = json_string_value(json_object_get(j, "user"));
    const char *pw = json_string_value(json_object_get(j, "password"));
    web_who who;
    int64_t now_s = now_ms() / 1000;
    if (user && !web_throttle_allowed(s->throttle, user, now_s)) {
        if (pw)
            sodium_memzero((void *)(uintptr_t)pw, strlen(pw));
        json_decref(j);
        return send_error(c, 429, "too many attempts; wait a minute");
    }
    int ok = user && pw && check_login(s, user, pw, &who) == 0;
    if (user && !ok)
        web_throttle_failed(s->throttle, user, now_s);
    else if (ok)
        web_throttle_succeeded(s->throttle, user);
    /* jansson's copy of the password: overwrite it before it is freed */
    if (pw)
        sodium_memzero((void *)(uintptr_t)pw, strlen(pw));
    json_decref(j);
    if (!ok)
        return send_error(c, 401, "login refused");
    char tok[WEB_TOKEN_HEX], cookie[WEB_TOKEN_HEX + 96];
    web_sessions_start(s->sessions, &who, now_ms() / 1000, tok);
    snprintf(cookie, sizeof cookie, COOKIE "=%s; Path=/; HttpOnly; SameSite=Strict%s", tok,
             s->tls ? "; Secure" : "");
    sodium_memzero(tok, sizeof tok);
    enum MHD_Result rc =
        send_json(c, 200, json_pack("{ss ss}", "user", who.user, "role", role_name(who.role)),
                  cookie);
    sodium_memzero(cookie, sizeof cookie);
    return rc;
}

static enum MHD_Result day_of(ctl_db *db, struct MHD_Connection *c, int64_t *day)
{
    const char *q = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "day");
    if (q)
        return web_parse_day(q, day) == 0 ? MHD_YES : MHD_NO;
    return web_default_day(db, now_ms() / 1000, day) == WEB_DATA_OK ? MHD_YES : MHD_NO;
}

/* GET /api/events: the session's live stream (web_live.h), 503 when all are taken. */
static enum MHD_Result live_stream(web_server *s, struct MHD_Connection *c, const web_who *who)
{
    struct MHD_Response *r = s->live ? web_live_open(s->live, c, who) : NULL;
    if (!r)
        return send_error(c, 503, "too many live streams; the page polls instead");
    common_headers(r);
    MHD_add_response_header(r, "Content-Type", "text/event-stream");
    MHD_add_response_header(r, "Cache-Control", "no-store");
    MHD_add_response_header(r, "X-Accel-Buffering", "no");
    enum MHD_Result rc = MHD_queue_response(c, 200, r);
    MHD_destroy_response(r);
    return rc;
}

static enum MHD_Result api_data(web_server *s, ctl_db *db, struct MHD_Connection *c,
                                const char *url, const web_who *w);

static enum MHD_Result api_get(web_server *s, struct MHD_Connection *c, const char *url)
{
    web_who who;
    if (session_of(s, c, &who) != 0)
        return send_error(c, 401, "log in first");
    if (strcmp(url, "/api/me") == 0)
        return send_json(c, 200,
                         json_pack("{ss ss}", "user", who.user, "role", role_name(who.role)),
                         NULL);
    if (strcmp(url, "/api/events") == 0)
        return live_stream(s, c, &who);
    ctl_db *db = db_get(s);
    enum MHD_Result rc = api_data(s, db, c, url, &who);
    db_put(s, db);
    return rc;
}

static enum MHD_Result api_data(web_server *s, ctl_db *db, struct MHD_Connection *c,
                                const char *url, const web_who *w)
{
    web_who who = *w;
    int64_t day;
    json_t *doc = NULL;
    int rc;
    if (strncmp(url, "/api/home/", 10) == 0) {
        char home[WEB_USER_MAX + 8];
        if (strlen(url + 10) >= sizeof home)
            return send_error(c, 403, "forbidden"); /* no user's id is that long */
        snprintf(home, sizeof home, "%s", url + 10);
        char *proof = strstr(home, "/proof");
        int want_proof = proof && strcmp(proof, "/proof") == 0;
        if (want_proof)
            *proof = 0;
        /* the rule: a home reads only itself; decided before anything is looked up, so the
         * answer says nothing about the other home (not even whether it exists) */
        if (who.role != WEB_ROLE_ADMIN && strcmp(home, who.user) != 0)
            return send_error(c, 403, "forbidden");
        if (want_proof) {
            const char *iv = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "interval");
            char *end = NULL;
            long long id = iv ? strtoll(iv, &end, 10) : 0;
            if (!iv || !*iv || *end || id < 0)
                return send_error(c, 400, "interval: a number");
            rc = web_home_proof(db, home, (int64_t)id, &doc);
            if (rc == WEB_DATA_NOT_FOUND)
                return send_error(c, 404, "no settled position there");
        } else {
            if (day_of(db, c, &day) != MHD_YES)
                return send_error(c, 400, "day: YYYY-MM-DD");
            rc = web_home_day(db, home, day, now_ms(), &doc);
        }
    } else if (strcmp(url, "/api/key") == 0) {
        rc = web_ledger_key(db, &doc); /* public: the community publishes it */
        if (rc == WEB_DATA_NOT_FOUND)
            return send_error(c, 404, "the ledger has no key yet");
    } else if (strcmp(url, "/api/community") == 0) {
        if (who.role != WEB_ROLE_ADMIN)
            return send_error(c, 403, "forbidden");
        if (day_of(db, c, &day) != MHD_YES)
            return send_error(c, 400, "day: YYYY-MM-DD");
        const web_alert_rules rules = {s->cfg.alert_silent_s, s->cfg.alert_lag_s};
        rc = web_community_day(db, day, now_ms(), &rules, &doc);
        /* the live streams, for the operator: open now, dropped for not reading */
        if (rc == WEB_DATA_OK && s->live)
            json_object_set_new(doc, "live",
                                json_pack("{sI sI}", "streams",
                                          (json_int_t)web_live_count(s->live), "dropped",
                                          (json_int_t)web_live_dropped(s->live)));
    } else {
        return send_error(c, 404, "not found");
    }
    if (rc == WEB_DATA_NOT_FOUND)
        return send_error(c, 404, "no such home");
    if (rc != WEB_DATA_OK)
        return send_error(c, 500, "database error");
    return send_json(c, 200, doc, NULL);
}

static enum MHD_Result asset(struct MHD_Connection *c, const char *url)
{
    if (strcmp(url, "/") == 0)
        url = "/index.html";
    for (size_t i = 0; i < WEB_N_ASSETS; i++)
        if (strcmp(WEB_ASSETS[i].path, url) == 0)
            return send_buf(c, 200, WEB_ASSETS[i].type, WEB_ASSETS[i].data, WEB_ASSETS[i].len,
                            MHD_RESPMEM_PERSISTENT, NULL);
    return send_error(c, 404, "not found");
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version,
                                  const char *upload_data, size_t *upload_data_size,
                                  void **con_cls)
{
    (void)version;
    web_server *s = cls;
    int post = strcmp(method, "POST") == 0;
    if (!*con_cls) { /* the headers: set up, answer on the next call */
        request *rq = calloc(1, sizeof *rq);
        if (!rq)
            return MHD_NO;
        if (post && !(rq->body = sodium_malloc(LOGIN_BODY_MAX + 1))) {
            free(rq);
            return MHD_NO;
        }
        *con_cls = rq;
        return MHD_YES;
    }
    request *rq = *con_cls;
    if (post) {
        if (*upload_data_size) {
            if (rq->len + *upload_data_size > LOGIN_BODY_MAX)
                rq->too_big = 1;
            else {
                memcpy(rq->body + rq->len, upload_data, *upload_data_size);
                rq->len += *upload_data_size;
            }
            *upload_data_size = 0;
            return MHD_YES;
        }
        if (strcmp(url, "/api/login") == 0)
            return do_login(s, c, rq);
        if (strcmp(url, "/api/logout") == 0) {
            const char *tok = MHD_lookup_connection_value(c, MHD_COOKIE_KIND, COOKIE);
            if (tok)
                web_sessions_end(s->sessions, tok);
            return send_json(c, 200, json_object(),
                             COOKIE "=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0");
        }
        return send_error(c, 404, "not found");
    }
    if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
        return send_error(c, 405, "read only");
    if (strncmp(url, "/api/", 5) == 0)
        return api_get(s, c, url);
    return asset(c, url);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)cls, (void)c, (void)toe;
    request *rq = *con_cls;
    if (!rq)
        return;
    sodium_free(rq->body); /* wipes the password */
    free(rq);
    *con_cls = NULL;
}

static char *read_pem(const char *path, int secret, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        ctl_errf(err, errlen, "%s: cannot read", path);
        return NULL;
    }
    enum { PEM_MAX = 65536 };
    char *buf = secret ? sodium_malloc(PEM_MAX + 1) : malloc(PEM_MAX + 1);
    size_t n = buf ? fread(buf, 1, PEM_MAX + 1, f) : 0;
    fclose(f);
    if (!buf || n == 0 || n > PEM_MAX) {
        ctl_errf(err, errlen, "%s: empty or larger than %d bytes", path, PEM_MAX);
        secret ? sodium_free(buf) : free(buf);
        return NULL;
    }
    buf[n] = 0;
    return buf;
}

web_server *web_server_start(const web_config *c, ctl_db *db, char *err, size_t errlen)
{
    if (sodium_init() < 0) {
        ctl_errf(err, errlen, "libsodium failed to start");
        return NULL;
    }
    web_server *s = calloc(1, sizeof *s);
    if (!s) {
        ctl_errf(err, errlen, "out of memory");
        return NULL;
    }
    s->cfg = *c;
    pthread_mutex_init(&s->pool_lock, NULL);
    pthread_cond_init(&s->pool_free, NULL);
    s->pool_init = 1;
    s->dbs[0] = db;
    s->n_dbs = 1;
    size_t threads = c->threads < 1 ? 1 : c->threads > DB_POOL_MAX ? DB_POOL_MAX : (size_t)c->threads;
    for (; s->n_dbs < threads; s->n_dbs++)
        if (ctl_db_open_readonly(c->database, &s->dbs[s->n_dbs], err, errlen) != CTL_DB_OK) {
            s->dbs[0] = NULL; /* the caller's */
            goto fail;
        }
    if (c->live_max_clients > 0 &&
        !(s->live = web_live_start(c->database, (size_t)c->live_max_clients,
                                   (size_t)c->live_queue_bytes, c->live_poll_ms, err, errlen))) {
        s->dbs[0] = NULL;
        goto fail;
    }
    s->sessions = web_sessions_new((size_t)c->max_sessions, c->session_ttl_s);
    s->throttle = web_throttle_new(1024);
    if (!s->sessions || !s->throttle) {
        ctl_errf(err, errlen, "out of memory");
        goto fail;
    }
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)c->port);
    inet_pton(AF_INET, c->listen, &a.sin_addr);
    /* suspend and resume: the live streams wait without a thread (web_live.h) */
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG | MHD_USE_EPOLL |
                     MHD_ALLOW_SUSPEND_RESUME;
    unsigned pool = threads > 1 ? (unsigned)threads : 0, conns = (unsigned)c->max_connections;
    if (c->tls_cert[0]) {
        if (MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES) {
            ctl_errf(err, errlen, "this libmicrohttpd has no TLS");
            goto fail;
        }
        if (!(s->cert = read_pem(c->tls_cert, 0, err, errlen)) ||
            !(s->key = read_pem(c->tls_key, 1, err, errlen)))
            goto fail;
        s->tls = 1;
        flags |= MHD_USE_TLS;
    }
    /* the TLS pair and the thread pool only when used: libmicrohttpd warns about a pool of
     * one (or zero) */
    struct MHD_OptionItem opts[6];
    size_t no = 0;
    if (s->tls) {
        opts[no++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_CERT, 0, s->cert};
        opts[no++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_KEY, 0, s->key};
    }
    if (pool)
        opts[no++] = (struct MHD_OptionItem){MHD_OPTION_THREAD_POOL_SIZE, (intptr_t)pool, NULL};
    opts[no++] = (struct MHD_OptionItem){MHD_OPTION_END, 0, NULL};
    s->d = MHD_start_daemon(flags, 0, NULL, NULL, on_request, s, MHD_OPTION_SOCK_ADDR, &a,
                            MHD_OPTION_NOTIFY_COMPLETED, on_completed, s,
                            MHD_OPTION_CONNECTION_LIMIT, conns, MHD_OPTION_CONNECTION_TIMEOUT, 30u,
                            MHD_OPTION_ARRAY, opts, MHD_OPTION_END);
    if (!s->d) {
        ctl_errf(err, errlen, "cannot listen on %s:%lld%s", c->listen, (long long)c->port,
                 s->tls ? " (or the TLS certificate and key were refused)" : "");
        goto fail;
    }
    return s;
fail:
    web_server_stop(s);
    return NULL;
}

int web_server_port(const web_server *s)
{
    const union MHD_DaemonInfo *i = MHD_get_daemon_info(s->d, MHD_DAEMON_INFO_BIND_PORT);
    return i ? (int)i->port : -1;
}

void web_server_stop(web_server *s)
{
    if (!s)
        return;
    web_live_shutdown(s->live, 2000);
    if (s->d)
        MHD_stop_daemon(s->d);
    web_live_free(s->live);
    for (size_t i = 1; i < s->n_dbs; i++) /* dbs[0] is the caller's */
        ctl_db_close(s->dbs[i]);
    if (s->pool_init) {
        pthread_mutex_destroy(&s->pool_lock);
        pthread_cond_destroy(&s->pool_free);
    }
    web_sessions_free(s->sessions);
    web_throttle_free(s->throttle);
    free(s->cert);
    sodium_free(s->key);
    free(s);
}
