/*
 * The dashboard's live updates over Server-Sent Events (see web_live.h).
 *
 * Locking: l->lock guards the slot table. A stream's reader (libmicrohttpd's content callback)
 * suspends its connection while holding l->lock, so the poll thread, which reads `suspended`
 * under the lock and resumes outside it, only ever resumes a connection that libmicrohttpd has
 * suspended; a suspended connection cannot close, so its slot (freed by the response's free
 * callback) is still the stream's when it is resumed.
 */
#define _POSIX_C_SOURCE 200809L
#include "web/web_live.h"

#include "common/errbuf.h"
#include "common/wall_clock.h"
#include "db/dashboard.h"
#include "db/db.h"
#include "web/web_data.h"

#include <errno.h>
#include <jansson.h>
#include <microhttpd.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#define KEEPALIVE_MS 15000

typedef struct {
    int used;      /* from web_live_open until the response is freed */
    uint64_t gen;  /* bumped at each open: the poll thread's snapshot names a stream by it */
    struct MHD_Connection *conn;
    web_who who;
    int suspended; /* the reader suspended the connection; only the poll thread clears it */
    int closing;   /* dropped (queue full) or shutting down: the reader ends the stream */
    int started;   /* seen holds the marks of the stream's start */
    web_marks seen;
    char *buf;     /* queue_bytes of unsent text */
    size_t len;
    int64_t last_ms; /* last time text was queued */
    web_live *l;
} slot;

typedef struct {
    size_t i;
    uint64_t gen;
    web_who who;
    int started;
    web_marks seen;
    int64_t last_ms;
} snap;

struct web_live {
    pthread_mutex_t lock;
    pthread_cond_t wake;
    pthread_t thread;
    int thread_started;
    int stopping;
    ctl_db *db; /* the poll thread's own handle */
    slot *slots;
    snap *snaps;
    size_t n, open;
    size_t queue_bytes;
    int64_t poll_ms;
    uint64_t dropped;
};

static ssize_t live_read(void *cls, uint64_t pos, char *out, size_t max)
{
    (void)pos;
    slot *k = cls;
    web_live *l = k->l;
    pthread_mutex_lock(&l->lock);
    ssize_t n;
    if (k->closing || l->stopping) {
        n = l->stopping ? MHD_CONTENT_READER_END_OF_STREAM : MHD_CONTENT_READER_END_WITH_ERROR;
    } else if (k->len) {
        size_t m = k->len < max ? k->len : max;
        memcpy(out, k->buf, m);
        memmove(k->buf, k->buf + m, k->len - m);
        k->len -= m;
        n = (ssize_t)m;
    } else {
        /* nothing to send: park the connection until the poll thread has news */
        k->suspended = 1;
        MHD_suspend_connection(k->conn);
        n = 0;
    }
    pthread_mutex_unlock(&l->lock);
    return n;
}

static void live_free_slot(void *cls)
{
    slot *k = cls;
    web_live *l = k->l;
    pthread_mutex_lock(&l->lock);
    free(k->buf);
    k->buf = NULL;
    k->len = 0;
    k->used = 0;
    k->conn = NULL;
    l->open--;
    pthread_mutex_unlock(&l->lock);
}

struct MHD_Response *web_live_open(web_live *l, struct MHD_Connection *c, const web_who *who)
{
    pthread_mutex_lock(&l->lock);
    slot *k = NULL;
    if (!l->stopping)
        for (size_t i = 0; i < l->n && !k; i++)
            if (!l->slots[i].used)
                k = &l->slots[i];
    char *buf = k ? malloc(l->queue_bytes) : NULL;
    if (!buf) {
        pthread_mutex_unlock(&l->lock);
        return NULL;
    }
    uint64_t gen = k->gen + 1;
    memset(k, 0, sizeof *k);
    k->used = 1;
    k->gen = gen;
    k->conn = c;
    k->who = *who;
    k->buf = buf;
    k->l = l;
    k->last_ms = ctl_wall_ms();
    /* the browser's EventSource waits this long before reconnecting */
    static const char HELLO[] = "retry: 3000\n\n";
    memcpy(k->buf, HELLO, sizeof HELLO - 1);
    k->len = sizeof HELLO - 1;
    l->open++;
    pthread_mutex_unlock(&l->lock);
    /* the kernel's share of the bound: without this, Linux grows a stream's send buffer up to
     * tcp_wmem's maximum (4 MB) for a reader that stopped, and the queue bound below would only
     * start counting after megabytes per stream */
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
    if (ci) {
        int sndbuf = (int)l->queue_bytes;
        setsockopt(ci->connect_fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf);
    }
    struct MHD_Response *r =
        MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 4096, live_read, k, live_free_slot);
    if (!r)
        live_free_slot(k);
    else
        pthread_cond_signal(&l->wake); /* its first marks at once */
    return r;
}

