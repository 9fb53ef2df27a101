/*
 * store_cluster: see store_cluster.h.  The list of shared tables and the
 * reason for every table that is not shared are in docs/cluster.md; keep
 * both in step.
 *
 * The statements over shared tables are built once per process from the
 * schema (PRAGMA table_info), so a column added by a later migration is
 * shared without a change here.  Identifiers come from that list and the
 * schema only, never from a peer; values are always bound.
 *
 * Local columns: counters each node keeps for itself (a rule's hits, an
 * account's message counts).  A change of only those columns is not
 * recorded, and applying another node's row leaves them as they are here,
 * so that a counter bump on one node never undoes an edit made at the
 * same moment on another (the whole row is last-writer-wins otherwise).
 */
#include "store_cluster.h"

#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "store_internal.h"
#include "../util/util.h"

#define SQL_MAX (64 * 1024) /* a generated statement */
#define IDS_CACHED 32        /* moat_next_id statements kept per connection */

struct shared_def {
	const char *name;
	const char *local; /* space-separated local columns, "" none */
};

/* Parents before children, so a seeding node pushes them in that order. */
static const struct shared_def shared[] = {
	{ "policy_setting", "" },
	{ "policy_entry", "" },
	{ "dnsbl_site", "" },
	{ "dir_user", "" },
	{ "dir_address", "" },
	{ "dir_group", "" },
	{ "dir_group_member", "" },
	{ "dir_group_manager", "" },
	{ "user_sender_list", "" },
	{ "rule", "hits last_hit" },
	{ "mailbox_ruleset", "generation" },
	{ "mailbox_rule", "hits last_hit" },
	{ "score_threshold", "" },
	{ "dkim_key", "" },
	{ "digest_template", "" },
	{ "api_token", "" },
	{ "api_session", "" },
	{ "api_audit", "" },
	{ "account_state", "messages recipients refused score updated signals volume_day"
			   " last_client bulk_seen" },
	{ "account_limit", "" },
	{ "account_alert", "" },
	{ "account_network", "first_seen last_seen messages" },
	{ "login_known_addr", "" },
	{ "message_log", "" },
	{ "quarantine", "" },
	/* Learning of the statistical filter, not its tokens: applied by
	 * repeating it (store_bayes_event_apply), never stored as a row. */
	{ "bayes_event", "" },
};
#define NSHARED (sizeof(shared) / sizeof(shared[0]))

struct col {
	char *name;
	int pk;    /* position in the primary key, 1-based; 0 not in it */
	int blob;  /* declared BLOB: hex in JSON */
	int local; /* kept per node */
};

struct tmeta {
	struct col *cols;
	size_t ncols;
	size_t npk;
	int id_key;       /* the key is one INTEGER column "id" (moat_next_id) */
	char *sql_read;   /* ?1 rid -> json_object of the row */
	char *sql_apply;  /* ?1 body: upsert on the key */
	char *sql_replace;/* ?1 body: INSERT OR REPLACE (another UNIQUE was hit) */
	char *sql_delete; /* ?1 rid */
	char *sql_all;    /* every rid */
	char *sql_max_id; /* ?1 lo, ?2 hi -> max(id) */
};

static pthread_mutex_t meta_mu = PTHREAD_MUTEX_INITIALIZER;
static struct tmeta meta[NSHARED];
static int meta_ready;

/* Per connection: the applying flag and moat_next_id's state. */
struct store_cluster_conn {
	sqlite3 *db;
	int applying;
	int node_read;
	int64_t base; /* node << 40; 0 outside a cluster */
	struct {
		size_t t;
		sqlite3_stmt *s;
	} ids[IDS_CACHED];
	size_t nids;
};

static int table_index(const char *tbl)
{
	size_t i;

	for (i = 0; i < NSHARED; i++)
		if (strcmp(shared[i].name, tbl) == 0)
			return (int)i;
	return -1;
}

int store_cluster_is_shared(const char *tbl)
{
	return table_index(tbl) >= 0;
}

