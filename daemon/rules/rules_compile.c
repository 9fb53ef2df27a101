/*
 * rules_compile: a rule model becomes an immutable matcher.
 *
 * Every leaf becomes an atom (identical leaves share one); a negative
 * operator is NOT over its positive atom, so "does not contain" is true
 * exactly when no value contains.  Atoms on string fields are grouped by
 * field class (one class per field, one per header name); per class and
 * form (raw, or case-folded with rules_fold):
 *   "contains"   hs_compile_lit_multi, HS_FLAG_SINGLEMATCH, in chunks;
 *                a field other than the bodies with at most
 *                rules_direct_lit_max of them: no database, a direct
 *                search (struct rules_dlit).  A small set's Vectorscan
 *                databases cost more to build (80 us each plus 12 us a
 *                literal) and hold more (86 KB for 100 Subject phrases)
 *                than a search of a short value costs;
 *   "matches"    hs_compile_multi (UTF8, CASELESS unless case-sensitive),
 *                in chunks.  Not UCP: Unicode \w \s \d \W classes cost
 *                Vectorscan seconds and megabytes per pattern (100 patterns
 *                with \W{1,3}: 27 s, 15 MB); classes stay ASCII as in
 *                PCRE2's default, letters and case folding stay Unicode;
 *   is / starts_with / ends_with   hash tables of the literals (struct
 *                rules_lset).  Vectorscan spent 0.5 ms a pattern building
 *                automata for them (1.25 s for 2,500 "is" values) to
 *                answer what a hash probe per literal length answers.
 * Case-insensitive literals are folded here and matched against the folded
 * text; regexes run on the raw text with Vectorscan's caseless mode.
 * Chunks (see db_build) are cut by content and keyed by a hash of their
 * exact pattern list, so rules_compile_reuse() takes every chunk an edit
 * did not change from the previous set instead of compiling it again.
 * Regexes Vectorscan refuses (back-references, look-around, control
 * verbs) run in PCRE2 JIT with match, depth and heap limits.  A
 * database Vectorscan cannot build (a pattern too large ...) is a
 * validation error naming the rule.
 *
 * The result is read-only; rules_eval() only takes scratch from its pool.
 */
#include "rules_internal.h"

#include <glib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../log/log.h"
#include "../util/util.h"

static int jit_failure_logged; /* the JIT fallback is logged once */

bool rules_regex_prefilter = true;

/* Growable arrays used while compiling. */
struct pat_list {
	char **pat;
	size_t *len;
	unsigned *flags;
	unsigned *ids;
	uint32_t *atom;
	unsigned n, cap;
};

struct cclass {
	struct pat_list lit[2], multi[2];   /* multi: prefilters too (atom: cand) */
	struct pat_list anch[ANCH_COUNT_][2];
	struct rules_pcre *pcre;
	size_t npcre, pcap;
	uint32_t *empty;
	size_t nempty, ecap;
	uint32_t *lists;
	size_t nlists, lcap;
};

struct compiler {
	struct rules_set *rs;
	GHashTable *atom_ids;       /* key -> atom index + 1 */
	GHashTable *class_ids;      /* "field\\0hname" -> class index + 1 */
	GHashTable *prev_dbs;       /* key (32 octets) -> struct rules_hsdb of the previous set */
	const struct rules_set *prev;
	size_t acc_cap;
	char **atom_path;           /* where each atom first appeared */
	struct cclass *cc;
	size_t atom_cap, node_cap, kid_cap, class_cap;
	char *err;
	size_t errsz;
};

static void pat_add(struct pat_list *p, char *pat, size_t len, unsigned flags, uint32_t atom)
{
	if (p->n == p->cap) {
		p->cap = p->cap ? p->cap * 2 : 8;
		p->pat = xrealloc(p->pat, p->cap * sizeof(*p->pat));
		p->len = xrealloc(p->len, p->cap * sizeof(*p->len));
		p->flags = xrealloc(p->flags, p->cap * sizeof(*p->flags));
		p->ids = xrealloc(p->ids, p->cap * sizeof(*p->ids));
		p->atom = xrealloc(p->atom, p->cap * sizeof(*p->atom));
	}
	p->pat[p->n] = pat;
	p->len[p->n] = len;
	p->flags[p->n] = flags;
	p->ids[p->n] = p->n;
	p->atom[p->n] = atom;
	p->n++;
}

static void pat_free(struct pat_list *p)
{
	unsigned i;

	for (i = 0; i < p->n; i++)
		g_free(p->pat[i]);
	free(p->pat);
	free(p->len);
	free(p->flags);
	free(p->ids);
	free(p->atom);
}

static void u32_push(uint32_t **a, size_t *n, size_t *cap, uint32_t v)
{
	if (*n == *cap) {
		*cap = *cap ? *cap * 2 : 4;
		*a = xrealloc(*a, *cap * sizeof(**a));
	}
	(*a)[(*n)++] = v;
}

static int cfail(struct compiler *c, const char *path, const char *what, const char *msg)
{
	snprintf(c->err, c->errsz, "%s: %s: %s", path ? path : "rules", what, msg);
	return -1;
}

