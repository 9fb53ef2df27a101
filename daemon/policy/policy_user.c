/*
 * policy_user: end users' personal sender lists in the policy snapshot
 * (docs/policy.md "Personal sender lists").
 *
 * The snapshot holds two hash sets, both built by policy_snap_load_store()
 * on the watcher thread: the directory addresses (primary and aliases) of
 * every user who has entries, address -> owner (ref id = user id), and the
 * entries themselves keyed "<user id>:<value>".  A lookup per recipient is
 * therefore one probe for the owner and at most two for the sender (the
 * address, then "@domain"), whatever the number of users and entries.
 * Group addresses are never owners: a manager's list does not apply to
 * the group's mail.
 *
 * policy_user_value_check() is the one validator of a personal entry, used
 * by the API and the loader alike; it is pure.
 */
#include "policy_stage.h"

#include <stdio.h>
#include <string.h>

#include "../log/log.h"
#include "../util/util.h"

#define USER_KEY_MAX 400 /* "<id>:" and a value of up to 320 octets */

int policy_user_value_check(const char *value, size_t len, char *norm, size_t normsz,
			    char *err, size_t errsz)
{
	char tmp[400];
	size_t i;
	int n;

	if (len == 0 || len > 320) {
		snprintf(err, errsz, "empty or too long value");
		return -1;
	}
	for (i = 0; i < len; i++) {
		if (value[i] == '*' || value[i] == '?' || value[i] == '\0') {
			snprintf(err, errsz, "an address (user@example.com) or a domain"
				 " (@example.com); patterns are not accepted");
			return -1;
		}
	}
	if (memchr(value, '@', len) == NULL) {
		snprintf(err, errsz, "an address (user@example.com) or a domain (@example.com)");
		return -1;
	}
	if (policy_value_check(POLICY_LT_MAIL, value, len, tmp, sizeof(tmp), err, errsz) < 0)
		return -1;
	/* policy_value_check() gives "@dom" back as "dom": keep the '@' that says
	 * "every address of the domain". */
	if (value[0] == '@')
		n = snprintf(norm, normsz, "@%s", tmp);
	else
		n = snprintf(norm, normsz, "%s", tmp);
	if (n < 0 || (size_t)n >= normsz) {
		snprintf(err, errsz, "empty or too long value");
		return -1;
	}
	return 0;
}

static int user_key(char *out, size_t outsz, int64_t user_id, const char *value, size_t len)
{
	int n = snprintf(out, outsz, "%lld:%.*s", (long long)user_id, (int)len, value);

	return n > 0 && (size_t)n < outsz ? n : -1;
}

int policy_snap_add_user_entry(struct policy_snap *sn, int64_t id, int64_t user_id,
			       const char *kind, const char *value, char *err, size_t errsz)
{
	char norm[400], key[USER_KEY_MAX];
	struct policy_ref *r;
	int allow = strcmp(kind, "allow") == 0;
	int n;

	if (!allow && strcmp(kind, "block") != 0) {
		snprintf(err, errsz, "unknown kind %s", kind);
		return -1;
	}
	if (policy_user_value_check(value, strlen(value), norm, sizeof(norm), err, errsz) < 0)
		return -1;
	n = user_key(key, sizeof(key), user_id, norm, strlen(norm));
	if (n < 0) {
		snprintf(err, errsz, "value too long");
		return -1;
	}
	r = policy_snap_new_ref(sn);
	r->id = id;
	r->list = allow ? "user_allow" : "user_block";
	r->value = policy_snap_keep(sn, norm);
	policy_strset_add(&sn->user_senders, key, (size_t)n, r);
	return 0;
}

void policy_snap_add_user_owner(struct policy_snap *sn, const char *address, int64_t user_id)
{
	struct policy_ref *r = policy_snap_new_ref(sn);

	r->id = user_id;
	r->list = "owner";
	r->value = policy_snap_keep(sn, address);
	policy_strset_add(&sn->user_owner, address, strlen(address), r);
}

const struct policy_ref *policy_user_sender(const struct policy_snap *sn, const char *rcpt,
					    const char *sender, int64_t *owner)
{
	const struct policy_ref *o, *r;
	const char *at;
	char key[USER_KEY_MAX];
	int n;

	if (owner != NULL)
		*owner = 0;
	if (sn->user_senders.count == 0 || rcpt == NULL || sender == NULL || sender[0] == '\0')
		return NULL;
	o = policy_strset_get(&sn->user_owner, rcpt, strlen(rcpt));
	if (o == NULL)
		return NULL;
	if (owner != NULL)
		*owner = o->id;
	n = user_key(key, sizeof(key), o->id, sender, strlen(sender));
	if (n > 0) {
		r = policy_strset_get(&sn->user_senders, key, (size_t)n);
		if (r != NULL)
			return r;
	}
	at = strrchr(sender, '@');
	if (at == NULL)
		return NULL;
	n = user_key(key, sizeof(key), o->id, at, strlen(at));
	return n > 0 ? policy_strset_get(&sn->user_senders, key, (size_t)n) : NULL;
}

/*
 * delay_reject (policy.c keeps the refusals): a DNSBL refusal waiting for
 * RCPT is lifted for a recipient whose owner allows the sender; any other
 * delayed refusal stands.  Logged and counted as user_allow once per
 * recipient: a RCPT resumed after DNS (ps->step still STEP_RCPT) asks
 * again and is not counted twice.
 */
const struct policy_verdict *policy_delayed_rcpt(struct policy_sess *ps, const char *rcpt)
{
	const struct policy_ref *r = NULL;
	char who[400];
	int64_t owner = 0;
	size_t i;
	int lifted = 0;

	for (i = 0; i < ARRAY_LEN(ps->delayed); i++) {
		const struct policy_verdict *d = &ps->delayed[i];

		if (d->action != POLICY_REFUSE && d->action != POLICY_DEFER)
			continue;
		if (strcmp(d->check, "dnsbl") != 0 || ps->sender[0] == '\0')
			return d;
		if (r == NULL)
			r = policy_user_sender(ps->snap, rcpt, ps->sender, &owner);
		if (r == NULL || strcmp(r->list, "user_allow") != 0)
			return d;
		if (!lifted && ps->step != STEP_RCPT) {
			log_escape(rcpt, strlen(rcpt), who, sizeof(who));
			log_info(ps->idstr, "policy", "user_allow rcpt=<%s> user_id=%lld"
				 " entry=\"user_allow entry %lld %s\" lifted=\"%s\"", who,
				 (long long)owner, (long long)r->id, r->value, d->entry);
			policy_stat_add(ps->p, "user_allow", 0, 1, 0, 0, 0, 0);
			lifted = 1;
		}
	}
	return NULL;
}
