/*
 * store_cluster on a real temporary database: moat_next_id's per-node
 * ranges, the capture triggers and their outbox, the applying connection,
 * and leaving the cluster.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "store/store.h"
#include "store/store_cluster.h"
#include "store/store_internal.h"
#include "tmpdb.h"

#define RANGE ((int64_t)1 << STORE_CLUSTER_ID_BITS)

static void exec_ok(struct tmpdb *d, const char *sql)
{
	char *msg = NULL;

	if (sqlite3_exec(store_db(d->st), sql, NULL, NULL, &msg) != SQLITE_OK)
		fail_msg("%s: %s", sql, msg ? msg : "?");
	sqlite3_free(msg);
}

static int64_t one(struct tmpdb *d, const char *sql)
{
	sqlite3_stmt *s;
	int64_t v = -1;

	if (sqlite3_prepare_v2(store_db(d->st), sql, -1, &s, NULL) != SQLITE_OK)
		fail_msg("%s: %s", sql, sqlite3_errmsg(store_db(d->st)));
	if (sqlite3_step(s) == SQLITE_ROW)
		v = sqlite3_column_int64(s, 0);
	sqlite3_finalize(s);
	return v;
}

static int64_t add_entry(struct tmpdb *d, const char *value)
{
	char sql[300];

	snprintf(sql, sizeof(sql),
		 "INSERT INTO policy_entry (id, list, value, comment, created)"
		 " VALUES (moat_next_id('policy_entry'), 'sender_deny', '%s', '', 0)", value);
	exec_ok(d, sql);
	return sqlite3_last_insert_rowid(store_db(d->st));
}

static void test_next_id_outside_a_cluster_is_max_plus_one(void **state)
{
	struct tmpdb d;
	int64_t before, id;

	(void)state;
	tmpdb_open(&d);
	before = one(&d, "SELECT max(id) FROM policy_entry");
	id = add_entry(&d, "a@x.example");
	if (id != before + 1)
		fail_msg("got id %lld, want %lld", (long long)id, (long long)before + 1);
	assert_int_equal(one(&d, "SELECT count(*) FROM cluster_outbox"), 0);
	tmpdb_close(&d);
}

static void test_next_id_stays_in_the_node_range(void **state)
{
	struct {
		const char *name;
		int64_t node;
		const char *pre;   /* rows of other nodes or of this one, before */
		int64_t want;      /* the next id */
	} cases[] = {
		{ "first id of node 3", 3, NULL, 3 * RANGE + 1 },
		{ "another node's higher ids do not count", 3,
		  "INSERT INTO policy_entry (id, list, value, created)"
		  " VALUES (4 * 1099511627776 + 5, 'sender_deny', 'n4@x.example', 0)",
		  3 * RANGE + 1 },
		{ "after this node's highest", 3,
		  "INSERT INTO policy_entry (id, list, value, created)"
		  " VALUES (3 * 1099511627776 + 10, 'sender_deny', 'n3@x.example', 0)",
		  3 * RANGE + 11 },
		{ "node 1023, the last range", 1023, NULL, 1023 * RANGE + 1 },
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct tmpdb d;
		char err[300];
		int64_t id;

		tmpdb_open(&d);
		if (store_cluster_install(d.st, cases[i].node, 1, err, sizeof(err)) < 0)
			fail_msg("%s: install: %s", cases[i].name, err);
		if (cases[i].pre != NULL)
			exec_ok(&d, cases[i].pre);
		id = add_entry(&d, "new@x.example");
		if (id != cases[i].want)
			fail_msg("%s: got id %lld, want %lld", cases[i].name, (long long)id,
				 (long long)cases[i].want);
		tmpdb_close(&d);
	}
}

