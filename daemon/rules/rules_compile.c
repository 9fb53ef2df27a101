/*
 * rules_compile: a rule model becomes an immutable matcher.
 *
 * Every leaf becomes an atom (identical leaves share one); a negative
 * operator is NOT over its positive atom, so "does not contain" is true
 * exactly when no value contains.  Atoms on string fields are grouped by
 * field class (one class per field, one per header name) and each class
 * gets at most four Vectorscan databases:
 *   lit[raw|fold]    "contains": hs_compile_lit_multi, HS_FLAG_SINGLEMATCH;
 *   multi[raw|fold]  starts_with / ends_with / is as escaped literals
 *                    anchored with ^ and \z, and "matches" regexes
 *                    (UTF8, CASELESS unless case-sensitive).  Not UCP:
 *                    Unicode \w \s \d \W classes cost Vectorscan seconds
 *                    and megabytes per pattern (100 patterns with \W{1,3}:
 *                    27 s, 15 MB); classes stay ASCII as in PCRE2's default,
 *                    letters and case folding stay Unicode.
 * Anchored literals go through hs_compile_multi rather than lit_multi plus
 * an offset check: with SINGLEMATCH only one occurrence is reported, and
 * checking ends_with on every occurrence would flood the callback on common
 * literals; the engine applies the anchors itself.  Case-insensitive
 * literals are folded here (rules_fold) and matched against the folded text
 * ("fold" form); regexes run on the raw text with Vectorscan's caseless mode.
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

#include "../util/util.h"

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
	struct pat_list lit[2], multi[2];
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

/* Vectorscan literal syntax: ASCII punctuation escaped, other octets as is
 * (UTF-8 sequences then match byte for byte). */
static char *hs_escape(const char *s, size_t len)
{
	GString *g = g_string_sized_new(len * 2 + 8);
	size_t i;

	for (i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)s[i];

		if (ch < 0x80 && !g_ascii_isalnum(ch)) {
			if (ch < 0x20 || ch == 0x7f)
				g_string_append_printf(g, "\\x%02x", ch);
			else {
				g_string_append_c(g, '\\');
				g_string_append_c(g, (char)ch);
			}
		} else {
			g_string_append_c(g, (char)ch);
		}
	}
	return g_string_free(g, FALSE);
}

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