static int is_local(const struct shared_def *d, const char *col)
{
	size_t n = strlen(col);
	const char *p = d->local;

	while (*p != '\0') {
		size_t w = strcspn(p, " ");

		if (w == n && strncmp(p, col, n) == 0)
			return 1;
		p += w;
		while (*p == ' ')
			p++;
	}
	return 0;
}

static void add(struct dynbuf *b, const char *s)
{
	if (dynbuf_add(b, s, strlen(s)) < 0)
		abort(); /* SQL_MAX is far above any table of the schema */
}

static void add_q(struct dynbuf *b, const char *ident)
{
	add(b, "\"");
	add(b, ident);
	add(b, "\"");
}

/* "p1" = json_extract(?1, '$[0]') AND ... */
static void add_key_where(struct dynbuf *b, const struct tmeta *m)
{
	size_t k, i;
	char path[32];

	for (k = 1; k <= m->npk; k++) {
		for (i = 0; i < m->ncols; i++) {
			if (m->cols[i].pk != (int)k)
				continue;
			if (k > 1)
				add(b, " AND ");
			add_q(b, m->cols[i].name);
			snprintf(path, sizeof(path), " = json_extract(?1, '$[%zu]')", k - 1);
			add(b, path);
		}
	}
}

/* json_array(<prefix>"p1", ...) in key order */
static void add_key_array(struct dynbuf *b, const struct tmeta *m, const char *prefix)
{
	size_t k, i;

	add(b, "json_array(");
	for (k = 1; k <= m->npk; k++) {
		for (i = 0; i < m->ncols; i++) {
			if (m->cols[i].pk != (int)k)
				continue;
			if (k > 1)
				add(b, ", ");
			add(b, prefix);
			add_q(b, m->cols[i].name);
		}
	}
	add(b, ")");
}

static char *take(struct dynbuf *b)
{
	char *s = xstrdup(b->data);

	dynbuf_reset(b);
	return s;
}

static void build_sql(size_t t, struct tmeta *m)
{
	const char *name = shared[t].name;
	struct dynbuf b;
	size_t i;
	int first;

	dynbuf_init(&b, SQL_MAX);

	add(&b, "SELECT json_object(");
	for (i = 0; i < m->ncols; i++) {
		if (i > 0)
			add(&b, ", ");
		add(&b, "'");
		add(&b, m->cols[i].name);
		add(&b, "', ");
		if (m->cols[i].blob) {
			add(&b, "hex(");
			add_q(&b, m->cols[i].name);
			add(&b, ")");
		} else {
			add_q(&b, m->cols[i].name);
		}
	}
	add(&b, ") FROM ");
	add_q(&b, name);
	add(&b, " WHERE ");
	add_key_where(&b, m);
	m->sql_read = take(&b);

	/* INSERT INTO t (c...) VALUES (json_extract(?1, '$.c')...) */
	for (int replace = 0; replace <= 1; replace++) {
		add(&b, replace ? "INSERT OR REPLACE INTO " : "INSERT INTO ");
		add_q(&b, name);
		add(&b, " (");
		for (i = 0; i < m->ncols; i++) {
			if (i > 0)
				add(&b, ", ");
			add_q(&b, m->cols[i].name);
		}
		add(&b, ") VALUES (");
		for (i = 0; i < m->ncols; i++) {
			if (i > 0)
				add(&b, ", ");
			add(&b, m->cols[i].blob ? "moat_unhex(json_extract(?1, '$.\""
						: "json_extract(?1, '$.\"");
			add(&b, m->cols[i].name);
			add(&b, m->cols[i].blob ? "\"'))" : "\"')");
		}
		add(&b, ")");
		if (replace) {
			m->sql_replace = take(&b);
			break;
		}
		add(&b, " ON CONFLICT (");
		first = 1;
		for (size_t k = 1; k <= m->npk; k++)
			for (i = 0; i < m->ncols; i++)
				if (m->cols[i].pk == (int)k) {
					if (!first)
						add(&b, ", ");
					add_q(&b, m->cols[i].name);
					first = 0;
				}
		add(&b, ") DO ");
		first = 1;
		for (i = 0; i < m->ncols; i++) {
			if (m->cols[i].pk || m->cols[i].local)
				continue;
			add(&b, first ? "UPDATE SET " : ", ");
			add_q(&b, m->cols[i].name);
			add(&b, " = excluded.");
			add_q(&b, m->cols[i].name);
			first = 0;
		}
		if (first)
			add(&b, "NOTHING");
		m->sql_apply = take(&b);
	}

	add(&b, "DELETE FROM ");
	add_q(&b, name);
	add(&b, " WHERE ");
	add_key_where(&b, m);
	m->sql_delete = take(&b);

	add(&b, "SELECT ");
	add_key_array(&b, m, "");
	add(&b, " FROM ");
	add_q(&b, name);
	m->sql_all = take(&b);

	if (m->id_key) {
		add(&b, "SELECT max(id) FROM ");
		add_q(&b, name);
		add(&b, " WHERE id >= ?1 AND id < ?2");
		m->sql_max_id = take(&b);
	}
	dynbuf_free(&b);
}

