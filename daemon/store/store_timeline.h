/*
 * store_timeline: the read side of a message's timeline (docs/timeline.md)
 * — the message-log rows that carry the SMTP conversation (schema/015),
 * found by row id, queue id or Message-ID.  The events after acceptance
 * are store_event's (store_event_list).  HTTP threads only.
 */
#ifndef MOAT_STORE_TIMELINE_H
#define MOAT_STORE_TIMELINE_H

#include <stdint.h>

struct store;

/* One message-log row as the timeline needs it; strings valid in the callback only. */
struct store_timeline_log {
	int64_t id;
	int64_t ts;               /* unix ms */
	const char *qid;          /* NULL: nothing was queued */
	const char *message_id;   /* NULL: unknown */
	const char *timeline;     /* JSON array, or NULL (a row from before schema/015) */
	const char *result, *code, *reason, *check_name, *entry;
	const char *sender, *recipients, *client_addr, *client_name;
};

enum store_timeline_key { STORE_TL_ID, STORE_TL_QID, STORE_TL_MESSAGE_ID };

/*
 * The rows whose key is id (STORE_TL_ID) or value (the others), in time order, at most limit of them; cb non-zero stops.  0 or -1.
 */
int store_timeline_logs(struct store *st, enum store_timeline_key key, int64_t id,
			const char *value, int limit,
			int (*cb)(const struct store_timeline_log *r, void *arg), void *arg);

#endif