static uint32_t class_get(struct compiler *c, enum rules_field f, const char *header)
{
	struct rules_set *rs = c->rs;
	char key[128];
	size_t i, hl = header ? strlen(header) : 0;
	gpointer v;
	struct rules_class *k;

	snprintf(key, sizeof(key), "%d:", (int)f);
	for (i = 0; i < hl && strlen(key) + 1 < sizeof(key); i++) {
		size_t kl = strlen(key);

		key[kl] = g_ascii_tolower(header[i]);
		key[kl + 1] = '\0';
	}
	v = g_hash_table_lookup(c->class_ids, key);
	if (v != NULL)
		return (uint32_t)(GPOINTER_TO_SIZE(v) - 1);
	if (rs->nclasses == c->class_cap) {
		c->class_cap = c->class_cap ? c->class_cap * 2 : 8;
		rs->classes = xrealloc(rs->classes, c->class_cap * sizeof(*rs->classes));
		c->cc = xrealloc(c->cc, c->class_cap * sizeof(*c->cc));
	}
	k = &rs->classes[rs->nclasses];
	memset(k, 0, sizeof(*k));
	memset(&c->cc[rs->nclasses], 0, sizeof(c->cc[0]));
	k->field = (uint8_t)f;
	k->bytes = f == RF_RAW_BODY;
	if (f == RF_HEADER)
		k->hname = g_ascii_strdown(header, -1);
	else
		rs->field_cls[f] = (int32_t)rs->nclasses;
	g_hash_table_insert(c->class_ids, g_strdup(key), GSIZE_TO_POINTER(rs->nclasses + 1));
	return (uint32_t)rs->nclasses++;
}

static int key_cmp(const void *a, const void *b)
{
	return memcmp(a, b, 32);
}

/*
 * Does Vectorscan take regex re with flags?  Asking it (hs_expression_info)
 * costs about 0.1 ms a regex, most of a recompile that reuses every
 * database, so the answers of the previous set are kept (key: SHA-256 of
 * flags and text) and each accepted regex is recorded for the next.
 */
static bool hs_accepts_cached(struct compiler *c, const char *re, unsigned flags);

static bool hs_accepts(const char *re, unsigned flags)
{
	hs_expr_info_t *info = NULL;
	hs_compile_error_t *e = NULL;
	hs_error_t rc = hs_expression_info(re, flags, &info, &e);

	if (e != NULL)
		hs_free_compile_error(e);
	free(info);
	return rc == HS_SUCCESS;
}

static bool hs_accepts_cached(struct compiler *c, const char *re, unsigned flags)
{
	struct rules_set *rs = c->rs;
	GChecksum *ck = g_checksum_new(G_CHECKSUM_SHA256);
	unsigned char key[32];
	gsize klen = sizeof(key);
	uint32_t fl = flags;

	g_checksum_update(ck, (const guchar *)&fl, sizeof(fl));
	g_checksum_update(ck, (const guchar *)re, (gssize)strlen(re));
	g_checksum_get_digest(ck, key, &klen);
	g_checksum_free(ck);
	if ((c->prev == NULL || c->prev->naccepted == 0 ||
	     bsearch(key, c->prev->accepted, c->prev->naccepted, 32, key_cmp) == NULL) &&
	    !hs_accepts(re, flags))
		return false;
	if (rs->naccepted == c->acc_cap) {
		c->acc_cap = c->acc_cap ? c->acc_cap * 2 : 16;
		rs->accepted = xrealloc(rs->accepted, c->acc_cap * 32);
	}
	memcpy(rs->accepted[rs->naccepted++], key, 32);
	return true;
}

static int add_pcre(struct compiler *c, struct cclass *cc, const struct rules_cond *l,
		    bool bytes, uint32_t id, unsigned prefilter, const char *path)
{
	uint32_t opts = l->sensitive ? 0 : PCRE2_CASELESS;
	pcre2_code *code;
	int ec;
	PCRE2_SIZE eo;
	PCRE2_UCHAR msg[160];

	if (!bytes)
		opts |= PCRE2_UTF | PCRE2_MATCH_INVALID_UTF;
	code = pcre2_compile((PCRE2_SPTR)l->str, strlen(l->str), opts, &ec, &eo, NULL);
	if (code == NULL) {
		pcre2_get_error_message(ec, msg, sizeof(msg));
		return cfail(c, path, "invalid regular expression", (const char *)msg);
	}
	/*
	 * JIT failure (no writable and executable memory, as under systemd's
	 * MemoryDenyWriteExecute=) still leaves the interpreter, which
	 * pcre2_match() uses with the same match context and so the same
	 * limits.  Said once per process: it is a property of the host.
	 */
	ec = pcre2_jit_compile(code, PCRE2_JIT_COMPLETE);
	if (ec != 0 && !__atomic_exchange_n(&jit_failure_logged, 1, __ATOMIC_RELAXED)) {
		pcre2_get_error_message(ec, msg, sizeof(msg));
		log_warn(NULL, "rules", "pcre2 jit unavailable error=\"%s\"; regular expressions"
			 " use the interpreter", (const char *)msg);
	}
	if (cc->npcre == cc->pcap) {
		cc->pcap = cc->pcap ? cc->pcap * 2 : 4;
		cc->pcre = xrealloc(cc->pcre, cc->pcap * sizeof(*cc->pcre));
	}
	cc->pcre[cc->npcre].code = code;
	cc->pcre[cc->npcre].atom = id;
	cc->pcre[cc->npcre].cand = RULES_NO_CAND;
	if (prefilter != 0) {
		cc->pcre[cc->npcre].cand = (uint32_t)c->rs->ncand++;
		pat_add(&cc->multi[FORM_RAW], g_strdup(l->str), strlen(l->str), prefilter,
			cc->pcre[cc->npcre].cand);
	}
	cc->npcre++;
	return 0;
}

