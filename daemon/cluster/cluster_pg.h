/*
 * cluster_pg: the PostgreSQL side of cluster mode (docs/cluster.md).  One
 * thread with its own SQLite connection and its own libpq connection:
 * it pushes this node's changes to shared tables (cluster_outbox) and
 * applies the other nodes', woken by LISTEN/NOTIFY.  Blocking calls are
 * fine there; the mail loop never waits for it.  While PostgreSQL is
 * unreachable the node works on alone (status DOWN, backlog = rows to
 * push) and the thread reconnects every cluster_retry.
 */
#ifndef MOAT_CLUSTER_PG_H
#define MOAT_CLUSTER_PG_H

#include <stddef.h>

struct conf;
struct cluster_pg;

/* Main, after the database is migrated and the triggers installed. */
struct cluster_pg *cluster_pg_start(const struct conf *conf, const char *db_path,
				    char *err, size_t errsz);
/* Stops and joins the thread; NULL is fine. */
void cluster_pg_stop(struct cluster_pg *c);

/*
 * Make <data_dir>/spool/quarantine/<qid> present before it is read: in a
 * cluster, a message quarantined on another node is fetched from
 * PostgreSQL.  Blocks (HTTP threads, the CLI; never the mail loop).  0 when
 * the file is there (or nothing can be done: the caller meets the missing
 * file as before), -1 when qid is malformed.
 */
int cluster_pg_fetch_quarantine(const char *data_dir, const char *qid);

/* For the CLI: fetch with this conninfo ("" none). */
void cluster_pg_set_conninfo(const char *conninfo);

#endif
