/*
 * store_pg: see store_pg.h.  The caller (daemon/cluster/cluster_pg.c, the
 * quarantine file fetch) owns the connection and its thread.
 *
 * A lost connection shows as an error from any call; the caller closes and
 * connects again later.  Tombstones (body NULL) stay in moat_row: a node
 * that pulls later must learn of the delete too.
 */
#include "store_pg.h"

#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store_cluster.h"
#include "../util/util.h"

/* Advisory lock keys: "moat" and a number. */
#define LOCK_SCHEMA "1836016500"
#define LOCK_PUSH   "1836016501"
#define LOCK_JOIN   "1836016502"

struct store_pg {
	PGconn *conn;
};

static const char PG_SCHEMA[] =
	"CREATE TABLE IF NOT EXISTS moat_row ("
	" tbl text NOT NULL, rid text NOT NULL, body jsonb NULL, origin int NOT NULL,"
	" seq bigint NOT NULL, PRIMARY KEY (tbl, rid));"
	"CREATE SEQUENCE IF NOT EXISTS moat_row_seq;"
	"CREATE INDEX IF NOT EXISTS moat_row_by_seq ON moat_row (seq);"
	"CREATE INDEX IF NOT EXISTS moat_row_qid ON moat_row ((body->>'qid'))"
	" WHERE tbl = 'quarantine';"
	"CREATE INDEX IF NOT EXISTS moat_row_bayes_created ON moat_row"
	" (((body->>'created')::bigint)) WHERE tbl = 'bayes_event';"
	"CREATE TABLE IF NOT EXISTS moat_blob ("
	" qid text PRIMARY KEY, content bytea NOT NULL, origin int NOT NULL);";
static const char PG_LOCK_SCHEMA[] = "SELECT pg_advisory_xact_lock(" LOCK_SCHEMA ")";
static const char PG_LOCK_PUSH[] = "SELECT pg_advisory_xact_lock(" LOCK_PUSH ")";
static const char PG_JOIN_LOCK[] = "SELECT pg_advisory_lock(" LOCK_JOIN ")";
static const char PG_JOIN_UNLOCK[] = "SELECT pg_advisory_unlock(" LOCK_JOIN ")";
static const char PG_LISTEN[] = "LISTEN moat_row";
static const char PG_NOTIFY[] = "NOTIFY moat_row";
static const char PG_HAS_ROWS[] = "SELECT EXISTS (SELECT 1 FROM moat_row)";
static const char PG_UPSERT[] =
	"INSERT INTO moat_row (tbl, rid, body, origin, seq)"
	" VALUES ($1, $2, $3::jsonb, $4::int, nextval('moat_row_seq'))"
	" ON CONFLICT (tbl, rid) DO UPDATE SET body = excluded.body,"
	" origin = excluded.origin, seq = excluded.seq";
static const char PG_OLD_QID[] =
	"SELECT body->>'qid' FROM moat_row WHERE tbl = 'quarantine' AND rid = $1";
static const char PG_BLOB_HAS[] = "SELECT 1 FROM moat_blob WHERE qid = $1";
static const char PG_BLOB_PUT[] =
	"INSERT INTO moat_blob (qid, content, origin) VALUES ($1, $2, $3::int)"
	" ON CONFLICT (qid) DO NOTHING";
static const char PG_BLOB_DROP[] =
	"DELETE FROM moat_blob WHERE qid = $1 AND NOT EXISTS (SELECT 1 FROM moat_row"
	" WHERE tbl = 'quarantine' AND body IS NOT NULL AND body->>'qid' = $1)";
static const char PG_BLOB_GET[] = "SELECT content FROM moat_blob WHERE qid = $1";
static const char PG_PULL[] =
	"SELECT seq, tbl, rid, body::text FROM moat_row WHERE seq > $1::bigint"
	" AND origin <> $2::int ORDER BY seq LIMIT $3::int";

/* Learning events past their retention (store_bayes.h); a node's own local
 * copies go by store_bayes_event_prune. */
static const char PG_BAYES_PRUNE[] =
	"DELETE FROM moat_row WHERE tbl = 'bayes_event'"
	" AND (body->>'created')::bigint < $1::bigint";

static void pg_err(struct store_pg *pg, const PGresult *r, char *err, size_t errsz)
{
	const char *m = r != NULL ? PQresultErrorMessage(r) : "";

	if (m == NULL || m[0] == '\0')
		m = PQerrorMessage(pg->conn);
	snprintf(err, errsz, "%.*s", (int)strcspn(m, "\n"), m);
}

/* A statement with text parameters; 0 when it did what want says. */
static int exec_p(struct store_pg *pg, const char *sql, int n, const char *const *v,
		  const int *lens, const int *fmts, ExecStatusType want, PGresult **out,
		  char *err, size_t errsz)
{
	PGresult *r = PQexecParams(pg->conn, sql, n, NULL, v, lens, fmts, 0);

	if (r == NULL || PQresultStatus(r) != want) {
		pg_err(pg, r, err, errsz);
		PQclear(r);
		return -1;
	}
	if (out != NULL)
		*out = r;
	else
		PQclear(r);
	return 0;
}

