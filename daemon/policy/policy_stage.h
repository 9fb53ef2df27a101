/*
 * policy_stage: what the engine (policy.c) shares with the stage files
 * (policy_connect.c, policy_helo.c, policy_mail.c, policy_rcpt.c,
 * policy_data.c, policy_account.c): the engine and session structures,
 * the check table type, the stage runner and the helpers every check
 * uses.  Not for anyone outside daemon/policy/.
 *
 * A check is a function of (session facts, snapshot, step arguments) that
 * returns a verdict; a check that starts DNS queries or a timer returns
 * PENDING and is called again, at the same position, once every answer is
 * in, so it looks at its own state first and never counts anything twice.
 */
#ifndef MOAT_POLICY_STAGE_H
#define MOAT_POLICY_STAGE_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "../dns/dns.h"
#include "../mime/mime.h"
#include "policy_internal.h"

#define SESS_BUCKETS 4096
#define CLIENT_BUCKETS 4096
#define MAX_PTR_NAMES 3
#define MAX_TAGS 8
#define HARVEST_RING_MAX 1000
#define FROM_HDR_MAX (32 * 1024)  /* header section kept for the From: binding */

struct account_engine;
struct conf;
struct store;
struct worker;

struct client_rec {
	struct client_rec *next;
	uint8_t ip[16];
	int sessions;
	int64_t win_start;      /* connection rate: current 60 s bucket */
	int64_t cur, prev;
	int64_t *ring;          /* unknown-recipient times, oldest at head */
	size_t rlen, rcap, rhead;
	int64_t last_ms;
};

struct content_job;

struct stat_delta {
	char name[128];
	int zone;
	int64_t count, queries, hits, tempfails, last_hit;
};

struct policy {
	struct event_base *base;
	char *db_path;
	char hostname[256];
	int64_t max_sessions;
	policy_done_cb done;
	void *done_arg;
	struct dns *dns;
	int warned_no_dns;
	struct policy_snap *cur;
	const struct conf *conf;          /* with the account defence; else NULL */
	struct account_engine *accounts;  /* NULL: AUTH not offered */
	struct cluster_redis *redis;      /* cluster rate limits; NULL: local only */

	/* The snapshot watcher (policy.c): a worker whose poll jobs a loop
	 * timer submits, one at a time. */
	struct worker *watcher;
	struct event *poll_ev;           /* loop: submits the next poll */
	int stopping;                    /* loop: policy_free() has begun */
	struct stat_delta *stats;        /* loop: not yet handed to a poll */
	size_t nstats, stats_cap;
	struct stat_delta *cstats;       /* loop: DNSBL deltas not yet sent to Redis */
	size_t ncstats, cstats_cap;
	struct store *watch_st;          /* watcher thread only */
	int watch_tried;                 /* watcher thread only */
	int64_t last_gen;                /* watcher thread only */
	int64_t last_bayes_gen;          /* watcher thread only */
	int64_t bayes_reload_ms;         /* watcher thread only: last reload for it */

	struct event *prune_ev;
	/* The content stage (policy_content.c): its workers, each with its
	 * own connection for rule hit counts (that worker's thread only). */
	struct content_worker {
		struct worker *w;
		struct store *st;
		size_t busy;             /* jobs submitted and not done (loop only) */
	} content[POLICY_MAX_CONTENT_WORKERS];
	size_t ncontent;
	struct content_job *auth_jobs;   /* loop: content jobs waiting for sender auth */
	struct mime_limits mime;
	/* Compiled mailbox rule sets (policy_mailbox.c), shared by the content
	 * workers and the watcher; last_mbox_fp: watcher thread only. */
	struct policy_mbox_cache *mbox;
	int64_t last_mbox_fp[4];
	struct policy_sess *sess[SESS_BUCKETS];
	struct client_rec *clients[CLIENT_BUCKETS];
};