/* Appends "event: NAME\ndata: JSON\n\n" for each of events to text (malloc'd, grown). */
static int format_events(json_t *events, char **text, size_t *len)
{
    size_t i;
    json_t *e;
    json_array_foreach(events, i, e) {
        char *data = json_dumps(json_object_get(e, "data"), JSON_COMPACT);
        const char *name = json_string_value(json_object_get(e, "event"));
        if (!data || !name) {
            free(data);
            return -1;
        }
        size_t need = strlen(name) + strlen(data) + 20;
        char *t = realloc(*text, *len + need + 1);
        if (!t) {
            free(data);
            return -1;
        }
        *text = t;
        *len += (size_t)snprintf(t + *len, need + 1, "event: %s\ndata: %s\n\n", name, data);
        free(data);
    }
    return 0;
}

/* One stream's news since s->seen (s->seen moves on), as SSE text in *text. */
static void news_for(web_live *l, snap *s, const web_marks *now, int64_t version, int changed,
                     char **text, size_t *len)
{
    json_t *events = json_array();
    if (!events)
        return;
    int admin = s->who.role == WEB_ROLE_ADMIN;
    if (!s->started) {
        json_array_append_new(events,
                              json_pack("{ss s{ss ss}}", "event", "hello", "data", "user",
                                        s->who.user, "role", admin ? "coordinator" : "home"));
        s->seen = *now;
        s->seen.reading_ts_ms = -1; /* the home's newest reading comes with the hello */
        s->started = 1;
        changed = 1;
    }
    if (changed) {
        int rc = admin ? web_community_events(l->db, now, &s->seen, events)
                       : web_home_events(l->db, s->who.user, now, &s->seen, ctl_wall_ms(),
                                         events);
        /* the coordinator's page reloads its view on a tick: the homes' readings and states */
        if (rc == WEB_DATA_OK && admin)
            json_array_append_new(events, json_pack("{ss s{sI}}", "event", "change", "data",
                                                    "version", (json_int_t)version));
    }
    format_events(events, text, len);
    json_decref(events);
}

static void sleep_until_wake(web_live *l, int64_t ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += ms / 1000;
    ts.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&l->lock);
    if (!l->stopping)
        pthread_cond_timedwait(&l->wake, &l->lock, &ts);
    pthread_mutex_unlock(&l->lock);
}

static void *poll_thread(void *arg)
{
    web_live *l = arg;
    int64_t last_version = -1;
    struct MHD_Connection **resume = calloc(l->n, sizeof *resume);
    if (!resume)
        return NULL;
    for (;;) {
        pthread_mutex_lock(&l->lock);
        int stop = l->stopping;
        size_t ns = 0;
        for (size_t i = 0; i < l->n && !stop; i++) {
            slot *k = &l->slots[i];
            if (k->used && !k->closing)
                l->snaps[ns++] = (snap){i, k->gen, k->who, k->started, k->seen, k->last_ms};
        }
        pthread_mutex_unlock(&l->lock);
        if (stop)
            break;
        int64_t version = 0;
        web_marks now;
        int changed = 0, ok = ctl_dash_data_version(l->db, &version) == CTL_DB_OK;
        if (ok && version != last_version) {
            ok = web_live_marks(l->db, &now) == WEB_DATA_OK;
            changed = ok;
        } else if (ok) {
            ok = web_live_marks(l->db, &now) == WEB_DATA_OK; /* cheap: two max() on indexes */
        }
        if (ok)
            last_version = version;
        int64_t t = ctl_wall_ms();
        size_t nr = 0;
        for (size_t j = 0; j < ns && ok; j++) {
            snap *s = &l->snaps[j];
            char *text = NULL;
            size_t len = 0;
            news_for(l, s, &now, version, changed, &text, &len);
            pthread_mutex_lock(&l->lock);
            slot *k = &l->slots[s->i];
            if (k->used && k->gen == s->gen && !k->closing) {
                if (!len && t - k->last_ms >= KEEPALIVE_MS) {
                    free(text);
                    text = strdup(": keepalive\n\n");
                    len = text ? strlen(text) : 0;
                }
                if (len && k->len + len > l->queue_bytes) {
                    /* a reader that stopped reading: drop it rather than hold news for it */
                    k->closing = 1;
                    l->dropped++;
                } else if (len) {
                    memcpy(k->buf + k->len, text, len);
                    k->len += len;
                    k->last_ms = t;
                }
                k->seen = s->seen;
                k->started = s->started;
                if ((k->len || k->closing) && k->suspended) {
                    k->suspended = 0;
                    resume[nr++] = k->conn;
                }
            }
            pthread_mutex_unlock(&l->lock);
            free(text);
        }
        /* outside the lock (see the top): these connections are suspended, so still open */
        for (size_t j = 0; j < nr; j++)
            MHD_resume_connection(resume[j]);
        sleep_until_wake(l, l->poll_ms);
    }
    free(resume);
    return NULL;
}