/* A statement without values (PQexec: the schema is several commands). */
static int exec0(struct store_pg *pg, const char *sql, ExecStatusType want, char *err,
		 size_t errsz)
{
	PGresult *r = PQexec(pg->conn, sql);

	if (r == NULL || PQresultStatus(r) != want) {
		pg_err(pg, r, err, errsz);
		PQclear(r);
		return -1;
	}
	PQclear(r);
	return 0;
}

static void rollback(struct store_pg *pg)
{
	PQclear(PQexec(pg->conn, "ROLLBACK"));
}

struct store_pg *store_pg_connect(const char *conninfo, char *err, size_t errsz)
{
	/* Defaults first: what conninfo says wins (expand_dbname). */
	static const char *const keys[] = { "connect_timeout", "keepalives_idle",
					    "keepalives_interval", "keepalives_count",
					    "application_name", "dbname", NULL };
	const char *vals[] = { "5", "10", "3", "3", "moatd", conninfo, NULL };
	struct store_pg *pg = xcalloc(1, sizeof(*pg));

	pg->conn = PQconnectdbParams(keys, vals, 1);
	if (pg->conn == NULL || PQstatus(pg->conn) != CONNECTION_OK) {
		const char *m = pg->conn != NULL ? PQerrorMessage(pg->conn) : "out of memory";

		snprintf(err, errsz, "%.*s", (int)strcspn(m, "\n"), m);
		store_pg_close(pg);
		return NULL;
	}
	/* Three nodes starting at once must not race on CREATE ... IF NOT EXISTS. */
	if (exec0(pg, "BEGIN", PGRES_COMMAND_OK, err, errsz) < 0)
		goto fail;
	if (exec0(pg, PG_LOCK_SCHEMA, PGRES_TUPLES_OK, err, errsz) < 0 ||
	    exec0(pg, PG_SCHEMA, PGRES_COMMAND_OK, err, errsz) < 0 ||
	    exec0(pg, "COMMIT", PGRES_COMMAND_OK, err, errsz) < 0) {
		rollback(pg);
		goto fail;
	}
	return pg;
fail:
	store_pg_close(pg);
	return NULL;
}

void store_pg_close(struct store_pg *pg)
{
	if (pg == NULL)
		return;
	if (pg->conn != NULL)
		PQfinish(pg->conn);
	free(pg);
}

int store_pg_listen(struct store_pg *pg, char *err, size_t errsz)
{
	return exec0(pg, PG_LISTEN, PGRES_COMMAND_OK, err, errsz);
}

int store_pg_socket(struct store_pg *pg)
{
	return PQsocket(pg->conn);
}

int store_pg_notified(struct store_pg *pg, int *got, char *err, size_t errsz)
{
	PGnotify *n;

	*got = 0;
	if (!PQconsumeInput(pg->conn) || PQstatus(pg->conn) != CONNECTION_OK) {
		pg_err(pg, NULL, err, errsz);
		return -1;
	}
	while ((n = PQnotifies(pg->conn)) != NULL) {
		*got = 1;
		PQfreemem(n);
	}
	return 0;
}

int store_pg_has_rows(struct store_pg *pg, int *has, char *err, size_t errsz)
{
	PGresult *r;

	if (exec_p(pg, PG_HAS_ROWS, 0, NULL, NULL, NULL, PGRES_TUPLES_OK, &r, err, errsz) < 0)
		return -1;
	*has = PQntuples(r) == 1 && strcmp(PQgetvalue(r, 0, 0), "t") == 0;
	PQclear(r);
	return 0;
}

int store_pg_bayes_prune(struct store_pg *pg, int64_t before_ms, int64_t *removed, char *err,
			 size_t errsz)
{
	char before[32];
	const char *v[1] = { before };
	PGresult *r;

	*removed = 0;
	snprintf(before, sizeof(before), "%lld", (long long)before_ms);
	if (exec_p(pg, PG_BAYES_PRUNE, 1, v, NULL, NULL, PGRES_COMMAND_OK, &r, err, errsz) < 0)
		return -1;
	*removed = strtoll(PQcmdTuples(r), NULL, 10);
	PQclear(r);
	return 0;
}

int store_pg_join_lock(struct store_pg *pg, int on, char *err, size_t errsz)
{
	return exec0(pg, on ? PG_JOIN_LOCK : PG_JOIN_UNLOCK, PGRES_TUPLES_OK, err, errsz);
}

