/*
 * http_learn: teaching the statistical filter through the API
 * (docs/score.md, "Learning") — a raw message (POST /api/v1/learn), a
 * message log entry whose content is still kept (POST
 * /api/v1/messages/{id}/learn), a quarantine item (POST
 * /api/v1/quarantine/{id}/learn, in http_quarantine.c, through
 * http_learn_file()), the ham learned when spam is released from the
 * quarantine, and the models' counts (GET /api/v1/bayes).
 *
 * Runs on an HTTP pool thread with that thread's store: a learner is opened
 * on it, the message learned, and the change written in one short
 * transaction that also moves the bayes generation, which the policy
 * watcher follows to load the models again.  A user's own judgement goes
 * into the global model and into that user's own model.
 */
#include "http_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../cluster/cluster_pg.h"
#include "../conf/conf.h"
#include "../log/log.h"
#include "../score/score_models.h"
#include "../spool/spool_read.h"
#include "../store/store_auth.h"
#include "../store/store_bayes.h"
#include "../store/store_policy.h"
#include "../store/store_quarantine.h"

static const char *const classes[] = { "spam", "ham", "forget", NULL };
static const char class_code[] = { 's', 'h', 0 };

/*
 * Learn msg as cls into the global model and, with uid, the user's own.
 * The reply says the outcome in the global model ("model") and, with uid,
 * in the user's ("user_model").
 */
static enum MHD_Result learn_reply(struct http_req *r, const char *msg, size_t len, char cls,
				   const char *cls_name, int64_t uid, const char *what)
{
	enum bayes_outcome og = BAYES_NOT_LEARNED, ou = BAYES_NOT_LEARNED;
	char err[300];
	json_t *o;

	if (score_learn(r->st, msg, len, cls, 0, &og, err, sizeof(err)) < 0 ||
	    (uid != 0 && score_learn(r->st, msg, len, cls, uid, &ou, err, sizeof(err)) < 0)) {
		log_error(NULL, "http", "learn %s failed: %s", what, err);
		return http_error(r, MHD_HTTP_INTERNAL_SERVER_ERROR, "internal", NULL,
				  "learning failed");
	}
	log_info(NULL, "http", "learn %s class=%s outcome=%s user_model=%lld by=%s", what,
		 cls_name, score_learn_outcome_name(og), (long long)uid,
		 r->auth.user[0] != '\0' ? r->auth.user : "-");
	o = json_pack("{s:s, s:s}", "class", cls_name, "outcome", score_learn_outcome_name(og));
	if (uid != 0) {
		json_object_set_new(o, "user_id", json_integer(uid));
		json_object_set_new(o, "user_outcome", json_string(score_learn_outcome_name(ou)));
	}
	return http_reply(r, MHD_HTTP_OK, o);
}

enum MHD_Result http_learn_file(struct http_req *r, const char *path, char cls,
				const char *cls_name, int64_t uid, const char *what)
{
	size_t len;
	int too_big;
	char *msg = spool_read_file(path, (size_t)r->h->conf->max_message_size, &len, &too_big);
	enum MHD_Result rc;

	if (msg == NULL && too_big)
		return http_error(r, MHD_HTTP_CONTENT_TOO_LARGE, "body_too_large", "id",
				  "the message is larger than max_message_size");
	if (msg == NULL)
		return http_error(r, MHD_HTTP_CONFLICT, "gone", "id",
				  "the message's content is no longer kept");
	rc = learn_reply(r, msg, len, cls, cls_name, uid, what);
	free(msg);
	return rc;
}

int http_learn_class(struct http_req *r, char *cls, const char **name)
{
	static const struct http_field fields[] = { { "class", HJ_STRING, 1, 16, 0, 0 } };
	json_t *body;
	const char *v;
	size_t i;

	if (http_body(r, fields, ARRAY_LEN(fields), &body) < 0)
		return -1;
	v = json_string_value(json_object_get(body, "class"));
	for (i = 0; classes[i] != NULL && strcmp(classes[i], v) != 0; i++)
		;
	json_decref(body);
	if (classes[i] == NULL) {
		r->fail.status = 422;
		r->fail.code = "invalid_value";
		snprintf(r->fail.message, sizeof(r->fail.message), "spam, ham or forget");
		snprintf(r->fail.field, sizeof(r->fail.field), "class");
		return -1;
	}
	*cls = class_code[i];
	*name = classes[i];
	return 0;
}

enum MHD_Result http_learn_post(struct http_req *r)
{
	static const char *const args[] = { "class", "user", NULL };
	struct store_user u;
	const char *user = NULL;
	int idx, found;
	int64_t uid = 0;

