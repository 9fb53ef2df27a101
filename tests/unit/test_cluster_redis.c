/*
 * Unit tests for the pure parts of cluster_redis: the "host:port" parser
 * (bad input first-class) and the reading of the rate script's reply,
 * built as hiredis builds replies.  Failures say got/want.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <hiredis/hiredis.h>

#include "cluster/cluster_redis.h"

static void test_parse_address(void **state)
{
	static const struct {
		const char *name, *in, *host; /* host NULL: refused */
		int port;
	} cases[] = {
		{ "empty", "", NULL, 0 },
		{ "no port", "127.0.0.1", NULL, 0 },
		{ "empty port", "127.0.0.1:", NULL, 0 },
		{ "port zero", "127.0.0.1:0", NULL, 0 },
		{ "port too big", "127.0.0.1:65536", NULL, 0 },
		{ "port not a number", "127.0.0.1:63x9", NULL, 0 },
		{ "negative port", "127.0.0.1:-1", NULL, 0 },
		{ "no host", ":6379", NULL, 0 },
		{ "empty brackets", "[]:6379", NULL, 0 },
		{ "v4", "127.0.0.1:6379", "127.0.0.1", 6379 },
		{ "name", "redis.example.org:7000", "redis.example.org", 7000 },
		{ "v6 in brackets", "[::1]:6379", "::1", 6379 },
		{ "top port", "h:65535", "h", 65535 },
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char host[256] = "";
		int port = 0;
		int rc = cluster_redis_parse_address(cases[i].in, host, sizeof(host), &port);

		if (cases[i].host == NULL) {
			if (rc != -1)
				fail_msg("%s: got %d (%s:%d), want -1", cases[i].name, rc, host, port);
			continue;
		}
		if (rc != 0 || strcmp(host, cases[i].host) != 0 || port != cases[i].port)
			fail_msg("%s: got %d %s:%d, want 0 %s:%d", cases[i].name, rc, host, port,
				 cases[i].host, cases[i].port);
	}
}

static void test_parse_address_host_too_long(void **state)
{
	char host[8];
	int port;

	(void)state;
	assert_int_equal(cluster_redis_parse_address("redis.example.org:6379", host, sizeof(host),
						     &port), -1);
}

/* An array reply of n integers, as hiredis makes it. */
static redisReply *ints(size_t n, const long long *v)
{
	redisReply *r = calloc(1, sizeof(*r));
	size_t i;

	r->type = REDIS_REPLY_ARRAY;
	r->elements = n;
	r->element = calloc(n ? n : 1, sizeof(*r->element));
	for (i = 0; i < n; i++) {
		r->element[i] = calloc(1, sizeof(**r->element));
		r->element[i]->type = REDIS_REPLY_INTEGER;
		r->element[i]->integer = v[i];
	}
	return r;
}

static void test_rate_result(void **state)
{
	static const struct {
		const char *name;
		size_t n;
		long long v[5];
		int rc;
		enum cluster_rate_res res;
		size_t subj;
		int window;
		long long limit;
	} cases[] = {
		{ "too short", 3, { 0, 0, 0 }, -1, 0, 0, 0, 0 },
		{ "too long", 5, { 0, 0, 0, 0, 0 }, -1, 0, 0, 0, 0 },
		{ "unknown status", 4, { 7, 0, 0, 0 }, -1, 0, 0, 0, 0 },
		{ "window out of range", 4, { 1, 0, 4, 10 }, -1, 0, 0, 0, 0 },
		{ "subject out of range", 4, { 1, -1, 1, 10 }, -1, 0, 0, 0, 0 },
		{ "counted", 4, { 0, 0, 0, 0 }, 0, CLUSTER_RATE_OK, 0, 0, 0 },
		{ "account minute", 4, { 1, 0, 1, 6 }, 0, CLUSTER_RATE_LIMIT, 0, 1, 6 },
		{ "client day", 4, { 1, 1, 3, 5000 }, 0, CLUSTER_RATE_LIMIT, 1, 3, 5000 },
		{ "suspended", 4, { 2, 0, 0, 0 }, 0, CLUSTER_RATE_SUSPENDED, 0, 0, 0 },
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		redisReply *r = ints(cases[i].n, cases[i].v);
		enum cluster_rate_res res = CLUSTER_RATE_OK;
		size_t subj = 0;
		int window = 0;
		int64_t limit = 0;
		int rc = cluster_redis_rate_result(r, &res, &subj, &window, &limit);

		freeReplyObject(r);
		if (rc != cases[i].rc)
			fail_msg("%s: got rc %d, want %d", cases[i].name, rc, cases[i].rc);
		if (rc == 0 && (res != cases[i].res ||
				(res == CLUSTER_RATE_LIMIT &&
				 (subj != cases[i].subj || window != cases[i].window ||
				  limit != cases[i].limit))))
			fail_msg("%s: got %d %zu %d %lld, want %d %zu %d %lld", cases[i].name,
				 (int)res, subj, window, (long long)limit, (int)cases[i].res,
				 cases[i].subj, cases[i].window, cases[i].limit);
	}
}

static void test_rate_result_not_an_array(void **state)
{
	redisReply r;
	enum cluster_rate_res res;
	size_t subj;
	int window;
	int64_t limit;

	(void)state;
	memset(&r, 0, sizeof(r));
	r.type = REDIS_REPLY_STRING;
	assert_int_equal(cluster_redis_rate_result(&r, &res, &subj, &window, &limit), -1);
	assert_int_equal(cluster_redis_rate_result(NULL, &res, &subj, &window, &limit), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_address),
		cmocka_unit_test(test_parse_address_host_too_long),
		cmocka_unit_test(test_rate_result),
		cmocka_unit_test(test_rate_result_not_an_array),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