static int add_pcre(struct compiler *c, struct cclass *cc, const struct rules_cond *l,
		    bool bytes, uint32_t id, const char *path)
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
	/* JIT failure (e.g. no executable memory) still leaves the interpreter. */
	(void)pcre2_jit_compile(code, PCRE2_JIT_COMPLETE);
	if (cc->npcre == cc->pcap) {
		cc->pcap = cc->pcap ? cc->pcap * 2 : 4;
		cc->pcre = xrealloc(cc->pcre, cc->pcap * sizeof(*cc->pcre));
	}
	cc->pcre[cc->npcre].code = code;
	cc->pcre[cc->npcre].atom = id;
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
	char *lit, *esc, *pat;
	unsigned fl;

	if (a->op == RO_MATCHES) {
		fl = HS_FLAG_SINGLEMATCH | HS_FLAG_ALLOWEMPTY;
		if (!k->bytes)
			fl |= HS_FLAG_UTF8;
		if (!l->sensitive)
			fl |= HS_FLAG_CASELESS;
		if (!hs_accepts(l->str, fl))
			return add_pcre(c, cc, l, k->bytes, id, path);
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
	esc = hs_escape(lit, flen);
	g_free(lit);
	pat = g_strdup_printf("%s%s%s", a->op == RO_ENDS_WITH ? "" : "^", esc,
			      a->op == RO_STARTS_WITH ? "" : "\\z");
	g_free(esc);
	pat_add(&cc->multi[form], pat, strlen(pat), HS_FLAG_SINGLEMATCH, id);
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
	g_string_append_printf(key, "%d|%d|%d|%lld|", (int)l->field, (int)op, (int)l->sensitive,
			       (long long)l->num);
	for (i = 0; l->header != NULL && l->header[i] != '\0'; i++)
		g_string_append_c(key, g_ascii_tolower(l->header[i]));
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
	*out = id;
	switch (l->field) {
	case RF_SIZE:
	case RF_RECIPIENT_COUNT:
		a->kind = AK_NUM;
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

static int db_build(struct compiler *c, struct pat_list *p, bool literal, struct rules_db *out,
		    const char *cname)
{
	hs_compile_error_t *e = NULL;
	hs_error_t rc;
	size_t sz = 0;

	if (p->n == 0)
		return 0;
	if (literal)
		rc = hs_compile_lit_multi((const char *const *)p->pat, p->flags, p->ids, p->len,
					  p->n, HS_MODE_BLOCK, NULL, &out->db, &e);
	else
		rc = hs_compile_multi((const char *const *)p->pat, p->flags, p->ids, p->n,
				      HS_MODE_BLOCK, NULL, &out->db, &e);
	if (rc != HS_SUCCESS) {
		const char *path = NULL;
		char what[160];

		if (e != NULL && e->expression >= 0 && (unsigned)e->expression < p->n)
			path = c->atom_path[p->atom[e->expression]];
		snprintf(what, sizeof(what), "pattern set of field %s refused by Vectorscan", cname);
		cfail(c, path, what, e && e->message ? e->message : "unknown error");
		if (e != NULL)
			hs_free_compile_error(e);
		return -1;
	}
	out->atom = p->atom;
	out->n = p->n;
	p->atom = NULL;
	if (hs_database_size(out->db, &sz) == HS_SUCCESS)
		c->rs->mem += sz;
	c->rs->mem += out->n * sizeof(uint32_t);
	return 0;
}

static int classes_build(struct compiler *c)
{
	struct rules_set *rs = c->rs;
	size_t i;
	int f;

	for (i = 0; i < rs->nclasses; i++) {
		struct rules_class *k = &rs->classes[i];
		struct cclass *cc = &c->cc[i];
		char cname[128];

		if (k->hname != NULL)
			snprintf(cname, sizeof(cname), "header %s", k->hname);
		else
			snprintf(cname, sizeof(cname), "%s", rules_field_name(k->field));
		for (f = 0; f < 2; f++) {
			if (db_build(c, &cc->lit[f], true, &k->lit[f], cname) < 0)
				return -1;
			if (db_build(c, &cc->multi[f], false, &k->multi[f], cname) < 0)
				return -1;
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
		rs->mem += sizeof(*k) + (k->nempty + k->nlists) * 4;
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
		pat_free(&cc->lit[f]);
		pat_free(&cc->multi[f]);
	}
	for (i = 0; i < cc->npcre; i++)
		pcre2_code_free(cc->pcre[i].code);
	free(cc->pcre);
	free(cc->empty);
	free(cc->lists);
}

struct rules_set *rules_compile(const struct rules_def *d, char *err, size_t errsz)
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
	pthread_mutex_init(&rs->lock, NULL);
	for (i = 0; i < RF_COUNT_; i++)
		rs->field_cls[i] = -1;
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
		cr->action = r->action;
		cr->action.text = r->action.text ? xstrdup(r->action.text) : NULL;
		cr->action.subject_prefix =
			r->action.subject_prefix ? xstrdup(r->action.subject_prefix) : NULL;
		cr->action.header = r->action.header ? xstrdup(r->action.header) : NULL;
		cr->action.address = r->action.address ? xstrdup(r->action.address) : NULL;
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

		if (a->kind == AK_NUM || a->kind == AK_NET || a->kind == AK_FLAG)
			u32_push(&rs->direct, &rs->ndirect, &dcap, (uint32_t)i);
		if (a->rcpt)
			u32_push(&rs->rcpt_atoms, &rs->nrcpt_atoms, &rcap, (uint32_t)i);
	}
	rs->mctx = pcre2_match_context_create(NULL);
	pcre2_set_match_limit(rs->mctx, RULES_REGEX_MATCH_LIMIT);
	pcre2_set_depth_limit(rs->mctx, RULES_REGEX_DEPTH_LIMIT);
	pcre2_set_heap_limit(rs->mctx, RULES_REGEX_HEAP_KIB);
	rs->mem += sizeof(*rs) + rs->natoms * sizeof(*rs->atoms) +
		   rs->nnodes * sizeof(*rs->nodes) + rs->nkids * sizeof(*rs->kids) +
		   (rs->ndirect + rs->nrcpt_atoms + rs->nhdr) * sizeof(uint32_t);
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
		free(rs->rules[i].name);
		free(rs->rules[i].action.text);
		free(rs->rules[i].action.subject_prefix);
		free(rs->rules[i].action.header);
		free(rs->rules[i].action.address);
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
			hs_free_database(k->lit[f].db);
			free(k->lit[f].atom);
			hs_free_database(k->multi[f].db);
			free(k->multi[f].atom);
		}
		for (j = 0; j < k->npcre; j++)
			pcre2_code_free(k->pcre[j].code);
		free(k->pcre);
		free(k->empty);
		free(k->lists);
		g_free(k->hname);
	}
	free(rs->classes);
	free(rs->hdr_cls);
	free(rs->direct);
	free(rs->rcpt_atoms);
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

size_t rules_set_memory(const struct rules_set *rs)
{
	return rs ? rs->mem : 0;
}