enum step { STEP_NONE, STEP_CONNECT, STEP_HELO, STEP_MAIL, STEP_RCPT, STEP_DATA };
/*
 * The cluster's answer to a rate check (policy_account.c): WAIT while Redis
 * is asked, then the answer until the resumed check takes it (NONE again).
 * DOWN: no answer in time; the local counters decide.
 */
enum crl_state { CRL_NONE, CRL_WAIT, CRL_OK, CRL_LIMIT, CRL_SUSPENDED, CRL_DOWN };
enum astate { A_NONE, A_WAIT, A_DONE };
enum dom_state { DOM_NONE, DOM_PENDING, DOM_OK, DOM_DEAD, DOM_TEMPFAIL };
#define DOM_MEMO_MAX 8  /* recipient-domain verdicts a session remembers */
enum hdr_state { HDR_OFF, HDR_READING, HDR_DONE, HDR_TOOBIG };
enum body_state { BODY_OFF, BODY_HEADER, BODY_TEXT };
#define TX_DOMS_MAX 80           /* recipient domains per transaction the account sees */
#define BODY_HASH_MAX (64 * 1024) /* body octets hashed for identical content */

struct bl_result {
	int hit;
	int tempfail;
	uint32_t code;
};

struct policy_sess {
	struct policy *p;                /* NULL in unit tests */
	struct policy_sess *hnext;
	uint64_t sid;
	char idstr[20];
	struct policy_snap *snap;
	struct client_rec *client;
	struct sockaddr_storage sa;
	uint8_t ip[16];
	char addr[64];
	uint8_t local_ip[16];
	int has_local;
	int nsessions;

	/* Facts later checks may use. */
	int trusted;                     /* on conn_allow */
	int relay_client;                /* on relay_net */
	int relay_exempt;                /* on relay_exempt */
	enum astate rdns;
	enum dns_status ptr_status;
	int ptr_known;
	char ptr_names[MAX_PTR_NAMES][DNS_NAME_MAX + 1];
	int nptr;
	int fcrdns;
	char name[DNS_NAME_MAX + 1];     /* forward-confirmed name or "" */

	enum astate dnsbl;
	struct bl_result *bl;            /* one per snapshot site */

	enum astate helo_dns;
	int helo_found, helo_tempfail, helo_try_aaaa;
	char helo[256];

	enum astate tarpit;
	struct event *timer;

	char tags[MAX_TAGS][200];
	int ntags;

	/* AUTH (policy_account.c): "" until a login succeeded. */
	char user[320];
	char **user_addrs;               /* lower case */
	size_t nuser_addrs;

	/* Cluster rate check: its answer; for CRL_LIMIT which limit refused. */
	enum crl_state crl;
	int crl_client, crl_window;
	int64_t crl_limit;

	/* The transaction's sender (MAIL), lower case; "" for the null sender
	 * or one too long to be on a personal list. */
	char sender[330];

	/* The content stage's answer, until the session takes it. */
	struct policy_content_result *content;

	/*
	 * Recipient domain of an authenticated session (policy_rcpt.c): the
	 * one being looked up and its answer, and the last few verdicts, which
	 * the session's later recipients at those domains share until the
	 * answers' TTL runs out.  dom_state is DOM_PENDING while dom is asked,
	 * then its answer until the resumed check takes it (DOM_NONE again).
	 */
	char dom[256];
	enum dom_state dom_state;
	int dom_why;                     /* enum dns_mail_why of a dead dom */
	uint32_t dom_ttl;
	struct dom_memo {
		char name[256];          /* "" unused */
		enum dom_state state;    /* DOM_OK or DOM_DEAD */
		int why;
		int64_t expires;         /* time_mono_ms() */
	} dom_memo[DOM_MEMO_MAX];
	size_t dom_memo_next;

	/* From: addresses: the header section as it arrives (bounded). */
	char *hdr;
	size_t hdrlen;
	enum hdr_state hdr_state;