/* The shared tables' columns from the schema, once per process. */
static int meta_load(sqlite3 *db)
{
	size_t t;
	int rc = 0;

	pthread_mutex_lock(&meta_mu);
	if (meta_ready)
		goto out;
	for (t = 0; t < NSHARED; t++) {
		struct tmeta *m = &meta[t];
		sqlite3_stmt *s;
		char q[128];

		snprintf(q, sizeof(q), "SELECT name, type, pk FROM pragma_table_info('%s')",
			 shared[t].name);
		if (sqlite3_prepare_v2(db, q, -1, &s, NULL) != SQLITE_OK) {
			rc = -1;
			goto out;
		}
		while (sqlite3_step(s) == SQLITE_ROW) {
			const char *type = (const char *)sqlite3_column_text(s, 1);
			struct col *c;

			m->cols = xrealloc(m->cols, (m->ncols + 1) * sizeof(*m->cols));
			c = &m->cols[m->ncols++];
			c->name = xstrdup((const char *)sqlite3_column_text(s, 0));
			c->pk = sqlite3_column_int(s, 2);
			c->blob = type != NULL && strcasecmp(type, "BLOB") == 0;
			c->local = is_local(&shared[t], c->name);
			if (c->pk > 0)
				m->npk++;
			if (c->pk > 0 && strcmp(c->name, "id") == 0 && type != NULL &&
			    strcasecmp(type, "INTEGER") == 0)
				m->id_key = 1;
		}
		sqlite3_finalize(s);
		if (m->ncols == 0 || m->npk == 0) {
			/* A table of the list without a key: the list is wrong. */
			rc = -1;
			goto out;
		}
		if (m->npk != 1)
			m->id_key = 0;
		build_sql(t, m);
	}
	meta_ready = 1;
out:
	if (rc < 0) {
		for (t = 0; t < NSHARED; t++) {
			for (size_t i = 0; i < meta[t].ncols; i++)
				free(meta[t].cols[i].name);
			free(meta[t].cols);
			free(meta[t].sql_read);
			free(meta[t].sql_apply);
			free(meta[t].sql_replace);
			free(meta[t].sql_delete);
			free(meta[t].sql_all);
			free(meta[t].sql_max_id);
			memset(&meta[t], 0, sizeof(meta[t]));
		}
	}
	pthread_mutex_unlock(&meta_mu);
	return rc;
}

/* ---- SQL functions, on every connection ---- */

static void fn_applying(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
	struct store_cluster_conn *c = sqlite3_user_data(ctx);

	(void)argc;
	(void)argv;
	sqlite3_result_int(ctx, c->applying);
}

static void read_node(struct store_cluster_conn *c)
{
	sqlite3_stmt *s;

	c->node_read = 1;
	c->base = 0;
	/* Before migration 026 the table is not there: not in a cluster. */
	if (sqlite3_prepare_v2(c->db, "SELECT node FROM cluster_state WHERE id = 1", -1, &s,
			       NULL) != SQLITE_OK)
		return;
	if (sqlite3_step(s) == SQLITE_ROW)
		c->base = sqlite3_column_int64(s, 0) << STORE_CLUSTER_ID_BITS;
	sqlite3_finalize(s);
}

