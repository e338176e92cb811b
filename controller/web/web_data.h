/*
 * Internal: the dashboard's JSON documents, built from the community database through db/,
 * settle/ and solana/ reads (never SQL of its own). The money figures come from the signed
 * ledger's positions (settle/ledger_statement.h), the same numbers `mgx ledger statement`
 * prints; the grid-only figure is ctl_statement_grid_only_net_uc of the same positions.
 *
 * Documents (field by field in docs/dashboard.md):
 *  - a home's day: its latest reading, its trades (its own side only: no counterparty, issue
 *    19), its settled positions and their sum against the grid-only sum, its energy credits of
 *    the month and its standing preference;
 *  - the community's day (coordinator only): every cleared interval's price and volumes, every
 *    home's status (last reading, held positions, disputes, trust) and the Solana outbox.
 *
 * A day is [day_utc, day_utc + 86400) in UTC seconds; intervals belong to the day they start in.
 * Thread safety: as the ctl_db handle. The caller owns the returned json_t (json_decref).
 */
#ifndef MGX_WEB_DATA_H
#define MGX_WEB_DATA_H

#include <jansson.h>
#include <stdint.h>

#include "db/db.h"

enum { WEB_DATA_OK = 0, WEB_DATA_NOT_FOUND = 1, WEB_DATA_E_DB = -1, WEB_DATA_E_NOMEM = -2 };

/* The UTC day (Unix seconds of its midnight) of the latest cleared interval, or of now_s when
 * none is cleared yet. */
int web_default_day(ctl_db *db, int64_t now_s, int64_t *day_utc);

/* Parses "YYYY-MM-DD" into its midnight UTC; -1 if malformed. */
int web_parse_day(const char *s, int64_t *day_utc);

/* home's day. WEB_DATA_NOT_FOUND when home is not a registered home. */
int web_home_day(ctl_db *db, const char *home, int64_t day_utc, int64_t now_ms, json_t **out);

/* The inclusion proof of home's position in interval_id at the latest checkpoint, as
 * `mgx ledger proof` writes it, with the community's verifier key the ledger recorded:
 * {"interval_id", "proof": {...}, "vkey"}. WEB_DATA_NOT_FOUND when the home has no position
 * there. */
int web_home_proof(ctl_db *db, const char *home, int64_t interval_id, json_t **out);

/* The community's verifier key as the ledger recorded it ("name+keyid+base64"): {"vkey"}.
 * WEB_DATA_NOT_FOUND before the ledger has one. The browser pins it on first use (docs/
 * dashboard.md, "Trusting the proof check"). */
int web_ledger_key(ctl_db *db, json_t **out);

/* When the coordinator is alerted (web_config: alert_silent_s, alert_lag_s). */
typedef struct {
    int64_t silent_after_s; /* a meter whose newest reading is older */
    int64_t lag_alert_s;    /* settlement further behind the clock than this */
} web_alert_rules;

/* The community's day for the coordinator: "intervals", "homes", "outbox", "disputes"
 * (intervals of the day with a boundary dispute or a peer-flagged home), "settlement" (last
 * cleared and settled interval, lag_s behind now, unsettled) and "alerts" ({"kind","text",..}:
 * meter_silent, held, disputed, peer_flagged, chain_failed, settlement_lag). */
int web_community_day(ctl_db *db, int64_t day_utc, int64_t now_ms, const web_alert_rules *rules,
                      json_t **out);

/* ---- live updates (web_live.h) ----
 * What a stream has told its reader so far, and what the store holds now: the newest reading's
 * time of the home's meter, the last cleared and the last settled interval. -1: none. */
typedef struct {
    int64_t reading_ts_ms;
    int64_t cleared_id;
    int64_t settled_id;
} web_marks;

/* The store's last cleared and settled intervals (reading_ts_ms -1). */
int web_live_marks(ctl_db *db, web_marks *now);

/* Events for home since *seen, appended to events as {"event": name, "data": {...}}, and *seen
 * moved on to now (its reading time from the home's meter): "reading" (its meter's newest
 * reading), "interval" (a newly cleared interval: its price and this home's own trades in it)
 * and "settled" (the home's own positions of newly settled intervals). Only home's own data and
 * the community's public price: never another home's. At most WEB_LIVE_BACKLOG intervals per
 * call (a reader far behind reloads its page). WEB_DATA_NOT_FOUND when home is not a home. */
#define WEB_LIVE_BACKLOG 8
int web_home_events(ctl_db *db, const char *home, const web_marks *now, web_marks *seen,
                    int64_t now_ms, json_t *events);

/* The coordinator's events since *seen: "interval" (each newly cleared interval as in the
 * community document) and "settled" ({"interval_id"}), *seen moved on to now. */
int web_community_events(ctl_db *db, const web_marks *now, web_marks *seen, json_t *events);

#endif