/* The string operators: place the atom in its class's databases. */
static int scan_atom(struct compiler *c, struct rules_atom *a, const struct rules_cond *l,
		     uint32_t id, const char *path)
{
	struct rules_class *k = &c->rs->classes[a->cls];
	struct cclass *cc = &c->cc[a->cls];
	int form = (l->sensitive) ? FORM_RAW : FORM_FOLD;
	size_t len = strlen(l->str), flen;
	char *lit;
	unsigned fl;

	if (a->op == RO_MATCHES) {
		fl = HS_FLAG_SINGLEMATCH | HS_FLAG_ALLOWEMPTY;
		if (!k->bytes)
			fl |= HS_FLAG_UTF8;
		if (!l->sensitive)
			fl |= HS_FLAG_CASELESS;
		if (!hs_accepts_cached(c, l->str, fl)) {
			unsigned pre = fl | HS_FLAG_PREFILTER;

			if (!rules_regex_prefilter || !hs_accepts_cached(c, l->str, pre))
				pre = 0;
			else if (!k->bytes)
				k->need_utf8 = true;
			return add_pcre(c, cc, l, k->bytes, id, pre, path);
		}
		if (!k->bytes)
			k->need_utf8 = true;
		pat_add(&cc->multi[FORM_RAW], g_strdup(l->str), len, fl, id);
		return 0;
	}
	if (len == 0) {
		a->kind = AK_EMPTY;
		u32_push(&cc->empty, &cc->nempty, &cc->ecap, id);
		return 0;
	}
	if (form == FORM_FOLD) {
		char *f = rules_fold(l->str, len, k->bytes, &flen);

		lit = g_strndup(f, flen);
		g_free(f);
	} else {
		lit = g_strndup(l->str, len);
		flen = len;
	}
	if (a->op == RO_CONTAINS) {
		pat_add(&cc->lit[form], lit, flen, HS_FLAG_SINGLEMATCH, id);
		return 0;
	}
	pat_add(&cc->anch[a->op == RO_IS ? ANCH_IS : a->op == RO_STARTS_WITH ? ANCH_START : ANCH_END]
			 [form], lit, flen, 0, id);
	return 0;
}

static int atom_get(struct compiler *c, const struct rules_cond *l, const char *path,
		    uint32_t *out)
{
	struct rules_set *rs = c->rs;
	enum rules_op op = l->op;
	struct rules_atom *a;
	GString *key;
	gpointer v;
	uint32_t id;
	size_t i;

	if (op == RO_NOT_CONTAINS)
		op = RO_CONTAINS;
	else if (op == RO_IS_NOT)
		op = RO_IS;
	else if (op == RO_NOT_MATCHES)
		op = RO_MATCHES;

	key = g_string_new(NULL);
	g_string_append_printf(key, "%d|%d|%d|%lld|%a|", (int)l->field, (int)op, (int)l->sensitive,
			       (long long)l->num, l->dnum);
	for (i = 0; l->header != NULL && l->header[i] != '\0'; i++)
		g_string_append_c(key, g_ascii_tolower(l->header[i]));
	g_string_append_c(key, '|');
	/* part names are matched without regard to case, as header names are */
	for (i = 0; l->part != NULL && l->part[i] != '\0'; i++)
		g_string_append_c(key, g_ascii_tolower(l->part[i]));
	g_string_append_c(key, '|');
	for (i = 0; i < l->nnets; i++) {
		size_t j;

		for (j = 0; j < 16; j++)
			g_string_append_printf(key, "%02x", l->nets[i].addr[j]);
		g_string_append_printf(key, "/%d,", l->nets[i].prefix);
	}
	if (l->str != NULL)
		g_string_append(key, l->str);
	v = g_hash_table_lookup(c->atom_ids, key->str);
	if (v != NULL) {
		g_string_free(key, TRUE);
		*out = (uint32_t)(GPOINTER_TO_SIZE(v) - 1);
		return 0;
	}
	if (rs->natoms == c->atom_cap) {
		c->atom_cap = c->atom_cap ? c->atom_cap * 2 : 64;
		rs->atoms = xrealloc(rs->atoms, c->atom_cap * sizeof(*rs->atoms));
		c->atom_path = xrealloc(c->atom_path, c->atom_cap * sizeof(*c->atom_path));
	}
	id = (uint32_t)rs->natoms++;
	g_hash_table_insert(c->atom_ids, g_string_free(key, FALSE), GSIZE_TO_POINTER(id + 1));
	a = &rs->atoms[id];
	memset(a, 0, sizeof(*a));
	c->atom_path[id] = xstrdup(path);
	a->field = (uint8_t)l->field;
	a->op = (uint8_t)op;
	a->rcpt = l->field == RF_RECIPIENT;
	a->num = l->num;
	a->dnum = l->dnum;
	*out = id;
	switch (l->field) {
	case RF_SIZE:
	case RF_RECIPIENT_COUNT:
		a->kind = AK_NUM;
		break;
	case RF_SCORE:
	case RF_SCORE_PART:
		/* message-wide, answered up front: never a recipient atom, so
		 * it does not change rules_rcpt_class() */
		a->kind = AK_SCORE;
		a->str = l->part != NULL ? xstrdup(l->part) : NULL;
		break;
	case RF_FLAG:
		a->kind = AK_FLAG;
		a->str = xstrdup(l->str);
		break;
	case RF_CLIENT_ADDRESS:
		if (op == RO_IN_LIST) {
			a->kind = AK_LIST;
			a->str = xstrdup(l->str);
			break;
		}
		a->kind = AK_NET;
		a->nnets = l->nnets;
		a->nets = xcalloc(l->nnets, sizeof(*a->nets));
		memcpy(a->nets, l->nets, l->nnets * sizeof(*a->nets));
		break;
	default:
		a->cls = class_get(c, l->field, l->header);
		if (op == RO_IN_LIST) {
			a->kind = AK_LIST;
			a->str = xstrdup(l->str);
			if (a->rcpt)
				u32_push(&c->cc[a->cls].lists, &c->cc[a->cls].nlists,
					 &c->cc[a->cls].lcap, id);
			break;
		}
		a->kind = AK_SCAN;
		return scan_atom(c, a, l, id, path);
	}
	return 0;
}