static void fn_next_id(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
	struct store_cluster_conn *c = sqlite3_user_data(ctx);
	const char *tbl = (const char *)sqlite3_value_text(argv[0]);
	const int64_t span = (int64_t)1 << STORE_CLUSTER_ID_BITS;
	sqlite3_stmt *s = NULL;
	int64_t next;
	int t;
	size_t i;

	(void)argc;
	if (!c->node_read)
		read_node(c);
	if (c->base == 0) {
		sqlite3_result_null(ctx); /* SQLite's own max + 1, as outside a cluster */
		return;
	}
	t = tbl != NULL ? table_index(tbl) : -1;
	if (t < 0 || meta_load(c->db) < 0 || !meta[t].id_key) {
		sqlite3_result_error(ctx, "moat_next_id: not a shared table with an id key", -1);
		return;
	}
	for (i = 0; i < c->nids; i++)
		if (c->ids[i].t == (size_t)t)
			s = c->ids[i].s;
	if (s == NULL) {
		if (sqlite3_prepare_v3(c->db, meta[t].sql_max_id, -1, SQLITE_PREPARE_PERSISTENT,
				       &s, NULL) != SQLITE_OK) {
			sqlite3_result_error(ctx, sqlite3_errmsg(c->db), -1);
			return;
		}
		if (c->nids == IDS_CACHED)
			abort(); /* more id tables than IDS_CACHED: raise it */
		c->ids[c->nids].t = (size_t)t;
		c->ids[c->nids++].s = s;
	}
	sqlite3_bind_int64(s, 1, c->base);
	sqlite3_bind_int64(s, 2, c->base + span);
	if (sqlite3_step(s) != SQLITE_ROW) {
		sqlite3_reset(s);
		sqlite3_result_error(ctx, sqlite3_errmsg(c->db), -1);
		return;
	}
	next = sqlite3_column_type(s, 0) == SQLITE_NULL ? c->base + 1
							: sqlite3_column_int64(s, 0) + 1;
	sqlite3_reset(s);
	if (next >= c->base + span) {
		sqlite3_result_error(ctx, "moat_next_id: this node's id range is full", -1);
		return;
	}
	sqlite3_result_int64(ctx, next);
}

static int hexval(unsigned char ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	if (ch >= 'A' && ch <= 'F')
		return ch - 'A' + 10;
	return -1;
}

/* hex text -> BLOB; NULL stays NULL (SQLite 3.40 has no unhex()). */
static void fn_unhex(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
	const unsigned char *h = sqlite3_value_text(argv[0]);
	size_t n, i;
	unsigned char *out;

	(void)argc;
	if (h == NULL) {
		sqlite3_result_null(ctx);
		return;
	}
	n = strlen((const char *)h);
	if (n % 2 != 0) {
		sqlite3_result_error(ctx, "moat_unhex: odd length", -1);
		return;
	}
	out = xmalloc(n / 2 + 1);
	for (i = 0; i < n / 2; i++) {
		int hi = hexval(h[2 * i]);
		int lo = hexval(h[2 * i + 1]);

		if (hi < 0 || lo < 0) {
			free(out);
			sqlite3_result_error(ctx, "moat_unhex: not hex", -1);
			return;
		}
		out[i] = (unsigned char)(hi << 4 | lo);
	}
	sqlite3_result_blob(ctx, out, (int)(n / 2), free);
}

struct store_cluster_conn *store_cluster_conn_new(sqlite3 *db)
{
	struct store_cluster_conn *c = xcalloc(1, sizeof(*c));

	c->db = db;
	/* Not SQLITE_DETERMINISTIC: their answers change with the connection's state. */
	if (sqlite3_create_function(db, "moat_cluster_applying", 0, SQLITE_UTF8, c,
				    fn_applying, NULL, NULL) != SQLITE_OK ||
	    sqlite3_create_function(db, "moat_next_id", 1, SQLITE_UTF8, c, fn_next_id, NULL,
				    NULL) != SQLITE_OK ||
	    sqlite3_create_function(db, "moat_unhex", 1, SQLITE_UTF8 | SQLITE_DETERMINISTIC,
				    NULL, fn_unhex, NULL, NULL) != SQLITE_OK) {
		free(c);
		return NULL;
	}
	return c;
}

