/*
 * store_event: the message_event table (schema/013) — what happened to an
 * accepted message, one row per event, for its timeline.  Writers call
 * store_event_add inside the transaction that makes the change, so an
 * event exists exactly when its change does.  Never on the mail event loop.
 */
#ifndef MOAT_STORE_EVENT_H
#define MOAT_STORE_EVENT_H

#include <stdint.h>

struct store;

struct store_event_row {
	int64_t id;
	int64_t ts;            /* unix ms */
	const char *qid;
	const char *rcpt;      /* NULL: the whole message */
	const char *event;     /* "delivery.attempt", "quarantine.release", ... */
	const char *detail;    /* a JSON object as text; NULL is "{}" */
	const char *actor;     /* NULL: not recorded */
};

/* Insert one event (id ignored; ts 0 means now).  0 or -1. */
int store_event_add(struct store *st, const struct store_event_row *e);

/* The events of qid in time order; cb non-zero stops.  0 or -1. */
int store_event_list(struct store *st, const char *qid,
		     int (*cb)(const struct store_event_row *e, void *arg), void *arg);

/* Remove events older than before_ms, at most limit rows; the count or -1. */
int store_event_purge(struct store *st, int64_t before_ms, int limit);

#endif