static uint32_t node_new(struct compiler *c, uint8_t kind, uint32_t a, uint32_t n)
{
	struct rules_set *rs = c->rs;

	if (rs->nnodes == c->node_cap) {
		c->node_cap = c->node_cap ? c->node_cap * 2 : 64;
		rs->nodes = xrealloc(rs->nodes, c->node_cap * sizeof(*rs->nodes));
	}
	rs->nodes[rs->nnodes].kind = kind;
	rs->nodes[rs->nnodes].a = a;
	rs->nodes[rs->nnodes].n = n;
	return (uint32_t)rs->nnodes++;
}

static int cond_compile(struct compiler *c, const struct rules_cond *cd, const char *path,
			uint32_t *out)
{
	struct rules_set *rs = c->rs;
	char p[512];
	uint32_t id, first, *tmp;
	size_t i;

	switch (cd->kind) {
	case RC_LEAF:
		snprintf(p, sizeof(p), "%s.value", path);
		if (atom_get(c, cd, p, &id) < 0)
			return -1;
		*out = node_new(c, RN_ATOM, id, 0);
		if (rules_op_negative(cd->op))
			*out = node_new(c, RN_NOT, *out, 0);
		return 0;
	case RC_NOT:
		snprintf(p, sizeof(p), "%s.not", path);
		if (cond_compile(c, cd->kids[0], p, &id) < 0)
			return -1;
		*out = node_new(c, RN_NOT, id, 0);
		return 0;
	case RC_ALL:
	case RC_ANY:
		/* kids first (they may append their own kids), then one run in kids[] */
		tmp = xcalloc(cd->nkids, sizeof(*tmp));
		for (i = 0; i < cd->nkids; i++) {
			snprintf(p, sizeof(p), "%s.%s[%zu]", path, cd->kind == RC_ALL ? "all" : "any",
				 i);
			if (cond_compile(c, cd->kids[i], p, &tmp[i]) < 0) {
				free(tmp);
				return -1;
			}
		}
		if (rs->nkids + cd->nkids > c->kid_cap) {
			while (rs->nkids + cd->nkids > c->kid_cap)
				c->kid_cap = c->kid_cap ? c->kid_cap * 2 : 64;
			rs->kids = xrealloc(rs->kids, c->kid_cap * sizeof(*rs->kids));
		}
		first = (uint32_t)rs->nkids;
		memcpy(rs->kids + rs->nkids, tmp, cd->nkids * sizeof(*tmp));
		rs->nkids += cd->nkids;
		free(tmp);
		*out = node_new(c, cd->kind == RC_ALL ? RN_ALL : RN_ANY, first, (uint32_t)cd->nkids);
		return 0;
	}
	return -1;
}

/*
 * Chunks.  A class's pattern list is cut where a pattern's own hash says so
 * (content-defined, as rsync and backup tools cut files): a boundary after
 * a pattern whose hash is 0 modulo the average, once the chunk holds the
 * minimum, or at the maximum.  An edit that inserts, removes or changes one
 * pattern then changes one chunk (two when it moves a boundary) and every
 * other chunk keeps its exact list, hence its key, and is reused.  Regex
 * chunks are small because hs_compile_multi costs about 1 ms a regex;
 * literal chunks are large because hs_compile_lit_multi is some 50 times
 * cheaper a pattern and each chunk is one more scan of the value.  The
 * body is the long value: its regex chunks are four times larger, fewer
 * scans of 5 to 50 KB for a slower rebuild of the chunk an edit touches.
 */
