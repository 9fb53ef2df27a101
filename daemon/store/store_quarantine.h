/*
 * store_quarantine: SQL of the quarantine index (schema/012): one row per
 * quarantined recipient; the message is spool/quarantine/<qid>.  Rows are
 * written by the spool writer with the message (store_queue_insert); this
 * file reads them for the API.  Never called on the mail event loop.
 */
#ifndef MOAT_STORE_QUARANTINE_H
#define MOAT_STORE_QUARANTINE_H

#include <stdint.h>

struct store;

struct store_quarantine_row {
	const char *qid;
	const char *rcpt;
	const char *reason;
	const char *sender;
	const char *client_addr;
	int64_t size;
	int64_t created_at; /* unix ms */
};

/* Filters: NULL for none; rcpt and sender match exactly (case-insensitive). */
struct store_quarantine_filter {
	const char *rcpt;
	const char *sender;
	const char *qid;
	int64_t limit;      /* rows at most */
	int64_t offset;
};

/* Newest first; cb non-zero stops. */
int store_quarantine_list(struct store *st, const struct store_quarantine_filter *f,
			  int (*cb)(const struct store_quarantine_row *r, void *arg), void *arg);

#endif