void store_cluster_conn_free(struct store_cluster_conn *c)
{
	size_t i;

	if (c == NULL)
		return;
	for (i = 0; i < c->nids; i++)
		sqlite3_finalize(c->ids[i].s);
	free(c);
}

void store_cluster_set_applying(struct store *st, int on)
{
	st->cluster->applying = on;
	/* Rows arrive in the order of their last change, a child before its
	 * parent at times; the origin's cascades arrive as rows of their own. */
	(void)sqlite3_exec(st->db, on ? "PRAGMA foreign_keys = OFF" : "PRAGMA foreign_keys = ON",
			   NULL, NULL, NULL);
}

/* ---- triggers ---- */

static int run_sql(struct store *st, const char *sql, char *err, size_t errsz)
{
	char *msg = NULL;

	if (sqlite3_exec(st->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
		snprintf(err, errsz, "%s", msg ? msg : sqlite3_errmsg(st->db));
		sqlite3_free(msg);
		return -1;
	}
	return 0;
}

static void trigger_sql(size_t t, struct dynbuf *b)
{
	const struct tmeta *m = &meta[t];
	const char *n = shared[t].name;
	size_t i;
	int first = 1;

	add(b, "CREATE TRIGGER cluster_");
	add(b, n);
	add(b, "_i AFTER INSERT ON ");
	add_q(b, n);
	add(b, " WHEN moat_cluster_applying() = 0 BEGIN"
	       " INSERT INTO cluster_outbox (tbl, rid, op) VALUES ('");
	add(b, n);
	add(b, "', ");
	add_key_array(b, m, "NEW.");
	add(b, ", 'i'); END;\n");

	add(b, "CREATE TRIGGER cluster_");
	add(b, n);
	add(b, "_u AFTER UPDATE OF ");
	for (i = 0; i < m->ncols; i++) {
		if (m->cols[i].local)
			continue;
		if (!first)
			add(b, ", ");
		add_q(b, m->cols[i].name);
		first = 0;
	}
	add(b, " ON ");
	add_q(b, n);
	add(b, " WHEN moat_cluster_applying() = 0 BEGIN"
	       " INSERT INTO cluster_outbox (tbl, rid, op) SELECT '");
	add(b, n);
	add(b, "', ");
	add_key_array(b, m, "OLD.");
	add(b, ", 'd' WHERE ");
	add_key_array(b, m, "OLD.");
	add(b, " IS NOT ");
	add_key_array(b, m, "NEW.");
	add(b, "; INSERT INTO cluster_outbox (tbl, rid, op) VALUES ('");
	add(b, n);
	add(b, "', ");
	add_key_array(b, m, "NEW.");
	add(b, ", 'u'); END;\n");

	add(b, "CREATE TRIGGER cluster_");
	add(b, n);
	add(b, "_d AFTER DELETE ON ");
	add_q(b, n);
	add(b, " WHEN moat_cluster_applying() = 0 BEGIN"
	       " INSERT INTO cluster_outbox (tbl, rid, op) VALUES ('");
	add(b, n);
	add(b, "', ");
	add_key_array(b, m, "OLD.");
	add(b, ", 'd'); END;\n");
}

/* Another node number, or leaving: the next join starts from nothing (a
 * database restored from another node's backup carries that node's state). */
static const char SQL_SET_NODE[] =
	"UPDATE cluster_state SET joined = CASE WHEN node = ?1 THEN joined ELSE 0 END,"
	" pulled_seq = CASE WHEN node = ?1 THEN pulled_seq ELSE 0 END, node = ?1 WHERE id = 1";
static const char SQL_OUTBOX_CLEAR[] = "DELETE FROM cluster_outbox";
/* Learning events are for the other nodes only: a single node keeps none. */
static const char SQL_BAYES_EVENTS_CLEAR[] = "DELETE FROM bayes_event";

int store_cluster_install(struct store *st, int64_t node, int on, char *err, size_t errsz)
{
	struct dynbuf b;
	sqlite3_stmt *s;
	size_t t;
	int rc = -1;

	if (meta_load(st->db) < 0) {
		snprintf(err, errsz, "cluster: cannot read the shared tables' columns: %s",
			 sqlite3_errmsg(st->db));
		return -1;
	}
	dynbuf_init(&b, SQL_MAX * 4);
	if (store_begin(st) < 0) {
		snprintf(err, errsz, "cluster: cannot begin: %s", sqlite3_errmsg(st->db));
		dynbuf_free(&b);
		return -1;
	}
	/* Dropped and made again: a newer binary may share other columns. */
	for (t = 0; t < NSHARED; t++) {
		static const char *const sfx[] = { "i", "u", "d" };

		for (size_t k = 0; k < 3; k++) {
			char q[128];

			snprintf(q, sizeof(q), "DROP TRIGGER IF EXISTS cluster_%s_%s;\n",
				 shared[t].name, sfx[k]);
			add(&b, q);
		}
		if (on)
			trigger_sql(t, &b);
	}
	if (run_sql(st, b.data, err, errsz) < 0)
		goto out;
	s = store_prepare(st, SQL_SET_NODE);
	if (s == NULL)
		goto fail;
	sqlite3_bind_int64(s, 1, on ? node : 0);
	if (store_step_done(s) < 0)
		goto fail;
	if (!on && (store_run(st, SQL_OUTBOX_CLEAR) < 0 ||
		    store_run(st, SQL_BAYES_EVENTS_CLEAR) < 0))
		goto fail;
	if (store_commit(st) < 0)
		goto fail;
	st->cluster->node_read = 0; /* the new node applies to this connection too */
	rc = 0;
	goto done;
fail:
	snprintf(err, errsz, "cluster: %s", sqlite3_errmsg(st->db));
out:
	store_rollback(st);
done:
	dynbuf_free(&b);
	return rc;
}

/* ---- state and outbox ---- */

static const char SQL_STATE[] =
	"SELECT node, pulled_seq, joined FROM cluster_state WHERE id = 1";
static const char SQL_SET_PULLED[] = "UPDATE cluster_state SET pulled_seq = ?1 WHERE id = 1";
static const char SQL_SET_JOINED[] = "UPDATE cluster_state SET joined = 1 WHERE id = 1";
static const char SQL_OUTBOX_COUNT[] = "SELECT count(*) FROM cluster_outbox";
static const char SQL_OUTBOX_LAST[] = "SELECT coalesce(max(seq), 0) FROM cluster_outbox";
static const char SQL_OUTBOX_READ[] =
	"SELECT seq, tbl, rid FROM cluster_outbox ORDER BY seq LIMIT ?1";
static const char SQL_OUTBOX_DONE[] = "DELETE FROM cluster_outbox WHERE seq <= ?1";
static const char SQL_OUTBOX_ADD[] =
	"INSERT INTO cluster_outbox (tbl, rid, op) VALUES (?1, ?2, 'i')";
static const char SQL_Q_QID[] = "SELECT qid FROM quarantine WHERE id = json_extract(?1, '$[0]')";
static const char SQL_Q_LEFT[] = "SELECT count(*) FROM quarantine WHERE qid = ?1";
static const char SQL_READ_BEGIN[] = "BEGIN";
static const char SQL_READ_END[] = "COMMIT";
static const char SQL_READ_ABORT[] = "ROLLBACK";

int store_cluster_state_get(struct store *st, struct store_cluster_state *out)
{
	sqlite3_stmt *s = store_prepare(st, SQL_STATE);
	int rc = -1;

	memset(out, 0, sizeof(*out));
	if (s == NULL)
		return -1;
	if (sqlite3_step(s) == SQLITE_ROW) {
		out->node = sqlite3_column_int64(s, 0);
		out->pulled_seq = sqlite3_column_int64(s, 1);
		out->joined = sqlite3_column_int(s, 2);
		rc = 0;
	}
	sqlite3_reset(s);
	return rc;
}

static int set_i64(struct store *st, const char *sql, int64_t v)
{
	sqlite3_stmt *s = store_prepare(st, sql);

	if (s == NULL)
		return -1;
	sqlite3_bind_int64(s, 1, v);
	return store_step_done(s);
}

int store_cluster_set_pulled(struct store *st, int64_t seq)
{
	return set_i64(st, SQL_SET_PULLED, seq);
}

int store_cluster_set_joined(struct store *st)
{
	return store_run(st, SQL_SET_JOINED);
}

static int one_i64(struct store *st, const char *sql, int64_t *out)
{
	sqlite3_stmt *s = store_prepare(st, sql);
	int rc = -1;

	if (s == NULL)
		return -1;
	if (sqlite3_step(s) == SQLITE_ROW) {
		*out = sqlite3_column_int64(s, 0);
		rc = 0;
	}
	sqlite3_reset(s);
	return rc;
}

int store_cluster_outbox_count(struct store *st, int64_t *n)
{
	return one_i64(st, SQL_OUTBOX_COUNT, n);
}

int store_cluster_outbox_last(struct store *st, int64_t *seq)
{
	return one_i64(st, SQL_OUTBOX_LAST, seq);
}

int store_cluster_enqueue_all(struct store *st)
{
	size_t t;

	if (meta_load(st->db) < 0 || store_begin(st) < 0)
		return -1;
	for (t = 0; t < NSHARED; t++) {
		sqlite3_stmt *all = store_prepare(st, meta[t].sql_all);
		int rc;

		if (all == NULL)
			goto fail;
		while ((rc = sqlite3_step(all)) == SQLITE_ROW) {
			sqlite3_stmt *ins = store_prepare(st, SQL_OUTBOX_ADD);

			if (ins == NULL) {
				sqlite3_reset(all);
				goto fail;
			}
			store_bind_text(ins, 1, shared[t].name);
			store_bind_text(ins, 2, store_col_text(all, 0));
			if (store_step_done(ins) < 0) {
				sqlite3_reset(all);
				goto fail;
			}
		}
		sqlite3_reset(all);
		if (rc != SQLITE_DONE)
			goto fail;
	}
	return store_commit(st);
fail:
	store_rollback(st);
	return -1;
}

void store_cluster_batch_free(struct store_cluster_batch *b)
{
	size_t i;

	for (i = 0; i < b->n; i++) {
		free(b->v[i].tbl);
		free(b->v[i].rid);
		free(b->v[i].body);
		free(b->v[i].qid);
	}
	free(b->v);
	memset(b, 0, sizeof(*b));
}

/* The row as it is now: its JSON, or NULL when it is gone. */
static int read_row(struct store *st, int t, struct store_cluster_change *c)
{
	sqlite3_stmt *s = store_prepare(st, meta[t].sql_read);
	int rc;

	if (s == NULL)
		return -1;
	store_bind_text(s, 1, c->rid);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW)
		c->body = xstrdup(store_col_text(s, 0));
	sqlite3_reset(s);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return -1;
	if (c->body != NULL && strcmp(c->tbl, "quarantine") == 0) {
		s = store_prepare(st, SQL_Q_QID);
		if (s == NULL)
			return -1;
		store_bind_text(s, 1, c->rid);
		if (sqlite3_step(s) == SQLITE_ROW && store_col_text(s, 0) != NULL)
			c->qid = xstrdup(store_col_text(s, 0));
		sqlite3_reset(s);
	}
	return 0;
}

