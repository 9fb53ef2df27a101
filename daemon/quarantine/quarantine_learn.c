/*
 * quarantine_learn: release-as-ham (quarantine_learn.h).  The spam-kind
 * items of a release, at most QUARANTINE_LEARN_MAX, are learned into the
 * global model and, for an end user, their own; learned in memory first,
 * written in one short transaction per model once released.
 */
#include "quarantine_learn.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../log/log.h"
#include "../score/score_bayes.h"
#include "../spool/spool_read.h"
#include "../store/store.h"
#include "../store/store_policy.h"
#include "../store/store_quarantine.h"
#include "../util/util.h"
#include "quarantine_admin.h"

struct quarantine_learn {
	struct bayes_learner *global, *user;
	int64_t uid;
	int learned, skipped;
	char by[64];
};

/* bayes_learn_on_release, as stored (default yes). */
static int learn_on_release(struct store *st)
{
	char v[16];
	int found;

	if (store_policy_setting(st, "bayes_learn_on_release", v, sizeof(v), &found) < 0)
		return 0;
	return !found || !(strcmp(v, "no") == 0 || strcmp(v, "false") == 0 ||
			   strcmp(v, "0") == 0 || strcmp(v, "off") == 0);
}

struct collect {
	char (*qids)[40];
	size_t n, max;
	int more;
};

static int collect_qid(const struct store_quarantine_row *q, void *arg)
{
	struct collect *c = arg;

	for (size_t i = 0; i < c->n; i++)
		if (strcmp(c->qids[i], q->qid) == 0)
			return 0;
	if (c->n == c->max) {
		c->more = 1;
		return 1;
	}
	strlcpy_s(c->qids[c->n++], q->qid, sizeof(c->qids[0]));
	return 0;
}

struct quarantine_learn *quarantine_learn_begin(struct store *st, const char *data_dir,
						const struct store_quarantine_filter *f,
						const struct quarantine_actor *actor)
{
	struct store_quarantine_filter sf = *f;
	struct quarantine_learn *rl;
	struct collect c = { NULL, 0, QUARANTINE_LEARN_MAX, 0 };
	char err[300], path[1400];

	if (!learn_on_release(st) || (f->kind != NULL && strcmp(f->kind, "spam") != 0))
		return NULL;
	sf.kind = "spam";
	sf.limit = 0;
	sf.cursor = NULL;
	c.qids = xcalloc(c.max, sizeof(*c.qids));
	if (store_quarantine_list(st, &sf, collect_qid, &c) < 0 || c.n == 0) {
		free(c.qids);
		return NULL;
	}
	rl = xcalloc(1, sizeof(*rl));
	strlcpy_s(rl->by, actor->name != NULL ? actor->name : "-", sizeof(rl->by));
	rl->global = bayes_learner_open(st, 0, err, sizeof(err));
	if (!actor->admin && actor->user_id != 0) {
		rl->uid = actor->user_id;
		rl->user = bayes_learner_open(st, rl->uid, err, sizeof(err));
	}
	if (rl->global == NULL || (rl->uid != 0 && rl->user == NULL)) {
		log_error(NULL, "quarantine", "release learning not done: %s", err);
		quarantine_learn_end(rl, 0);
		free(c.qids);
		return NULL;
	}
	for (size_t i = 0; i < c.n; i++) {
		enum bayes_outcome o;
		size_t len;
		int too_big, n;
		char *msg;

		n = snprintf(path, sizeof(path), "%s/spool/quarantine/%s", data_dir, c.qids[i]);
		msg = n > 0 && (size_t)n < sizeof(path)
			      ? spool_read_file(path, QUARANTINE_LEARN_FILE_MAX, &len, &too_big)
			      : NULL;
		if (msg == NULL ||
		    bayes_learn(rl->global, msg, len, 'h', &o, err, sizeof(err)) < 0 ||
		    (rl->user != NULL &&
		     bayes_learn(rl->user, msg, len, 'h', &o, err, sizeof(err)) < 0))
			rl->skipped++;
		else
			rl->learned++;
		free(msg);
	}
	rl->skipped += c.more;
	free(c.qids);
	return rl;
}

void quarantine_learn_end(struct quarantine_learn *rl, int released)
{
	char err[300];

	if (rl == NULL)
		return;
	/* Written only once the release is: a refused release teaches nothing. */
	if (released && rl->learned > 0) {
		if (bayes_learner_flush(rl->global, err, sizeof(err)) < 0 ||
		    (rl->user != NULL && bayes_learner_flush(rl->user, err, sizeof(err)) < 0))
			log_error(NULL, "quarantine", "release learning failed: %s", err);
		else
			log_info(NULL, "quarantine", "learn release class=ham messages=%d"
				 " skipped=%d user_model=%lld by=%s", rl->learned, rl->skipped,
				 (long long)rl->uid, rl->by);
	}
	bayes_learner_free(rl->global);
	bayes_learner_free(rl->user);
	free(rl);
}