	if (http_args_allow(r, args) < 0 || http_arg_pick(r, "class", classes, &idx) < 0 ||
	    http_arg_str(r, "user", 320, &user) < 0)
		return http_fail_reply(r);
	if (idx < 0)
		return http_error(r, MHD_HTTP_BAD_REQUEST, "missing_parameter", "class",
				  "class=spam, ham or forget is required");
	if (r->body.len == 0 || r->body.data == NULL)
		return http_error(r, MHD_HTTP_BAD_REQUEST, "empty_body", "body",
				  "the body is the message (Content-Type: message/rfc822)");
	if (user != NULL) {
		if (store_auth_user_by_name(r->st, user, &u, &found) < 0)
			return http_internal(r, "learn");
		if (!found)
			return http_error(r, MHD_HTTP_NOT_FOUND, "not_found", "user",
					  "no such user");
		uid = u.id;
	}
	/* With user=, into that user's model only: an administrator training a
	 * mailbox's own filter from its folders. */
	if (uid != 0) {
		enum bayes_outcome o;
		char err[300];

		if (score_learn(r->st, r->body.data, r->body.len, class_code[idx], uid, &o, err,
				sizeof(err)) < 0) {
			log_error(NULL, "http", "learn message failed: %s", err);
			return http_error(r, MHD_HTTP_INTERNAL_SERVER_ERROR, "internal", NULL,
					  "learning failed");
		}
		log_info(NULL, "http", "learn message class=%s outcome=%s model=%lld by=%s",
			 classes[idx], score_learn_outcome_name(o), (long long)uid,
			 r->auth.user[0] != '\0' ? r->auth.user : "-");
		return http_reply(r, MHD_HTTP_OK,
				  json_pack("{s:s, s:s, s:I, s:s}", "class", classes[idx],
					    "outcome", score_learn_outcome_name(o), "user_id",
					    (json_int_t)uid, "user", u.name));
	}
	return learn_reply(r, r->body.data, r->body.len, class_code[idx], classes[idx], 0,
			   "message");
}

static int take_qid(const struct store_log_row *row, void *arg)
{
	char *qid = arg;

	if (row->qid != NULL)
		strlcpy_s(qid, row->qid, 64);
	return 1;
}

enum MHD_Result http_messages_learn(struct http_req *r)
{
	static const char *const args[] = { NULL };
	char qid[64] = "", path[1400];
	const char *name;
	int64_t id;
	int found, n;
	char cls;
	struct stat sb;

	if (http_args_allow(r, args) < 0 || http_param_id(r, 0, &id) < 0)
		return http_fail_reply(r);
	if (store_report_message_get(r->st, id, take_qid, qid, &found) < 0)
		return http_internal(r, "messages learn");
	if (!found)
		return http_error(r, MHD_HTTP_NOT_FOUND, "not_found", "id", "no such entry");
	if (http_learn_class(r, &cls, &name) < 0)
		return http_fail_reply(r);
	if (qid[0] == '\0' || !spool_qid_valid(qid, strlen(qid)))
		return http_error(r, MHD_HTTP_CONFLICT, "gone", "id",
				  "the message was not accepted: no content was kept");
	/* Still queued, else still in the quarantine: the same queue id. */
	if (spool_queue_path(r->h->conf->data_dir, qid, path, sizeof(path)) < 0)
		return http_error(r, MHD_HTTP_CONFLICT, "gone", "id", "no content kept");
	if (stat(path, &sb) < 0) {
		n = snprintf(path, sizeof(path), "%s/spool/quarantine/%s", r->h->conf->data_dir,
			     qid);
		if (n < 0 || (size_t)n >= sizeof(path))
			return http_error(r, MHD_HTTP_CONFLICT, "gone", "id", "no content kept");
		(void)cluster_pg_fetch_quarantine(r->h->conf->data_dir, qid);
	}
	return http_learn_file(r, path, cls, name, 0, "log entry");
}

/* ---- release from the quarantine learns ham ----------------------------- */

/* ---- counts ----------------------------------------------------------- */

struct models_json {
	struct store *st;
	json_t *arr;
	int failed;
};

static int add_model(int64_t uid, int64_t ns, int64_t nh, void *arg)
{
	struct models_json *m = arg;
	struct store_user u;
	int64_t tokens, learned;
	int found = 0;

	if (store_bayes_stats(m->st, uid, &tokens, &learned) < 0 ||
	    (uid != 0 && store_auth_user_get(m->st, uid, &u, &found) < 0)) {
		m->failed = 1;
		return 1;
	}
	json_array_append_new(m->arr, json_pack("{s:I, s:o, s:I, s:I, s:I, s:I}", "user_id",
						(json_int_t)uid,
						"user", uid != 0 && found ? json_string(u.name)
									  : json_null(),
						"spam", (json_int_t)ns, "ham", (json_int_t)nh,
						"tokens", (json_int_t)tokens, "learned",
						(json_int_t)learned));
	return 0;
}

enum MHD_Result http_bayes_show(struct http_req *r)
{
	static const char *const args[] = { NULL };
	struct models_json m = { r->st, json_array(), 0 };
	int64_t gen, bytes;
	char v[32];
	int found;

	if (http_args_allow(r, args) < 0) {
		json_decref(m.arr);
		return http_fail_reply(r);
	}
	if (store_policy_read_begin(r->st) < 0) {
		json_decref(m.arr);
		return http_internal(r, "bayes");
	}
	if (store_bayes_generation(r->st, &gen) < 0 || store_bayes_db_bytes(r->st, &bytes) < 0 ||
	    store_policy_setting(r->st, "bayes_min_learned", v, sizeof(v), &found) < 0 ||
	    store_bayes_models_each(r->st, add_model, &m) < 0 || m.failed) {
		store_policy_read_end(r->st);
		json_decref(m.arr);
		return http_internal(r, "bayes");
	}
	store_policy_read_end(r->st);
	return http_reply(r, MHD_HTTP_OK,
			  json_pack("{s:I, s:I, s:I, s:o}", "generation", (json_int_t)gen,
				    "store_bytes", (json_int_t)bytes, "min_learned",
				    (json_int_t)(found ? strtoll(v, NULL, 10) : BAYES_USER_MIN_LEARNED),
				    "models", m.arr));
}