int store_cluster_outbox_read(struct store *st, size_t max, struct store_cluster_batch *b)
{
	sqlite3_stmt *s;
	size_t i, j;
	int rc;

	memset(b, 0, sizeof(*b));
	if (meta_load(st->db) < 0)
		return -1;
	s = store_prepare(st, SQL_OUTBOX_READ);
	if (s == NULL)
		return -1;
	/* One read transaction: every row as of one moment. */
	if (store_run(st, SQL_READ_BEGIN) < 0)
		return -1;
	sqlite3_bind_int64(s, 1, (sqlite3_int64)max);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		const char *tbl = store_col_text(s, 1);
		const char *rid = store_col_text(s, 2);

		b->last_seq = sqlite3_column_int64(s, 0);
		if (tbl == NULL || rid == NULL || table_index(tbl) < 0)
			continue; /* a table this binary no longer shares */
		for (j = 0; j < b->n; j++)
			if (strcmp(b->v[j].tbl, tbl) == 0 && strcmp(b->v[j].rid, rid) == 0)
				break;
		if (j < b->n)
			continue; /* the same row again: one push of its latest state */
		b->v = xrealloc(b->v, (b->n + 1) * sizeof(*b->v));
		memset(&b->v[b->n], 0, sizeof(b->v[b->n]));
		b->v[b->n].tbl = xstrdup(tbl);
		b->v[b->n].rid = xstrdup(rid);
		b->n++;
	}
	sqlite3_reset(s);
	if (rc != SQLITE_DONE)
		goto fail;
	for (i = 0; i < b->n; i++)
		if (read_row(st, table_index(b->v[i].tbl), &b->v[i]) < 0)
			goto fail;
	store_run(st, SQL_READ_END);
	return 0;