#define CHUNK_RE_MIN 16
#define CHUNK_RE_AVG 32
#define CHUNK_RE_MAX 128
#define CHUNK_BODY_SCALE 4
#define CHUNK_LIT_MIN 512
#define CHUNK_LIT_AVG 1024
#define CHUNK_LIT_MAX 4096

static uint64_t fnv(const void *p, size_t len, uint64_t h)
{
	const unsigned char *s = p;
	size_t i;

	for (i = 0; i < len; i++) {
		h ^= s[i];
		h *= 1099511628211ULL;
	}
	return h;
}

static void db_key(const struct pat_list *p, unsigned from, unsigned n, bool literal,
		   unsigned char key[32])
{
	GChecksum *ck = g_checksum_new(G_CHECKSUM_SHA256);
	gsize klen = 32;
	unsigned i;
	uint8_t kind = literal ? 1 : 2;

	g_checksum_update(ck, &kind, 1);
	for (i = from; i < from + n; i++) {
		uint64_t len = p->len[i];
		uint32_t fl = p->flags[i];

		g_checksum_update(ck, (const guchar *)&len, sizeof(len));
		g_checksum_update(ck, (const guchar *)p->pat[i], p->len[i]);
		g_checksum_update(ck, (const guchar *)&fl, sizeof(fl));
	}
	g_checksum_get_digest(ck, key, &klen);
	g_checksum_free(ck);
}

static void hsdb_unref(struct rules_hsdb *h)
{
	if (h == NULL || __atomic_sub_fetch(&h->refs, 1, __ATOMIC_ACQ_REL) > 0)
		return;
	hs_free_database(h->db);
	free(h);
}

/* Patterns [from, from + n) of p as one database, taken from the previous set when it has it. */
static int chunk_build(struct compiler *c, struct pat_list *p, unsigned from, unsigned n,
		       bool literal, struct rules_db *out, const char *cname)
{
	hs_compile_error_t *e = NULL;
	struct rules_hsdb *h;
	unsigned char key[32];
	unsigned i, *ids;
	hs_error_t rc;

	db_key(p, from, n, literal, key);
	h = c->prev_dbs != NULL ? g_hash_table_lookup(c->prev_dbs, key) : NULL;
	if (h != NULL) {
		__atomic_add_fetch(&h->refs, 1, __ATOMIC_ACQ_REL);
		c->rs->reused++;
	} else {
		hs_database_t *db = NULL;

		ids = xcalloc(n, sizeof(*ids));
		for (i = 0; i < n; i++)
			ids[i] = i;
		if (literal)
			rc = hs_compile_lit_multi((const char *const *)p->pat + from, p->flags + from,
						  ids, p->len + from, n, HS_MODE_BLOCK, NULL, &db,
						  &e);
		else
			rc = hs_compile_multi((const char *const *)p->pat + from, p->flags + from,
					      ids, n, HS_MODE_BLOCK, NULL, &db, &e);
		free(ids);
		if (rc != HS_SUCCESS) {
			const char *path = NULL;
			char what[160];

			if (e != NULL && e->expression >= 0 && (unsigned)e->expression < n)
				path = c->atom_path[p->atom[from + (unsigned)e->expression]];
			snprintf(what, sizeof(what), "pattern set of field %s refused by Vectorscan",
				 cname);
			cfail(c, path, what, e && e->message ? e->message : "unknown error");
			if (e != NULL)
				hs_free_compile_error(e);
			return -1;
		}
		h = xcalloc(1, sizeof(*h));
		h->db = db;
		h->refs = 1;
		memcpy(h->key, key, sizeof(key));
		if (hs_database_size(db, &h->size) != HS_SUCCESS)
			h->size = 0;
		c->rs->built++;
	}
	out->h = h;
	out->n = n;
	out->atom = xcalloc(n, sizeof(*out->atom));
	memcpy(out->atom, p->atom + from, n * sizeof(*out->atom));
	c->rs->mem += h->size + n * sizeof(uint32_t);
	return 0;
}

/* All patterns of p, cut into chunks, appended to the class's databases of one form. */
static int db_build(struct compiler *c, struct pat_list *p, bool literal, struct rules_class *k,
		    int form, const char *cname)
{
	unsigned scale = k->field == RF_BODY || k->field == RF_RAW_BODY ? CHUNK_BODY_SCALE : 1;
	unsigned lo = literal ? CHUNK_LIT_MIN : CHUNK_RE_MIN * scale;
	unsigned avg = literal ? CHUNK_LIT_AVG : CHUNK_RE_AVG * scale;
	unsigned hi = literal ? CHUNK_LIT_MAX : CHUNK_RE_MAX * scale;
	unsigned from = 0, i;

	for (i = 0; i < p->n; i++) {
		unsigned m = i + 1 - from;
		uint64_t h = fnv(p->pat[i], p->len[i], 1469598103934665603ULL);
		struct rules_db *d;

		if (i + 1 < p->n && m < hi && (m < lo || h % avg != 0))
			continue;
		k->db[form] = xrealloc(k->db[form], (k->ndb[form] + 1) * sizeof(*k->db[form]));
		d = &k->db[form][k->ndb[form]];
		memset(d, 0, sizeof(*d));
		k->ndb[form]++;
		if (chunk_build(c, p, from, m, literal, d, cname) < 0)
			return -1;
		from = i + 1;
	}
	return 0;
}

