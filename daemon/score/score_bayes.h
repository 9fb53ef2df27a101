/*
 * score_bayes: the statistical filter — a tokenizer over the decoded view
 * that mime/ produces, a combiner that turns token counts into a spam
 * probability, and learning into the token store (store_bayes).
 *
 * Tokenizing and combining are pure functions: no I/O, no global state, safe
 * on any thread.  A model (struct bayes_model) is an in-memory copy of one
 * model's counts, loaded once and then read-only: several threads may
 * classify against it at once.  Learning (struct bayes_learner) writes
 * through one store connection and belongs to one thread.  None of this may
 * run on the mail loop: the content stage calls it on its worker.
 *
 * docs/score.md describes the tokens, the combiner and why, the store and
 * its bounds.
 */
#ifndef MOAT_SCORE_BAYES_H
#define MOAT_SCORE_BAYES_H

#include <stddef.h>
#include <stdint.h>

struct mime_view;
struct store;

/* Bounds of one message's tokens (docs/score.md, "Bounds"). */
#define BAYES_MAX_FEATURES 20000      /* features made per message, before duplicates go */
#define BAYES_MAX_TEXT (64 * 1024)    /* decoded body text read per message, bytes */
#define BAYES_MAX_HEADER_VALUE 1024   /* bytes of each header value read */
#define BAYES_WORD_MIN 2              /* shorter words are skipped */
#define BAYES_WORD_MAX 40             /* longer ones become "skip:<c><len/10>" */
#define BAYES_WINDOW 5                /* OSB window: a word and its 4 predecessors */
/* What an OSB pair counts in Fisher's method: a word's BAYES_WINDOW-1 pairs
 * together count as one more token (docs/score.md, "Combiner"). */
#define BAYES_PAIR_ESF (1.0 / (BAYES_WINDOW - 1))

/* Verdicts at the default thresholds (SpamBayes' cut-offs for chi-square). */
#define BAYES_HAM_CUTOFF 0.20
#define BAYES_SPAM_CUTOFF 0.90
/* A user's own model is used once it holds this many of each class. */
#define BAYES_USER_MIN_LEARNED 200
/* Expiry: tokens not learned for this many days with at most this count. */
#define BAYES_EXPIRE_DAYS 180
#define BAYES_EXPIRE_MAX_COUNT 1

/* Feature kinds: 0 a single word or header/URL/attachment token, 1..4 an
 * OSB pair of words that far apart. */
#define BAYES_KIND_SINGLE 0

struct bayes_feature {
	uint64_t hash;      /* never 0 */
	uint8_t kind;       /* BAYES_KIND_SINGLE or pair distance 1..4 */
	uint32_t text;      /* with keep_text: offset of its text in bayes_tokens.text */
};

struct bayes_tokens {
	struct bayes_feature *f;   /* sorted by hash, each hash once */
	size_t n;
	size_t made;               /* features made before duplicates went */
	int truncated;             /* BAYES_MAX_FEATURES reached */
	char *text;                /* with keep_text: NUL-separated texts, else NULL */
	size_t text_len, text_cap;
	size_t cap;
};

/* SipHash-2-4 (Aumasson & Bernstein) of p[0..n) under a 16-byte key. */
uint64_t bayes_siphash(const uint8_t key[16], const void *p, size_t n);

/*
 * The features of a message view, hashed under key.  With keep_text each
 * feature's text is kept too (the "why" of a classification).  Never fails;
 * free with bayes_tokens_free.
 */
void bayes_tokenize(const struct mime_view *v, const uint8_t key[16], int keep_text,
		    struct bayes_tokens *out);
void bayes_tokens_free(struct bayes_tokens *t);
/* Text of feature i ("" without keep_text). */
const char *bayes_feature_text(const struct bayes_tokens *t, size_t i);

/*
 * Header fields the tokenizer never reads because they carry a filter's or
 * a mailbox's label, not the sender's content (X-Spam-*, Delivered-To ...):
 * 1 when name is one of them.
 */
int bayes_header_ignored(const char *name);

/* ---- combiner ---------------------------------------------------------- */

enum bayes_combiner {
	BAYES_FISHER = 0,   /* Robinson's f(w) + Fisher's chi-square (SpamBayes) */
	BAYES_GEOMEAN,      /* Robinson's f(w) + geometric means (Robinson 2002) */
	BAYES_OSB,          /* chi-square with a strength per pair distance (rspamd-like) */
};

struct bayes_params {
	enum bayes_combiner combiner;
	double s;           /* strength of the prior x (0.02) */
	double x;           /* prior of an unknown word (0.5) */
	double min_dev;     /* |f - 0.5| below this: token not used (0.375) */
	size_t max_used;    /* at most this many tokens, strongest first (0: all) */
	int max_distance;   /* OSB pairs up to this distance are used (0: single tokens only) */
	double pair_esf;    /* weight of an OSB pair in fisher and osb (BAYES_PAIR_ESF; 1: whole) */
};

void bayes_params_default(struct bayes_params *p);
/* Name of a combiner, and back (-1 when unknown). */
const char *bayes_combiner_name(enum bayes_combiner c);
int bayes_combiner_parse(const char *s, enum bayes_combiner *c);