fail:
	store_run(st, SQL_READ_ABORT);
	store_cluster_batch_free(b);
	return -1;
}

int store_cluster_outbox_done(struct store *st, int64_t last_seq)
{
	int rc;

	if (store_begin(st) < 0)
		return -1;
	rc = set_i64(st, SQL_OUTBOX_DONE, last_seq);
	if (rc < 0) {
		store_rollback(st);
		return -1;
	}
	return store_commit(st);
}

/* ---- apply ---- */

int store_cluster_apply(struct store *st, const char *tbl, const char *rid, const char *body,
			char *gone_qid, char *err, size_t errsz)
{
	int t = table_index(tbl);
	sqlite3_stmt *s;
	int rc;

	gone_qid[0] = '\0';
	if (t < 0) {
		snprintf(err, errsz, "table %s is not shared by this node", tbl);
		return -1;
	}
	if (meta_load(st->db) < 0) {
		snprintf(err, errsz, "cannot read the shared tables' columns");
		return -1;
	}
	if (body == NULL) {
		if (strcmp(tbl, "quarantine") == 0) {
			s = store_prepare(st, SQL_Q_QID);
			if (s == NULL)
				goto fail;
			store_bind_text(s, 1, rid);
			if (sqlite3_step(s) == SQLITE_ROW && store_col_text(s, 0) != NULL)
				strlcpy_s(gone_qid, store_col_text(s, 0), 64);
			sqlite3_reset(s);
		}
		s = store_prepare(st, meta[t].sql_delete);
		if (s == NULL)
			goto fail;
		store_bind_text(s, 1, rid);
		if (store_step_done(s) < 0)
			goto fail;
		return 0;
	}
	s = store_prepare(st, meta[t].sql_apply);
	if (s == NULL)
		goto fail;
	store_bind_text(s, 1, body);
	rc = sqlite3_step(s);
	sqlite3_reset(s);
	if (rc == SQLITE_DONE)
		return 0;
	/* Another UNIQUE constraint (the same list entry added on two nodes at
	 * once): the cluster's row wins over the local one. */
	if (sqlite3_extended_errcode(st->db) != SQLITE_CONSTRAINT_UNIQUE)
		goto fail;
	s = store_prepare(st, meta[t].sql_replace);
	if (s == NULL)
		goto fail;
	store_bind_text(s, 1, body);
	if (store_step_done(s) < 0)
		goto fail;
	return 0;
fail:
	snprintf(err, errsz, "%s %s: %s", tbl, rid, sqlite3_errmsg(st->db));
	return -1;
}

int store_cluster_quarantine_left(struct store *st, const char *qid, int *left)
{
	sqlite3_stmt *s = store_prepare(st, SQL_Q_LEFT);
	int rc = -1;

	if (s == NULL)
		return -1;
	store_bind_text(s, 1, qid);
	if (sqlite3_step(s) == SQLITE_ROW) {
		*left = sqlite3_column_int(s, 0);
		rc = 0;
	}
	sqlite3_reset(s);
	return rc;
}