web_live *web_live_start(const char *db_path, size_t max_clients, size_t queue_bytes,
                         int64_t poll_ms, char *err, size_t errlen)
{
    web_live *l = calloc(1, sizeof *l);
    if (!l) {
        ctl_errf(err, errlen, "out of memory");
        return NULL;
    }
    pthread_mutex_init(&l->lock, NULL);
    pthread_cond_init(&l->wake, NULL);
    l->n = max_clients;
    l->queue_bytes = queue_bytes;
    l->poll_ms = poll_ms;
    if (max_clients &&
        (!(l->slots = calloc(max_clients, sizeof *l->slots)) ||
         !(l->snaps = calloc(max_clients, sizeof *l->snaps)))) {
        ctl_errf(err, errlen, "out of memory");
        goto fail;
    }
    if (ctl_db_open_readonly(db_path, &l->db, err, errlen) != CTL_DB_OK)
        goto fail;
    if (pthread_create(&l->thread, NULL, poll_thread, l) != 0) {
        ctl_errf(err, errlen, "cannot start the live update thread");
        goto fail;
    }
    l->thread_started = 1;
    return l;
fail:
    web_live_free(l);
    return NULL;
}

void web_live_shutdown(web_live *l, int64_t wait_ms)
{
    if (!l)
        return;
    pthread_mutex_lock(&l->lock);
    l->stopping = 1;
    pthread_cond_signal(&l->wake);
    pthread_mutex_unlock(&l->lock);
    if (l->thread_started)
        pthread_join(l->thread, NULL);
    l->thread_started = 0;
    /* wake every parked stream: its reader sees stopping and ends it */
    for (size_t i = 0; i < l->n; i++) {
        pthread_mutex_lock(&l->lock);
        struct MHD_Connection *c = NULL;
        if (l->slots[i].used && l->slots[i].suspended) {
            l->slots[i].suspended = 0;
            c = l->slots[i].conn;
        }
        pthread_mutex_unlock(&l->lock);
        if (c)
            MHD_resume_connection(c);
    }
    int64_t until = ctl_wall_ms() + wait_ms;
    while (web_live_count(l) && ctl_wall_ms() < until) {
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
}

void web_live_free(web_live *l)
{
    if (!l)
        return;
    if (l->thread_started)
        web_live_shutdown(l, 0);
    for (size_t i = 0; i < l->n && l->slots; i++)
        free(l->slots[i].buf);
    free(l->slots);
    free(l->snaps);
    ctl_db_close(l->db);
    pthread_cond_destroy(&l->wake);
    pthread_mutex_destroy(&l->lock);
    free(l);
}

size_t web_live_count(web_live *l)
{
    pthread_mutex_lock(&l->lock);
    size_t n = l->open;
    pthread_mutex_unlock(&l->lock);
    return n;
}

uint64_t web_live_dropped(web_live *l)
{
    pthread_mutex_lock(&l->lock);
    uint64_t n = l->dropped;
    pthread_mutex_unlock(&l->lock);
    return n;
}
