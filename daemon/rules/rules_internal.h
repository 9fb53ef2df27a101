/*
 * rules_internal: the model shared by rules_parse.c (JSON <-> model),
 * rules_compile.c (model -> matcher) and rules_eval.c.  Not for other
 * modules: they see rules.h only.
 */
#ifndef MOAT_RULES_INTERNAL_H
#define MOAT_RULES_INTERNAL_H

#include "rules.h"

#include <hs/hs.h>
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <pthread.h>

enum rules_field {
	RF_SENDER, RF_RECIPIENT, RF_CLIENT_ADDRESS, RF_CLIENT_NAME, RF_HELO, RF_AUTH_USER,
	RF_HEADER, RF_BODY, RF_RAW_BODY, RF_ATTACHMENT_NAME, RF_ATTACHMENT_TYPE, RF_URL_HOST,
	RF_SIZE, RF_RECIPIENT_COUNT, RF_DNSBL, RF_FLAG,
	/* Mailbox rules only: "high", "normal" or "low" from the Importance,
	 * X-Priority and Priority headers; any address in To or Cc. */
	RF_IMPORTANCE, RF_TO_CC,
	/* Both kinds: the message's spam score and one of its named parts
	 * (rules_input.score, score_part_*), compared as decimals. */
	RF_SCORE, RF_SCORE_PART,
	RF_COUNT_
};

enum rules_op {
	RO_CONTAINS, RO_NOT_CONTAINS, RO_IS, RO_IS_NOT, RO_STARTS_WITH, RO_ENDS_WITH,
	RO_MATCHES, RO_NOT_MATCHES, RO_GT, RO_LT, RO_IN_LIST, RO_IN_NETWORK,
	RO_COUNT_
};

enum rules_cond_kind { RC_ALL, RC_ANY, RC_NOT, RC_LEAF };

struct rules_net {
	uint8_t addr[16];   /* IPv4 as ::ffff:a.b.c.d */
	int prefix;         /* 0..128 */
};

struct rules_cond {
	enum rules_cond_kind kind;
	struct rules_cond **kids;   /* all/any: nkids; not: one */
	size_t nkids;
	/* leaf */
	enum rules_field field;
	enum rules_op op;
	char *header;               /* field header: name as given */
	bool sensitive;             /* "case": "sensitive" */
	char *str;                  /* string value (NUL-free) */
	int64_t num;                /* size, recipient_count */
	double dnum;                /* score, score_part */
	char *part;                 /* score_part: the part's name as given */
	struct rules_net *nets;     /* in_network, and client_address is */
	size_t nnets;
	json_t *orig_value;         /* value as given, for export */
};

struct rules_action_def {
	enum rules_action_type type;
	int code;
	char enhanced[16];
	char *text;
	char *subject_prefix;
	char *header;
	char *address;
	char kind[8];               /* quarantine: "spam" or "policy" (the default) */
	char *folder;               /* move, copy */
	char *value;                /* importance: "high", "normal" or "low" */
	double points;              /* score: signed, 0 < |points| <= RULES_POINTS_MAX */
};

/* Deep copy and release of one action (the compiler keeps its own copy). */
void rules_action_copy(struct rules_action_def *dst, const struct rules_action_def *src);
void rules_action_clear(struct rules_action_def *a);

struct rules_rule {
	char *name;
	bool enabled;
	struct rules_cond *when;
	struct rules_cond *except;  /* NULL: none */
	struct rules_action_def action;     /* server rules */
	struct rules_action_def *actions;   /* mailbox rules: 1..RULES_ACTIONS_MAX, in order */
	size_t nactions;
	char *comment;              /* NULL: none */
};

struct rules_def {
	enum rules_kind kind;
	struct rules_rule *rules;
	size_t n;
};

const char *rules_field_name(enum rules_field f);
const char *rules_op_name(enum rules_op o);
bool rules_op_negative(enum rules_op o);

/*
 * Case folding used on both sides of a case-insensitive comparison: ASCII
 * lower-casing when the text is ASCII, else Unicode full case folding
 * (g_utf8_casefold) then NFC.  Invalid UTF-8 is repaired first (U+FFFD).
 * bytes_only: ASCII folding only (raw_body).  Returns a malloc'ed string.
 */
char *rules_fold(const char *s, size_t len, bool bytes_only, size_t *outlen);

int rules_ip_parse(const char *s, uint8_t out[16]);

/* --- the compiled set (rules_compile.c builds, rules_eval.c reads) -------- */

enum rules_atom_kind {
	AK_SCAN,        /* string operator answered by a scan of the field's values */
	AK_EMPTY,       /* 'is ""': a value is empty */
	AK_NUM,         /* size / recipient_count against num */
	AK_NET,         /* client_address against nets */
	AK_FLAG,        /* flag str is set */
	AK_LIST,        /* a value of the field is in list str (caller's callback) */
	AK_SCORE        /* score / score_part (str: the part) against dnum */
};