static void test_range_is_read_by_other_connections(void **state)
{
	struct tmpdb d;
	struct store *other;
	char err[300];
	sqlite3_stmt *s;
	int64_t id;

	(void)state;
	tmpdb_open(&d);
	if (store_cluster_install(d.st, 7, 1, err, sizeof(err)) < 0)
		fail_msg("install: %s", err);
	other = store_open(d.path, 0, err, sizeof(err));
	assert_non_null(other);
	assert_int_equal(sqlite3_prepare_v2(store_db(other),
					    "INSERT INTO rule (id, position, name, enabled, definition,"
					    " created_at, updated_at) VALUES (moat_next_id('rule'), 0,"
					    " 'r', 1, '{}', 0, 0)", -1, &s, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(s), SQLITE_DONE);
	sqlite3_finalize(s);
	id = sqlite3_last_insert_rowid(store_db(other));
	if (id != 7 * RANGE + 1)
		fail_msg("got id %lld, want %lld", (long long)id, (long long)(7 * RANGE + 1));
	/* A table that is not shared has no range. */
	assert_int_not_equal(sqlite3_exec(store_db(other), "SELECT moat_next_id('queue_rcpt')",
					  NULL, NULL, NULL), SQLITE_OK);
	store_close(other);
	tmpdb_close(&d);
}

static void test_triggers_fill_the_outbox(void **state)
{
	struct tmpdb d;
	struct store_cluster_batch b;
	char err[300];
	char rid[64];
	int64_t id;

	(void)state;
	tmpdb_open(&d);
	if (store_cluster_install(d.st, 2, 1, err, sizeof(err)) < 0)
		fail_msg("install: %s", err);
	id = add_entry(&d, "t@x.example");
	snprintf(rid, sizeof(rid), "[%lld]", (long long)id);
	exec_ok(&d, "UPDATE policy_entry SET comment = 'c' WHERE value = 't@x.example'");
	assert_int_equal(one(&d, "SELECT count(*) FROM cluster_outbox"), 2);
	/* A local counter alone is not a change to share. */
	exec_ok(&d, "INSERT INTO rule (id, position, name, enabled, definition, created_at,"
		    " updated_at) VALUES (moat_next_id('rule'), 0, 'r', 1, '{}', 0, 0)");
	assert_int_equal(one(&d, "SELECT count(*) FROM cluster_outbox"), 3);
	exec_ok(&d, "UPDATE rule SET hits = hits + 1");
	assert_int_equal(one(&d, "SELECT count(*) FROM cluster_outbox"), 3);
	/* Not shared: statistics. */
	exec_ok(&d, "INSERT INTO policy_stat (check_name, day, count) VALUES ('c', 1, 1)");
	assert_int_equal(one(&d, "SELECT count(*) FROM cluster_outbox"), 3);

	/* One change per row, its state now. */
	assert_int_equal(store_cluster_outbox_read(d.st, 100, &b), 0);
	assert_int_equal(b.n, 2);
	assert_string_equal(b.v[0].tbl, "policy_entry");
	assert_string_equal(b.v[0].rid, rid);
	assert_non_null(b.v[0].body);
	assert_non_null(strstr(b.v[0].body, "\"comment\":\"c\""));
	assert_int_equal(b.last_seq, 3);
	store_cluster_batch_free(&b);

	exec_ok(&d, "DELETE FROM policy_entry WHERE value = 't@x.example'");
	assert_int_equal(store_cluster_outbox_read(d.st, 100, &b), 0);
	assert_int_equal(b.n, 2);
	assert_null(b.v[0].body); /* deleted */
	assert_int_equal(store_cluster_outbox_done(d.st, b.last_seq), 0);
	store_cluster_batch_free(&b);
	assert_int_equal(one(&d, "SELECT count(*) FROM cluster_outbox"), 0);
	tmpdb_close(&d);
}

static void test_apply_is_not_captured_and_leave_drops_triggers(void **state)
{
	struct tmpdb d;
	char err[300], gone[64];
	int64_t gen;

	(void)state;
	tmpdb_open(&d);
	if (store_cluster_install(d.st, 2, 1, err, sizeof(err)) < 0)
		fail_msg("install: %s", err);
	gen = one(&d, "SELECT generation FROM policy_meta");
	store_cluster_set_applying(d.st, 1);
	assert_int_equal(store_begin(d.st), 0);
	if (store_cluster_apply(d.st, "policy_entry", "[1099511627781]",
				"{\"id\":1099511627781,\"list\":\"conn_deny\",\"value\":\"192.0.2.1\","
				"\"comment\":\"from node 1\",\"created\":5}", gone, err,
				sizeof(err)) < 0)
		fail_msg("apply: %s", err);
	assert_int_equal(store_commit(d.st), 0);
	store_cluster_set_applying(d.st, 0);
	assert_int_equal(one(&d, "SELECT count(*) FROM policy_entry WHERE id = 1099511627781"
				 " AND value = '192.0.2.1'"), 1);
	assert_int_equal(one(&d, "SELECT count(*) FROM cluster_outbox"), 0);
	/* The schema's own triggers still fire: the policy watcher sees it. */
	assert_true(one(&d, "SELECT generation FROM policy_meta") > gen);

	if (store_cluster_install(d.st, 0, 0, err, sizeof(err)) < 0)
		fail_msg("leave: %s", err);
	add_entry(&d, "after@x.example");
	assert_int_equal(one(&d, "SELECT count(*) FROM cluster_outbox"), 0);
	assert_int_equal(one(&d, "SELECT count(*) FROM sqlite_schema WHERE type = 'trigger'"
				 " AND name LIKE 'cluster_%'"), 0);
	tmpdb_close(&d);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_next_id_outside_a_cluster_is_max_plus_one),
		cmocka_unit_test(test_next_id_stays_in_the_node_range),
		cmocka_unit_test(test_range_is_read_by_other_connections),
		cmocka_unit_test(test_triggers_fill_the_outbox),
		cmocka_unit_test(test_apply_is_not_captured_and_leave_drops_triggers),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