/* P(X >= x2) for X chi-square with v degrees of freedom, v even and > 0;
 * and its natural logarithm, exact where the probability underflows. */
double bayes_chi2q(double x2, int v);
double bayes_chi2q_ln(double x2, int v);

/* Robinson's f(w) of a token seen in spam of nspam and ham of nham
 * messages, with strength s and prior x. */
double bayes_token_f(int64_t spam, int64_t ham, int64_t nspam, int64_t nham, double s,
		     double x);

/* ---- model: one model's counts in memory --------------------------------- */

struct bayes_model;

struct bayes_model *bayes_model_new(int64_t nspam, int64_t nham);
void bayes_model_free(struct bayes_model *m);
/* Set a token's counts (loading, tests). */
void bayes_model_set(struct bayes_model *m, uint64_t hash, uint32_t spam, uint32_t ham);
int bayes_model_get(const struct bayes_model *m, uint64_t hash, uint32_t *spam,
		    uint32_t *ham);
size_t bayes_model_size(const struct bayes_model *m);
void bayes_model_counts(const struct bayes_model *m, int64_t *nspam, int64_t *nham);

/* A store_bayes_tokens_foreach() callback that sets one token's counts in
 * the model arg (negative counts as 0, larger than 32 bits cut). */
int bayes_model_load_token(uint64_t hash, int64_t spam, int64_t ham, void *model);

/*
 * Load model uid from the store (the global one, 0, when uid's own has
 * fewer than BAYES_USER_MIN_LEARNED of either class; *used_uid says which)
 * and the hash key.  A store with nothing learned yet gives an empty model.
 * 0, or -1 with err.
 */
int bayes_model_load(struct store *st, int64_t uid, struct bayes_model **out,
		     uint8_t key[16], int64_t *used_uid, char *err, size_t errsz);

struct bayes_clue {
	size_t feature;     /* index in the bayes_tokens */
	double f;           /* its f(w) */
	uint32_t spam, ham;
};

#define BAYES_MAX_CLUES 20

struct bayes_result {
	double prob;            /* 0 ham .. 1 spam; 0.5 when nothing decides */
	double evidence;        /* ln(ham tail) - ln(spam tail): > 0 spammy; orders
				   messages whose prob is 0 or 1 in a double */
	const char *verdict;    /* "spam", "ham" or "unsure" at the default cut-offs */
	size_t known;           /* features the model knows */
	size_t used;            /* features that entered the combination */
	struct bayes_clue clues[BAYES_MAX_CLUES]; /* strongest used, strongest first */
	size_t nclues;
};

/* Classify t against m.  A model without both classes gives 0.5. */
void bayes_classify(const struct bayes_model *m, const struct bayes_tokens *t,
		    const struct bayes_params *p, struct bayes_result *r);
/* The combination alone, over given f values (tests); kind NULL: all single
 * tokens, else kind[i] > 0 marks a pair, weighted BAYES_PAIR_ESF. */
double bayes_combine(const double *f, const uint8_t *kind, size_t n,
		     enum bayes_combiner c, double *evidence);

/* ---- learning ------------------------------------------------------------ */

enum bayes_outcome {
	BAYES_LEARNED,      /* new in this class */
	BAYES_ALREADY,      /* already learned as this class: nothing done */
	BAYES_MOVED,        /* was learned as the other class: moved */
	BAYES_FORGOTTEN,    /* forget: removed */
	BAYES_NOT_LEARNED,  /* forget of a message never learned */
};

struct bayes_learner;

/*
 * Learning into model uid through st (a connection of this thread).  The
 * hash key is made at the first learning ever.  Changes are kept in memory
 * and written by bayes_learner_flush in one short transaction, so that the
 * writer lock is never held while messages are read.  NULL with err.
 */
struct bayes_learner *bayes_learner_open(struct store *st, int64_t uid, char *err,
					 size_t errsz);
/*
 * Learn one message (raw octets, an mbox "From " line allowed) as cls 's'
 * or 'h', or forget it with cls 0.  0 with *outcome, or -1 with err.
 */
int bayes_learn(struct bayes_learner *l, const char *buf, size_t len, char cls,
		enum bayes_outcome *outcome, char *err, size_t errsz);
/* Messages waiting in memory (flush at some hundreds). */
size_t bayes_learner_pending(const struct bayes_learner *l);
/* Write what is pending, in one transaction.  0, or -1 with err (what was
 * pending is then dropped, the store unchanged). */
int bayes_learner_flush(struct bayes_learner *l, char *err, size_t errsz);
/* Frees without flushing. */
void bayes_learner_free(struct bayes_learner *l);

/* SHA-256 of a message as learning identifies it (no "From " line, LF line
 * ends, no trailing empty lines). */
void bayes_message_digest(const char *buf, size_t len, uint8_t out[32]);
/* The message without a leading mbox "From " line. */
void bayes_strip_from_line(const char **buf, size_t *len);

/* Expiry of model uid at day today (unix time / 86400).  0 or -1. */
int bayes_expire(struct store *st, int64_t uid, int64_t today, int64_t days,
		 int64_t max_count, int64_t *removed);

#endif