/* The anchored literals of one operator and form as a hash table. */
static void lset_build(struct rules_set *rs, struct pat_list *p, int kind, struct rules_lset *o)
{
	size_t slots = 8, total = 0, i;

	if (p->n == 0)
		return;
	while (slots < (size_t)p->n * 2)
		slots *= 2;
	for (i = 0; i < p->n; i++) {
		total += p->len[i];
		if (p->len[i] > o->maxlen)
			o->maxlen = p->len[i];
	}
	o->ent = xcalloc(p->n, sizeof(*o->ent));
	o->slot = xcalloc(slots, sizeof(*o->slot));
	o->mask = slots - 1;
	o->pool = xmalloc(total + 1);
	o->haslen = xcalloc(o->maxlen / 8 + 1, 1);
	o->n = p->n;
	total = 0;
	for (i = 0; i < p->n; i++) {
		struct rules_lent *e = &o->ent[i];
		size_t j;

		memcpy(o->pool + total, p->pat[i], p->len[i]);
		e->off = (uint32_t)total;
		e->len = (uint32_t)p->len[i];
		e->atom = p->atom[i];
		e->hash = rules_lset_hash(o->pool + total, e->len, kind == ANCH_END);
		total += p->len[i];
		o->haslen[e->len / 8] |= (uint8_t)(1u << (e->len % 8));
		j = (size_t)e->hash & o->mask;
		while (o->slot[j] != 0)
			j = (j + 1) & o->mask;
		o->slot[j] = (uint32_t)i + 1;
	}
	rs->mem += p->n * sizeof(*o->ent) + slots * sizeof(*o->slot) + total + o->maxlen / 8 + 1;
}

size_t rules_direct_lit_max = RULES_DIRECT_LIT_MAX_DEFAULT;

static int dent_cmp(const void *a, const void *b)
{
	const struct rules_dent *x = a, *y = b;
	unsigned kx = x->len == 1 ? 0 : x->key + 1u, ky = y->len == 1 ? 0 : y->key + 1u;

	if (kx != ky)
		return kx < ky ? -1 : 1;
	return x->off < y->off ? -1 : x->off > y->off;
}

/* The "contains" literals of one form, searched directly (no automaton). */
static void dlit_build(struct rules_set *rs, const struct pat_list *p, struct rules_dlit *o)
{
	size_t total = 0, i;

	for (i = 0; i < p->n; i++)
		total += p->len[i];
	o->ent = xcalloc(p->n, sizeof(*o->ent));
	o->pool = xmalloc(total + 1);
	o->n = p->n;
	total = 0;
	for (i = 0; i < p->n; i++) {
		struct rules_dent *e = &o->ent[i];

		memcpy(o->pool + total, p->pat[i], p->len[i]);
		e->off = (uint32_t)total;
		e->len = (uint32_t)p->len[i];
		e->atom = p->atom[i];
		if (e->len == 1) {
			unsigned char ch = (unsigned char)p->pat[i][0];

			o->one[ch / 8] |= (uint8_t)(1u << (ch % 8));
			o->n1++;
		} else {
			e->key = (uint16_t)RULES_DKEY(p->pat[i][0], p->pat[i][1]);
			o->first[e->key / 8] |= (uint8_t)(1u << (e->key % 8));
		}
		total += p->len[i];
	}
	qsort(o->ent, o->n, sizeof(*o->ent), dent_cmp);
	rs->mem += p->n * sizeof(*o->ent) + total + 1;
}

static int classes_build(struct compiler *c)
{
	struct rules_set *rs = c->rs;
	size_t i;
	int f, a;

	for (i = 0; i < rs->nclasses; i++) {
		struct rules_class *k = &rs->classes[i];
		struct cclass *cc = &c->cc[i];
		char cname[128];

		if (k->hname != NULL)
			snprintf(cname, sizeof(cname), "header %s", k->hname);
		else
			snprintf(cname, sizeof(cname), "%s", rules_field_name(k->field));
		/* Every atom exists now: the prefilters' bits follow them. */
		for (size_t j = 0; j < cc->multi[FORM_RAW].n; j++)
			if (cc->multi[FORM_RAW].flags[j] & HS_FLAG_PREFILTER)
				cc->multi[FORM_RAW].atom[j] += (uint32_t)rs->natoms;
		for (f = 0; f < 2; f++) {
			if (cc->lit[f].n > 0 && cc->lit[f].n <= rules_direct_lit_max &&
			    k->field != RF_BODY && k->field != RF_RAW_BODY)
				dlit_build(rs, &cc->lit[f], &k->dlit[f]);
			else if (db_build(c, &cc->lit[f], true, k, f, cname) < 0)
				return -1;
			if (db_build(c, &cc->multi[f], false, k, f, cname) < 0)
				return -1;
			for (a = 0; a < ANCH_COUNT_; a++)
				lset_build(rs, &cc->anch[a][f], a, &k->anch[a][f]);
		}
		k->pcre = cc->pcre;
		k->npcre = cc->npcre;
		cc->pcre = NULL;
		cc->npcre = 0;
		k->empty = cc->empty;
		k->nempty = cc->nempty;
		cc->empty = NULL;
		k->lists = cc->lists;
		k->nlists = cc->nlists;
		cc->lists = NULL;
		rs->mem += sizeof(*k) + (k->nempty + k->nlists) * 4 +
			   (k->ndb[0] + k->ndb[1]) * sizeof(struct rules_db);
		for (size_t j = 0; j < k->npcre; j++) {
			size_t sz = 0;

			if (pcre2_pattern_info(k->pcre[j].code, PCRE2_INFO_SIZE, &sz) == 0)
				rs->mem += sz;
			if (pcre2_pattern_info(k->pcre[j].code, PCRE2_INFO_JITSIZE, &sz) == 0)
				rs->mem += sz;
		}
	}
	return 0;
}