	/*
	 * What the account defence learns of an authenticated transaction
	 * (policy_mail.c, policy_rcpt.c, policy_data.c): the distinct recipient
	 * domains accepted (hashes, at most TX_DOMS_MAX), and a hash of the
	 * body (after the header section, its first BODY_HASH_MAX octets and
	 * its length) computed as it arrives.
	 */
	uint32_t tx_doms[TX_DOMS_MAX];
	size_t ntx_doms;
	enum body_state body_state;
	uint32_t body_tail;              /* the last octets, to find the empty line */
	uint64_t body_hash;
	uint64_t body_len;

	/*
	 * delay_reject: a refusal decided at connect [0] or HELO [1] that is
	 * given at RCPT instead (action CONTINUE: none).  A new HELO clears [1].
	 */
	struct policy_verdict delayed[2];

	/* Stage runner. */
	enum step step;
	size_t pos;
	int accepted;                    /* an allow entry fired in this stage */
	int npending;
};

struct step_args {
	const char *helo;
	size_t helolen;
	const char *addr;      /* sender or recipient, recipients lower-cased */
	const char *raw;       /* the recipient as the client wrote it */
	size_t nrcpts;
	int authenticated;
};

typedef enum policy_action (*check_fn)(struct policy_sess *ps, const struct policy_snap *sn,
				       const struct step_args *a, struct policy_verdict *v);

#define CHECK_ALWAYS 0x1  /* runs even after an allow entry accepted the stage */
/*
 * A refusal of this check (connect or HELO stage) waits for RCPT when
 * delay_reject is on.  Resource limits are not delayable: their point is
 * to free the session at once.
 */
#define CHECK_DELAYABLE 0x2

struct check {
	const char *name;
	check_fn fn;
	unsigned flags;
};

/* The answer to one of ps's queries; idx as given to policy_query(). */
typedef void (*policy_answer_fn)(struct policy_sess *ps, const struct dns_result *r, int idx);

/* policy.c: the stage runner (see policy.c) and the shared helpers. */
enum policy_action policy_run_stage(struct policy_sess *ps, enum step step,
				    const struct check *checks, size_t n,
				    const struct step_args *a, struct policy_verdict *v);
void policy_verdict_set(struct policy_verdict *v, enum policy_action a, const char *code,
			const char *check, const struct policy_ref *ref, const char *text);
/* v's text: tmpl with {ip} and {zone} filled in. */
void policy_vtext(struct policy_sess *ps, struct policy_verdict *v, const char *tmpl,
		  const char *zone);
void policy_stat_add(struct policy *p, const char *name, int zone, int64_t count,
		     int64_t queries, int64_t hits, int64_t tempfails, int64_t last_hit);
/* The resolver, or NULL (logged once): DNS checks then pass. */
struct dns *policy_sess_dns(struct policy_sess *ps);
/* Start a query for ps; the stage waits until on() has run for every one. */
void policy_query(struct policy_sess *ps, const char *name, enum dns_type type,
		  policy_answer_fn on, int idx);
void policy_query_ptr(struct policy_sess *ps, policy_answer_fn on);
/* Whether domain receives mail (dns_query_mail()); the stage waits for on(). */
typedef void (*policy_mail_answer_fn)(struct policy_sess *ps, const struct dns_mail_result *r);
void policy_query_mail(struct policy_sess *ps, const char *domain, policy_mail_answer_fn on);
/* The harvest tarpit timer (one per session); the stage waits for it. */
void policy_tarpit_start(struct policy_sess *ps, int64_t ms);
/* Allow and deny matched: which wins is the list pair's precedence setting. */
enum policy_action policy_allow_deny(const struct policy_ref *allow,
				     const struct policy_ref *deny, int allow_wins);

/* Clients (policy.c): connections per minute; unknown recipients per window. */
int64_t policy_client_rate(struct client_rec *c, int64_t now, int add);
size_t policy_harvest_count(struct client_rec *c, int64_t now, int64_t window_ms);
void policy_harvest_add(struct client_rec *c, int64_t now, int64_t window_ms, size_t keep);