/* Quarantine content for a new item, when PostgreSQL does not have it yet. */
static int push_blob(struct store_pg *pg, const char *qid, const char *node,
		     store_pg_load_fn load, void *arg, char *err, size_t errsz)
{
	const char *v[3] = { qid, NULL, node };
	int lens[3] = { 0, 0, 0 };
	int fmts[3] = { 0, 1, 0 };
	unsigned char *data = NULL;
	size_t len = 0;
	PGresult *r;
	int has, rc;

	if (exec_p(pg, PG_BLOB_HAS, 1, v, NULL, NULL, PGRES_TUPLES_OK, &r, err, errsz) < 0)
		return -1;
	has = PQntuples(r) > 0;
	PQclear(r);
	if (has)
		return 0;
	rc = load(qid, arg, &data, &len);
	if (rc != 0)
		return rc < 0 ? -1 : 0; /* no file here: a node that has it sends it */
	if (len > (size_t)0x7fffffff) {
		free(data);
		snprintf(err, errsz, "quarantine file %s too large", qid);
		return -1;
	}
	v[1] = (const char *)data;
	lens[1] = (int)len;
	rc = exec_p(pg, PG_BLOB_PUT, 3, v, lens, fmts, PGRES_COMMAND_OK, NULL, err, errsz);
	free(data);
	return rc;
}

int store_pg_push(struct store_pg *pg, int64_t node, const struct store_cluster_batch *b,
		  store_pg_load_fn load, void *arg, char *err, size_t errsz)
{
	char nodes[24];
	size_t i;

	snprintf(nodes, sizeof(nodes), "%lld", (long long)node);
	if (exec0(pg, "BEGIN", PGRES_COMMAND_OK, err, errsz) < 0)
		return -1;
	if (exec0(pg, PG_LOCK_PUSH, PGRES_TUPLES_OK, err, errsz) < 0)
		goto fail;
	for (i = 0; i < b->n; i++) {
		const struct store_cluster_change *c = &b->v[i];
		const char *v[4] = { c->tbl, c->rid, c->body, nodes };
		char *old_qid = NULL;

		if (c->body == NULL && strcmp(c->tbl, "quarantine") == 0) {
			const char *q[1] = { c->rid };
			PGresult *r;

			if (exec_p(pg, PG_OLD_QID, 1, q, NULL, NULL, PGRES_TUPLES_OK, &r,
				   err, errsz) < 0)
				goto fail;
			if (PQntuples(r) == 1 && !PQgetisnull(r, 0, 0))
				old_qid = xstrdup(PQgetvalue(r, 0, 0));
			PQclear(r);
		}
		if (exec_p(pg, PG_UPSERT, 4, v, NULL, NULL, PGRES_COMMAND_OK, NULL, err,
			   errsz) < 0) {
			free(old_qid);
			goto fail;
		}
		if (old_qid != NULL) {
			const char *q[1] = { old_qid };
			int rc = exec_p(pg, PG_BLOB_DROP, 1, q, NULL, NULL, PGRES_COMMAND_OK,
					NULL, err, errsz);

			free(old_qid);
			if (rc < 0)
				goto fail;
		}
		if (c->qid != NULL && push_blob(pg, c->qid, nodes, load, arg, err, errsz) < 0)
			goto fail;
	}
	if (exec0(pg, PG_NOTIFY, PGRES_COMMAND_OK, err, errsz) < 0 ||
	    exec0(pg, "COMMIT", PGRES_COMMAND_OK, err, errsz) < 0)
		goto fail;
	return 0;
fail:
	rollback(pg);
	return -1;
}

int store_pg_pull(struct store_pg *pg, int64_t after, int64_t skip, int max,
		  store_pg_row_fn cb, void *arg, int *n, char *err, size_t errsz)
{
	char a[24], s[24], m[24];
	const char *v[3] = { a, s, m };
	PGresult *r;
	int i, rows;

	*n = 0;
	snprintf(a, sizeof(a), "%lld", (long long)after);
	snprintf(s, sizeof(s), "%lld", (long long)skip);
	snprintf(m, sizeof(m), "%d", max);
	if (exec_p(pg, PG_PULL, 3, v, NULL, NULL, PGRES_TUPLES_OK, &r, err, errsz) < 0)
		return -1;
	rows = PQntuples(r);
	for (i = 0; i < rows; i++) {
		int64_t seq = strtoll(PQgetvalue(r, i, 0), NULL, 10);
		const char *body = PQgetisnull(r, i, 3) ? NULL : PQgetvalue(r, i, 3);

		(*n)++;
		if (cb(seq, PQgetvalue(r, i, 1), PQgetvalue(r, i, 2), body, arg) != 0)
			break;
	}
	PQclear(r);
	return 0;
}

int store_pg_blob_get(struct store_pg *pg, const char *qid, unsigned char **data,
		      size_t *len, char *err, size_t errsz)
{
	PGresult *r = PQexecParams(pg->conn, PG_BLOB_GET, 1, NULL, &qid, NULL, NULL, 1);
	int n;

	if (r == NULL || PQresultStatus(r) != PGRES_TUPLES_OK) {
		pg_err(pg, r, err, errsz);
		PQclear(r);
		return -1;
	}
	if (PQntuples(r) == 0) {
		PQclear(r);
		return 1;
	}
	n = PQgetlength(r, 0, 0);
	*data = xmalloc((size_t)n + 1);
	memcpy(*data, PQgetvalue(r, 0, 0), (size_t)n);
	*len = (size_t)n;
	PQclear(r);
	return 0;
}