static int hdr_cmp(const void *a, const void *b, void *arg)
{
	const struct rules_set *rs = arg;

	return strcmp(rs->classes[*(const uint32_t *)a].hname,
		      rs->classes[*(const uint32_t *)b].hname);
}

static void cc_free(struct cclass *cc)
{
	size_t i;
	int f;

	for (f = 0; f < 2; f++) {
		int a;

		pat_free(&cc->lit[f]);
		pat_free(&cc->multi[f]);
		for (a = 0; a < ANCH_COUNT_; a++)
			pat_free(&cc->anch[a][f]);
	}
	for (i = 0; i < cc->npcre; i++)
		pcre2_code_free(cc->pcre[i].code);
	free(cc->pcre);
	free(cc->empty);
	free(cc->lists);
}

static guint key_hash(gconstpointer k)
{
	guint h;

	memcpy(&h, k, sizeof(h));
	return h;
}

static gboolean key_equal(gconstpointer a, gconstpointer b)
{
	return memcmp(a, b, 32) == 0;
}

struct rules_set *rules_compile(const struct rules_def *d, char *err, size_t errsz)
{
	return rules_compile_reuse(d, NULL, err, errsz);
}

struct rules_set *rules_compile_reuse(const struct rules_def *d, const struct rules_set *prev,
				      char *err, size_t errsz)
{
	struct compiler c;
	struct rules_set *rs = xcalloc(1, sizeof(*rs));
	size_t i, dcap = 0, rcap = 0;
	char p[64];
	int rc = -1;

	memset(&c, 0, sizeof(c));
	c.rs = rs;
	c.err = err;
	c.errsz = errsz;
	c.atom_ids = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
	c.class_ids = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
	c.prev = prev;
	if (prev != NULL) {
		/* prev stays alive and unchanged for the whole call: its databases are only read */
		c.prev_dbs = g_hash_table_new(key_hash, key_equal);
		for (i = 0; i < prev->nclasses; i++) {
			int f;

			for (f = 0; f < 2; f++)
				for (size_t j = 0; j < prev->classes[i].ndb[f]; j++) {
					struct rules_hsdb *h = prev->classes[i].db[f][j].h;

					g_hash_table_insert(c.prev_dbs, h->key, h);
				}
		}
	}
	pthread_mutex_init(&rs->lock, NULL);
	for (i = 0; i < RF_COUNT_; i++)
		rs->field_cls[i] = -1;
	rs->kind = d ? d->kind : RULES_KIND_SERVER;
	rs->nrules = d ? d->n : 0;
	rs->rules = xcalloc(rs->nrules ? rs->nrules : 1, sizeof(*rs->rules));
	for (i = 0; i < rs->nrules; i++) {
		const struct rules_rule *r = &d->rules[i];
		struct rules_crule *cr = &rs->rules[i];
		uint32_t root;

		cr->name = xstrdup(r->name);
		cr->enabled = r->enabled;
		cr->when = -1;
		cr->except = -1;
		rules_action_copy(&cr->action, &r->action);
		if (r->nactions > 0) {
			size_t k;

			cr->actions = xcalloc(r->nactions, sizeof(*cr->actions));
			for (k = 0; k < r->nactions; k++)
				rules_action_copy(&cr->actions[k], &r->actions[k]);
			cr->nactions = r->nactions;
			rs->mem += r->nactions * (sizeof(*cr->actions) + 32);
		}
		rs->mem += sizeof(*cr) + strlen(cr->name) + 1;
		if (!r->enabled)
			continue;
		snprintf(p, sizeof(p), "rules[%zu].when", i);
		if (cond_compile(&c, r->when, p, &root) < 0)
			goto out;
		cr->when = (int32_t)root;
		if (r->except != NULL) {
			snprintf(p, sizeof(p), "rules[%zu].except", i);
			if (cond_compile(&c, r->except, p, &root) < 0)
				goto out;
			cr->except = (int32_t)root;
		}
	}
	if (classes_build(&c) < 0)
		goto out;
	for (i = 0; i < rs->nclasses; i++)
		if (rs->classes[i].hname != NULL)
			u32_push(&rs->hdr_cls, &rs->nhdr, &dcap, (uint32_t)i);
	g_qsort_with_data(rs->hdr_cls, (gint)rs->nhdr, sizeof(uint32_t), hdr_cmp, rs);
	dcap = 0;
	for (i = 0; i < rs->natoms; i++) {
		const struct rules_atom *a = &rs->atoms[i];

		if (a->kind == AK_NUM || a->kind == AK_NET || a->kind == AK_FLAG ||
		    a->kind == AK_SCORE)
			u32_push(&rs->direct, &rs->ndirect, &dcap, (uint32_t)i);
		if (a->rcpt)
			u32_push(&rs->rcpt_atoms, &rs->nrcpt_atoms, &rcap, (uint32_t)i);
	}
	rules_rcpt_class_prepare(rs);
	rules_trigger_prepare(rs);
	if (rs->naccepted > 0)
		qsort(rs->accepted, rs->naccepted, 32, key_cmp);
	rs->mem += rs->naccepted * 32;
	rs->mctx = pcre2_match_context_create(NULL);
	pcre2_set_match_limit(rs->mctx, RULES_REGEX_MATCH_LIMIT);
	pcre2_set_depth_limit(rs->mctx, RULES_REGEX_DEPTH_LIMIT);
	pcre2_set_heap_limit(rs->mctx, RULES_REGEX_HEAP_KIB);
	rs->mem += sizeof(*rs) + rs->natoms * sizeof(*rs->atoms) +
		   rs->nnodes * sizeof(*rs->nodes) + rs->nkids * sizeof(*rs->kids) +
		   (rs->ndirect + rs->nrcpt_atoms + rs->nclass_atoms + rs->nhdr) * sizeof(uint32_t);
	rc = 0;
out:
	for (i = 0; i < rs->natoms; i++)
		free(c.atom_path[i]);
	free(c.atom_path);
	for (i = 0; i < rs->nclasses; i++)
		cc_free(&c.cc[i]);
	free(c.cc);
	g_hash_table_destroy(c.atom_ids);
	g_hash_table_destroy(c.class_ids);
	if (c.prev_dbs != NULL)
		g_hash_table_destroy(c.prev_dbs);
	if (rc < 0) {
		rules_set_free(rs);
		return NULL;
	}
	return rs;
}

