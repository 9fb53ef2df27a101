/*
 * policy_mbapply: "apply my mailbox rules to my quarantined mail now"
 * (docs/mailbox-rules.md).  One owner's set runs over that owner's
 * quarantined items — a user's items for their own addresses, a group's
 * for the group address — as it would have run at the end of DATA:
 *   deliver (inbox or a folder, with tags)  -> the item is released, its
 *                                              delivery edit in queue_rcpt.edit
 *   discard                                 -> the item is deleted
 *   quarantine, refuse, forward, no match   -> the item stays ("kept")
 * A refusal cannot be answered after the fact and a forward would send the
 * quarantined message to a third address: both stay for the owner to
 * decide.  Only items of the kinds an end user may release
 * (quarantine_user_release_kinds) are examined, whoever asks: it is the
 * owner's rules that release them.
 *
 * Called on HTTP threads (never the mail loop) with that thread's store;
 * bounded to POLICY_MBAPPLY_MAX items per call, oldest first.  The release
 * and delete go through quarantine_admin (message_event rows with the
 * actor, an audit row per step) and one audit row
 * "mailbox_rule.apply_quarantine" sums the call up.
 */
#ifndef MOAT_POLICY_MBAPPLY_H
#define MOAT_POLICY_MBAPPLY_H

#include <stddef.h>
#include <stdint.h>

struct store;
struct quarantine_actor;

#define POLICY_MBAPPLY_MAX 10000            /* quarantined items examined per call */
#define POLICY_MBAPPLY_MESSAGE_MAX (64 * 1024 * 1024) /* larger stored files are kept */

struct policy_mbapply_owner {
	int64_t user_id;            /* a user's set, or 0 */
	int64_t group_id;           /* a group's set, or 0 */
	const char *group_address;  /* the group's address (group_id set) */
	/* The quarantine scope of the caller: 0 every item (administrators);
	 * else the user whose addresses and managed groups may be touched. */
	int64_t scope_user_id;
};

struct policy_mbapply_result {
	int examined, released, deleted, kept;
	int more;                   /* more items than POLICY_MBAPPLY_MAX: call again */
};

/* 0, or -1 with err and *http_status (500, or 503 when the database is busy). */
int policy_mbox_apply_quarantine(struct store *st, const char *data_dir,
				 const struct policy_mbapply_owner *o,
				 const struct quarantine_actor *actor,
				 struct policy_mbapply_result *res, int *http_status, char *err,
				 size_t errsz);

#endif