struct rules_atom {
	uint8_t kind;           /* enum rules_atom_kind */
	uint8_t field;          /* enum rules_field */
	uint8_t op;             /* positive operator (RO_IS, RO_GT ...) */
	bool rcpt;              /* depends on the recipient */
	uint32_t cls;           /* scan class (string fields) */
	const char *str;        /* list or flag name (owned by the set) */
	int64_t num;
	double dnum;
	struct rules_net *nets; /* owned */
	size_t nnets;
};

enum { FORM_RAW, FORM_FOLD };

/*
 * A compiled Vectorscan database, shared between the sets that hold the
 * same pattern list: key is the SHA-256 of that list (kind, patterns,
 * flags, in order), so a recompile of an edited set takes every database
 * whose list did not change from the previous set (rules_compile_reuse).
 * refs is atomic: the sets may be freed from different threads.
 */
struct rules_hsdb {
	hs_database_t *db;
	size_t size;
	unsigned refs;
	unsigned char key[32];
};

/* One chunk of a class's patterns; the pattern id is an index into atom[]. */
struct rules_db {
	struct rules_hsdb *h;
	uint32_t *atom;
	unsigned n;
};

/*
 * Anchored literals without an automaton: is (whole value), starts_with
 * (prefix), ends_with (suffix).  An open-addressed hash table of the
 * literals; a value is probed once for "is", and once per literal length
 * present for prefixes (hash of the value's first L octets, computed
 * incrementally) and suffixes (hash over the octets read backwards).
 * Equal literals of different atoms (case-insensitive values that fold
 * alike) are all found: a probe runs to the first empty slot.
 */
enum { ANCH_IS, ANCH_START, ANCH_END, ANCH_COUNT_ };

struct rules_lent {
	uint64_t hash;
	uint32_t off, len, atom;
};

struct rules_lset {
	struct rules_lent *ent;
	size_t n;
	uint32_t *slot;         /* entry index + 1, 0: empty */
	size_t mask;            /* slots - 1, a power of two minus one */
	char *pool;             /* literal octets */
	uint8_t *haslen;        /* bitmap: a literal of length L exists */
	size_t maxlen;
};

/* FNV-1a of s, read forwards, or backwards for suffixes (the probe extends it octet by octet). */
#define RULES_FNV_BASIS 1469598103934665603ULL
#define RULES_FNV_STEP(h, ch) (((h) ^ (unsigned char)(ch)) * 1099511628211ULL)

static inline uint64_t rules_lset_hash(const char *s, size_t len, bool backwards)
{
	uint64_t h = RULES_FNV_BASIS;
	size_t i;

	for (i = 0; i < len; i++)
		h = RULES_FNV_STEP(h, backwards ? s[len - 1 - i] : s[i]);
	return h;
}

/*
 * "contains" literals of one class and form searched directly, without an
 * automaton: a few literals on a field of short values (not the bodies).
 * Vectorscan pays about 80 us and 1 KB fixed per database, plus about
 * 12 us and up to 0.8 KB a literal; these cost a copy of the literals.
 * Literals of two octets or more are grouped by a 12-bit key of their
 * first two octets (sorted by key, a bitmap says which keys exist): a
 * value is read once, and at each position whose two octets have a key
 * in the bitmap the literals of that key are compared.  One-octet literals
 * come first (n1 of them) with a bitmap of their octets.  A literal found
 * sets its atom, as the SINGLEMATCH literal database would.
 */
#define RULES_DKEY(a, b) ((((unsigned)(unsigned char)(a) << 4) ^ (unsigned char)(b)) & 0xfff)

struct rules_dent {
	uint32_t off, len, atom;
	uint16_t key;
};

struct rules_dlit {
	struct rules_dent *ent;     /* one-octet literals, then the others by key */
	size_t n, n1;
	char *pool;
	uint8_t first[4096 / 8];    /* keys present among the longer literals */
	uint8_t one[256 / 8];       /* octets of the one-octet literals */
};

/*
 * The most "contains" literals of one class and form that are searched
 * directly (struct rules_dlit) instead of compiled into Vectorscan; the
 * bodies always use Vectorscan.  A variable so that the tests can compare
 * both paths (0: always Vectorscan).
 */
#define RULES_DIRECT_LIT_MAX_DEFAULT 128
extern size_t rules_direct_lit_max;

/*
 * A regex Vectorscan refuses runs in PCRE2.  Most of them (look-around,
 * back-references) Vectorscan still takes in prefilter mode, as a pattern
 * that matches wherever the regex does and perhaps elsewhere: that pattern
 * sits with the class's regexes in its raw-form databases (one scan), its
 * match sets bit natoms + cand of the evaluation, and PCRE2 runs only on
 * a value where it matched.  cand is RULES_NO_CAND without a prefilter.
 */