void rules_set_free(struct rules_set *rs)
{
	struct rules_scratch *s, *next;
	size_t i;
	int f;

	if (rs == NULL)
		return;
	for (i = 0; i < rs->nrules; i++) {
		size_t k;

		free(rs->rules[i].name);
		rules_action_clear(&rs->rules[i].action);
		for (k = 0; k < rs->rules[i].nactions; k++)
			rules_action_clear(&rs->rules[i].actions[k]);
		free(rs->rules[i].actions);
	}
	free(rs->rules);
	for (i = 0; i < rs->natoms; i++) {
		free((char *)rs->atoms[i].str);
		free(rs->atoms[i].nets);
	}
	free(rs->atoms);
	free(rs->nodes);
	free(rs->kids);
	for (i = 0; i < rs->nclasses; i++) {
		struct rules_class *k = &rs->classes[i];
		size_t j;

		for (f = 0; f < 2; f++) {
			int a;

			for (j = 0; j < k->ndb[f]; j++) {
				hsdb_unref(k->db[f][j].h);
				free(k->db[f][j].atom);
			}
			free(k->db[f]);
			free(k->dlit[f].ent);
			free(k->dlit[f].pool);
			for (a = 0; a < ANCH_COUNT_; a++) {
				free(k->anch[a][f].ent);
				free(k->anch[a][f].slot);
				free(k->anch[a][f].pool);
				free(k->anch[a][f].haslen);
			}
		}
		for (j = 0; j < k->npcre; j++)
			pcre2_code_free(k->pcre[j].code);
		free(k->pcre);
		free(k->empty);
		free(k->lists);
		g_free(k->hname);
	}
	free(rs->classes);
	free(rs->accepted);
	free(rs->hdr_cls);
	free(rs->direct);
	free(rs->rcpt_atoms);
	free(rs->class_atoms);
	free(rs->trig_off);
	free(rs->trig_rules);
	free(rs->always);
	pcre2_match_context_free(rs->mctx);
	for (s = rs->pool; s != NULL; s = next) {
		next = s->next;
		hs_free_scratch(s->hs);
		pcre2_match_data_free(s->md);
		free(s);
	}
	pthread_mutex_destroy(&rs->lock);
	free(rs);
}

size_t rules_set_count(const struct rules_set *rs)
{
	return rs ? rs->nrules : 0;
}

const char *rules_set_name(const struct rules_set *rs, size_t i)
{
	return rs && i < rs->nrules ? rs->rules[i].name : NULL;
}

void rules_set_compile_stats(const struct rules_set *rs, unsigned *built, unsigned *reused)
{
	*built = rs ? rs->built : 0;
	*reused = rs ? rs->reused : 0;
}

size_t rules_set_memory(const struct rules_set *rs)
{
	return rs ? rs->mem : 0;
}