/* policy_rcpt.c */
int policy_is_local(const struct policy_snap *sn, const char *addr);

/* policy.c: one asynchronous operation of ps finished (the stage resumes after the last). */
void policy_op_done(struct policy_sess *ps);

/*
 * policy_account.c: the cluster's rate check for ps's login and client
 * address (rcpt 0 messages, 1 recipients).  Returns the state to act on:
 * CRL_WAIT (the check returns PENDING and is called again), or the
 * answer taken (ps->crl is NONE again; for CRL_LIMIT ps->crl_* say which).
 * CRL_DOWN also when the node has no Redis or it is down: decide locally.
 */
enum crl_state policy_cluster_rate(struct policy_sess *ps, int rcpt);
/*
 * The same as the check's verdict: PENDING while Redis is asked, DEFER past
 * a cluster-wide limit, REFUSE for an account suspended in the cluster, else
 * CONTINUE with *rated 1 when Redis counted it (the local windows then count
 * but do not decide) or 0 (the local counters decide).
 */
enum policy_action policy_cluster_rate_verdict(struct policy_sess *ps, int rcpt, int *rated,
					       struct policy_verdict *v);

/* policy_account.c: ps's login may send as address (case-insensitive). */
int policy_sender_ok(const struct policy_sess *ps, const char *address);
int policy_authenticated(const struct policy_sess *ps);
void policy_sess_auth_free(struct policy_sess *ps);

/* policy.c, for the stage files. */
struct policy_sess *policy_sess_find(struct policy *p, uint64_t sid);
void policy_snap_unref(struct policy_snap *sn);
/* policy_content.c: the content workers (n, at least one), started and
 * stopped with the engine. */
int policy_content_init(struct policy *p, int n, char *err, size_t errsz);
void policy_content_fini(struct policy *p);

/* policy_mailbox.c: the cache of compiled mailbox sets (bounded by max_bytes). */
struct policy_mbox_cache;
struct policy_mbox_cache *policy_mbox_cache_new(size_t max_bytes);
void policy_mbox_cache_free(struct policy_mbox_cache *c);
size_t policy_mbox_cache_bytes(struct policy_mbox_cache *c);
/* Watcher: compile again the recently used sets whose generation moved. */
void policy_mbox_precompile(struct policy_mbox_cache *c, struct store *st);

/* One recipient's mailbox verdict (v NULL: no set, or its rules did not run). */
struct policy_mbox_out {
	const struct rules_verdict *v;
	int64_t set_id;
	int64_t rule_id;           /* the deciding rule's row, 0 for none */
};
struct rules_input;
struct policy_mbox_msg;
/*
 * Run each recipient's owner's set (base->rcpts[i], when run[i]) on the
 * message of base; out[i] for each recipient.  Rule hits are counted on st
 * (the worker's connection).  The verdicts live until policy_mbox_msg_free().
 */
struct policy_mbox_msg *policy_mbox_eval(struct policy_mbox_cache *c, struct store *st,
					 const struct policy_snap *sn,
					 const struct rules_input *base, const bool *run,
					 struct policy_mbox_out *out, const char *idstr);
void policy_mbox_msg_free(struct policy_mbox_msg *m);
/*
 * policy_content.c: the delivery edit (queue_rcpt.edit, JSON with sorted
 * keys) of verdict v delivered to folder (NULL: the inbox), with the
 * header forwarded ("X-Moat-Forwarded: ..." or NULL); NULL when nothing
 * changes.  The caller frees it.
 */
char *policy_mbox_edit(const struct rules_verdict *v, const char *folder,
		       const char *forwarded);
/*
 * policy_mailbox.c: compile set id at its current generation (no cache),
 * for work off the mail path (applying a set to quarantined mail).  0 and
 * *rs (NULL when the set has no enabled rule or is gone), or -1 with err.
 */
struct rules_set;
int policy_mbox_compile(struct store *st, int64_t id, struct rules_set **rs, char *err,
			size_t errsz);

#endif