#define RULES_NO_CAND UINT32_MAX

/* Whether regexes in PCRE2 get a prefilter (a variable so that the tests
 * can compare with and without). */
extern bool rules_regex_prefilter;

struct rules_pcre {
	pcre2_code *code;
	uint32_t atom;
	uint32_t cand;
};

/* A field class: one field (one header name for "header"). */
struct rules_class {
	uint8_t field;
	char *hname;                    /* lower-case header name, field header only */
	bool bytes;                     /* raw_body: octets, ASCII folding, no UTF-8 mode */
	bool need_utf8;                 /* a raw-form database has UTF-8 regexes: repair input */
	/* per form: "contains" chunks (hs_compile_lit_multi) unless searched directly
	 * (dlit), then regex chunks (hs_compile_multi) */
	struct rules_db *db[2];
	size_t ndb[2];
	struct rules_dlit dlit[2];      /* "contains" searched directly, per form (n 0: none) */
	struct rules_lset anch[ANCH_COUNT_][2];  /* is / starts_with / ends_with, per form */
	struct rules_pcre *pcre;        /* regexes Vectorscan refuses */
	size_t npcre;
	uint32_t *empty;                /* AK_EMPTY atoms */
	size_t nempty;
	uint32_t *lists;                /* AK_LIST atoms of a per-recipient class */
	size_t nlists;
};

enum { RN_ALL, RN_ANY, RN_NOT, RN_ATOM };

struct rules_node {
	uint8_t kind;
	uint32_t a;     /* ALL/ANY: first kid in kids[]; NOT: child node; ATOM: atom */
	uint32_t n;     /* ALL/ANY: number of kids */
};

struct rules_crule {
	char *name;
	bool enabled;
	int32_t when;           /* root node, -1 when disabled */
	int32_t except;         /* root node, -1 for none */
	struct rules_action_def action;
	struct rules_action_def *actions;   /* mailbox sets: run in order */
	size_t nactions;
};

struct rules_scratch {
	hs_scratch_t *hs;
	pcre2_match_data *md;
	struct rules_scratch *next;
};

struct rules_set {
	enum rules_kind kind;
	struct rules_crule *rules;
	size_t nrules;
	struct rules_atom *atoms;
	size_t natoms;
	size_t ncand;                   /* prefilters of PCRE2 regexes (struct rules_pcre) */
	struct rules_node *nodes;
	size_t nnodes;
	uint32_t *kids;
	size_t nkids;
	struct rules_class *classes;
	size_t nclasses;
	int32_t field_cls[RF_COUNT_];   /* class of a non-header string field, -1 none */
	uint32_t *hdr_cls;              /* header classes sorted by hname */
	size_t nhdr;
	uint32_t *direct;               /* AK_NUM/NET/FLAG atoms, computed up front */
	size_t ndirect;
	uint32_t *rcpt_atoms;           /* atoms that depend on the recipient */
	size_t nrcpt_atoms;
	/* rules_rcpt_class(), which the loop calls at every RCPT: computed once. */
	bool class_on;                  /* a refuse/defer rule and recipient atoms */
	uint32_t *class_atoms;          /* rcpt_atoms[] (in order) up to the last refuse/defer */
	size_t nclass_atoms;
	/* rules_eval() walks only the rules some set atom can make true, and
	 * those it cannot tell (rules_trigger_prepare()). */
	uint32_t *trig_off;             /* natoms + 1 offsets into trig_rules */
	uint32_t *trig_rules;           /* per atom, the rules it may trigger, ascending */
	uint64_t *always;               /* (nrules + 63) / 64 + 1 words: rules walked always */
	pcre2_match_context *mctx;
	size_t mem;
	unsigned built, reused;         /* Vectorscan databases compiled / taken from the previous set */
	unsigned char (*accepted)[32];  /* regexes Vectorscan accepts: SHA-256 of flags + text, sorted */
	size_t naccepted;
	pthread_mutex_t lock;           /* guards pool */
	struct rules_scratch *pool;
};

/* Words of an evaluation's bit set: the atoms, then the prefilter candidates. */
#define RULES_EVAL_WORDS(rs) (((rs)->natoms + (rs)->ncand + 63) / 64 + 1)

/* rules_compile(): what rules_rcpt_class() needs of a finished set (class_*). */
void rules_rcpt_class_prepare(struct rules_set *rs);
/* rules_compile(): the trigger index of a finished set (trig_*, always). */
void rules_trigger_prepare(struct rules_set *rs);
/* Walk every rule, not only the candidates (a variable so that the tests
 * can compare both walks). */
extern bool rules_walk_all;

#endif
