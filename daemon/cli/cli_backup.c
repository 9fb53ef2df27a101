/*
 * cli_backup: "moatd backup DEST" and "moatd restore SRC" (docs/install.md,
 * "Backup and restore").
 *
 * A backup is a directory:
 *   moat.db               the database as of one moment (store_backup_snapshot)
 *   spool/queue/<qid>     the message of every queue_message row in that copy
 *   spool/quarantine/<qid> the message of every quarantine item in it
 *   tls/, secrets/        the data directory's key material (the STARTTLS pair
 *                         made on first run, the digest link key); what else is
 *                         secret (webhook secrets, the filter's hash key, API
 *                         sessions and tokens) lives in the database
 *   MANIFEST.json         written last: format, version, schema version,
 *                         created, counts, and size and sha256 of every file
 *
 * Backup runs while moatd runs and accepts mail.  The database is copied
 * first; the files are copied for the rows of that copy.  Spool files are
 * never changed once acknowledged and are unlinked only after their rows are
 * committed gone, so a file that is missing when its turn comes belongs to a
 * message that finished (delivered, deleted, released, expired) after the
 * snapshot: its rows are removed from the copy and its name is listed in
 * the manifest (finished_during_backup).  A restore never meets rows without
 * a file.  Mail accepted after the snapshot is not in the backup.
 *
 * Restore checks every file against the manifest before it touches the
 * data directory, refuses one that has a database (unless --force) or that
 * a running moatd holds, and copies each file under a temporary name that
 * is synced and renamed; the database comes last.  moatd started on the
 * result reconciles the spool as at every start.
 *
 * Exit status: 0 done, 1 error, 2 usage (also a DEST that is not empty).
 */
#include "cli.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../store/store.h"
#include "../store/store_backup.h"
#include "../store/store_quarantine.h"
#include "../util/util.h"

#define BACKUP_FORMAT "moat-backup"
#define BACKUP_VERSION 1
#define MANIFEST_NAME "MANIFEST.json"
#define COPY_BUF (64 * 1024)
#define PATH_MAX_LEN 1400
/* DEST, SRC and data_dir: with a file's name under them, paths fit PATH_MAX_LEN. */
#define NAME_MAX_LEN 900

/* The directories whose regular files are key material to keep. */
static const char *const secret_dirs[] = { "tls", "secrets", NULL };

static void backup_usage(FILE *out)
{
	fprintf(out,
		"usage: moatd backup [-c FILE] [-o key=value] [--data-dir DIR] DEST\n"
		"  Copies the database (as of one moment), the queued and quarantined\n"
		"  messages it names, and the key material in tls/ and secrets/ into\n"
		"  DEST, a new or empty directory, with MANIFEST.json (sha256 of each\n"
		"  file).  Safe while moatd runs and accepts mail.\n");
}

static void restore_usage(FILE *out)
{
	fprintf(out,
		"usage: moatd restore [-c FILE] [-o key=value] [--data-dir DIR] [--force] SRC\n"
		"  Checks the backup SRC against its MANIFEST.json and copies it into the\n"
		"  data directory.  Refuses a data directory that has a database unless\n"
		"  --force (which replaces the database and the spool there), and one a\n"
		"  running moatd holds.  Start moatd on it afterwards.\n");
}

/* ---- files ------------------------------------------------------------------------- */

/* snprintf for paths: 0, or -1 (and an empty string) when it does not fit. */
__attribute__((format(printf, 3, 4)))
static int pathf(char *out, size_t outsz, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(out, outsz, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= outsz) {
		out[0] = '\0';
		return -1;
	}
	return 0;
}

static void hex(const unsigned char *b, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";
	size_t i;

	for (i = 0; i < n; i++) {
		out[2 * i] = digits[b[i] >> 4];
		out[2 * i + 1] = digits[b[i] & 15];
	}
	out[2 * n] = '\0';
}

static int fsync_dir(const char *path)
{
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int rc;

	if (fd < 0)
		return -1;
	rc = fsync(fd);
	close(fd);
	return rc;
}

static int make_dir(const char *path, mode_t mode, char *err, size_t errsz)
{
	if (mkdir(path, mode) < 0 && errno != EEXIST) {
		snprintf(err, errsz, "%s: %s", path, strerror(errno));
		return -1;
	}
	return 0;
}

/*
 * Reads src (and, when dst is not NULL, writes it to dst: created new with
 * mode, written, fsync'ed), giving its size and sha256 in hex.  0; 1 when
 * src does not exist; -1 with err.  dst is removed again on failure.
 */
static int copy_hash(const char *src, const char *dst, mode_t mode, int64_t *size,
		     char sha[65], char *err, size_t errsz)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	EVP_MD_CTX *ctx = NULL;
	char *buf = xmalloc(COPY_BUF);
	int in = -1, out = -1;
	int rc = -1;
	ssize_t n;

	*size = 0;
	in = open(src, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (in < 0) {
		if (errno == ENOENT) {
			rc = 1;
			goto out;
		}
		snprintf(err, errsz, "%s: %s", src, strerror(errno));
		goto out;
	}
	if (dst != NULL) {
		out = open(dst, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
		if (out < 0) {
			snprintf(err, errsz, "%s: %s", dst, strerror(errno));
			goto out;
		}
	}
	ctx = EVP_MD_CTX_new();
	if (ctx == NULL || EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1) {
		snprintf(err, errsz, "sha256: cannot initialise");
		goto out;
	}
	for (;;) {
		n = read(in, buf, COPY_BUF);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			snprintf(err, errsz, "%s: read: %s", src, strerror(errno));
			goto out;
		}
		if (n == 0)
			break;
		EVP_DigestUpdate(ctx, buf, (size_t)n);
		*size += n;
		if (out >= 0) {
			ssize_t off = 0;

			while (off < n) {
				ssize_t w = write(out, buf + off, (size_t)(n - off));

				if (w < 0 && errno == EINTR)
					continue;
				if (w < 0) {
					snprintf(err, errsz, "%s: write: %s", dst, strerror(errno));
					goto out;
				}
				off += w;
			}
		}
	}
	if (out >= 0 && fsync(out) < 0) {
		snprintf(err, errsz, "%s: fsync: %s", dst, strerror(errno));
		goto out;
	}
	EVP_DigestFinal_ex(ctx, md, &mdlen);
	hex(md, mdlen, sha);
	rc = 0;
out:
	EVP_MD_CTX_free(ctx);
	free(buf);
	if (in >= 0)
		close(in);
	if (out >= 0 && close(out) < 0 && rc == 0) {
		snprintf(err, errsz, "%s: close: %s", dst, strerror(errno));
		rc = -1;
	}
	if (rc < 0 && out >= 0)
		unlink(dst);
	return rc;
}

static json_t *file_entry(const char *rel, int64_t size, const char *sha)
{
	return json_pack("{s:s, s:I, s:s}", "path", rel, "size", (json_int_t)size, "sha256", sha);
}

/* ---- backup ------------------------------------------------------------------------ */

struct qids {
	char **v;
	size_t n, cap;
};

static int collect_qid(const char *qid, void *arg)
{
	struct qids *q = arg;

	if (q->n == q->cap) {
		q->cap = q->cap ? q->cap * 2 : 256;
		q->v = xrealloc(q->v, q->cap * sizeof(*q->v));
	}
	q->v[q->n++] = xstrdup(qid);
	return 0;
}

static void qids_free(struct qids *q)
{
	size_t i;

	for (i = 0; i < q->n; i++)
		free(q->v[i]);
	free(q->v);
	memset(q, 0, sizeof(*q));
}

/* A queue id names a file and nothing else: 16 lower-case hex digits. */
static int is_qid(const char *s)
{
	return strlen(s) == 16 && strspn(s, "0123456789abcdef") == 16;
}

/*
 * Copies spool/<dir>/<qid> for each qid into dest; a missing file is
 * appended to gone (its qid) and to finished (for the manifest).
 */
static int copy_spool(const char *data_dir, const char *dest, const char *dir,
		      const struct qids *q, struct qids *gone, json_t *files, json_t *finished,
		      char *err, size_t errsz)
{
	char src[PATH_MAX_LEN], dst[PATH_MAX_LEN], rel[128], sha[65];
	size_t i;

	for (i = 0; i < q->n; i++) {
		int64_t size;
		int rc;

		if (!is_qid(q->v[i])) {
			snprintf(err, errsz, "spool/%s: unexpected queue id in the database: %.40s",
				 dir, q->v[i]);
			return -1;
		}
		(void)pathf(rel, sizeof(rel), "spool/%s/%s", dir, q->v[i]);
		(void)pathf(src, sizeof(src), "%s/%s", data_dir, rel);
		(void)pathf(dst, sizeof(dst), "%s/%s", dest, rel);
		rc = copy_hash(src, dst, 0640, &size, sha, err, errsz);
		if (rc < 0)
			return -1;
		if (rc == 1) {
			collect_qid(q->v[i], gone);
			json_array_append_new(finished, json_string(rel));
			continue;
		}
		json_array_append_new(files, file_entry(rel, size, sha));
	}
	return 0;
}

/* Regular files of <data_dir>/<dir> for each secret dir; a missing dir is skipped. */
static int copy_secrets(const char *data_dir, const char *dest, json_t *files, int *count,
			char *err, size_t errsz)
{
	char src[PATH_MAX_LEN], dst[PATH_MAX_LEN], rel[600], sha[65];
	size_t k;

	for (k = 0; secret_dirs[k] != NULL; k++) {
		struct dirent *de;
		DIR *d;

		(void)pathf(src, sizeof(src), "%s/%s", data_dir, secret_dirs[k]);
		d = opendir(src);
		if (d == NULL) {
			if (errno == ENOENT)
				continue;
			snprintf(err, errsz, "%s: %s", src, strerror(errno));
			return -1;
		}
		(void)pathf(dst, sizeof(dst), "%s/%s", dest, secret_dirs[k]);
		if (make_dir(dst, 0700, err, errsz) < 0) {
			closedir(d);
			return -1;
		}
		while ((de = readdir(d)) != NULL) {
			struct stat sb;
			int64_t size;

			if (de->d_name[0] == '.' || strlen(de->d_name) > 200)
				continue;
			(void)pathf(rel, sizeof(rel), "%s/%s", secret_dirs[k], de->d_name);
			(void)pathf(src, sizeof(src), "%s/%s", data_dir, rel);
			if (lstat(src, &sb) < 0 || !S_ISREG(sb.st_mode))
				continue;
			(void)pathf(dst, sizeof(dst), "%s/%s", dest, rel);
			if (copy_hash(src, dst, sb.st_mode & 0700, &size, sha, err, errsz) != 0) {
				if (err[0] == '\0')
					snprintf(err, errsz, "%s: vanished while copying", src);
				closedir(d);
				return -1;
			}
			json_array_append_new(files, file_entry(rel, size, sha));
			(*count)++;
		}
		closedir(d);
		(void)pathf(dst, sizeof(dst), "%s/%s", dest, secret_dirs[k]);
		if (fsync_dir(dst) < 0) {
			snprintf(err, errsz, "%s: fsync: %s", dst, strerror(errno));
			return -1;
		}
	}
	return 0;
}

/* 0: dest is a new (now made) or empty directory; 1: it is not empty; -1 error. */
static int prepare_dest(const char *dest, char *err, size_t errsz)
{
	struct dirent *de;
	DIR *d;
	int empty = 1;

	if (mkdir(dest, 0700) == 0)
		return 0;
	if (errno != EEXIST) {
		snprintf(err, errsz, "%s: %s", dest, strerror(errno));
		return -1;
	}
	d = opendir(dest);
	if (d == NULL) {
		snprintf(err, errsz, "%s: %s", dest, strerror(errno));
		return errno == ENOTDIR ? 1 : -1;
	}
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0) {
			empty = 0;
			break;
		}
	}
	closedir(d);
	return empty ? 0 : 1;
}

static int write_manifest(const char *dest, json_t *m, char *err, size_t errsz)
{
	char path[PATH_MAX_LEN], tmp[PATH_MAX_LEN];
	char *text = json_dumps(m, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	size_t len, off = 0;
	int fd, rc = -1;

	if (text == NULL) {
		snprintf(err, errsz, "manifest: cannot encode");
		return -1;
	}
	(void)pathf(path, sizeof(path), "%s/%s", dest, MANIFEST_NAME);
	(void)pathf(tmp, sizeof(tmp), "%s.tmp", path);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0) {
		snprintf(err, errsz, "%s: %s", tmp, strerror(errno));
		free(text);
		return -1;
	}
	len = strlen(text);
	while (off < len) {
		ssize_t w = write(fd, text + off, len - off);

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0) {
			snprintf(err, errsz, "%s: write: %s", tmp, strerror(errno));
			goto out;
		}
		off += (size_t)w;
	}
	if (write(fd, "\n", 1) != 1 || fsync(fd) < 0) {
		snprintf(err, errsz, "%s: %s", tmp, strerror(errno));
		goto out;
	}
	rc = 0;
out:
	if (close(fd) < 0 && rc == 0) {
		snprintf(err, errsz, "%s: close: %s", tmp, strerror(errno));
		rc = -1;
	}
	free(text);
	if (rc == 0 && rename(tmp, path) < 0) {
		snprintf(err, errsz, "%s: rename: %s", path, strerror(errno));
		rc = -1;
	}
	if (rc < 0)
		unlink(tmp);
	return rc;
}

static int do_backup(const struct conf *conf, const char *dest, char *err, size_t errsz)
{
	struct store_backup_counts c;
	struct qids queue = { 0 }, quar = { 0 }, gone_q = { 0 }, gone_z = { 0 };
	char path[PATH_MAX_LEN], sha[65];
	struct store *st;
	json_t *files = json_array();
	json_t *finished = json_array();
	json_t *m = NULL;
	int64_t size;
	int nsecrets = 0;
	int rc = -1;
	size_t i;
	char created[32];
	time_t now = time(NULL);
	struct tm tm;

	(void)pathf(path, sizeof(path), "%s/spool", dest);
	if (make_dir(path, 0750, err, errsz) < 0)
		goto out;
	(void)pathf(path, sizeof(path), "%s/spool/queue", dest);
	if (make_dir(path, 0750, err, errsz) < 0)
		goto out;
	(void)pathf(path, sizeof(path), "%s/spool/quarantine", dest);
	if (make_dir(path, 0750, err, errsz) < 0)
		goto out;

	/* 1. The database as of now. */
	st = cli_open_store(conf, "backup", 0);
	if (st == NULL) {
		snprintf(err, errsz, "cannot open the database");
		goto out;
	}
	(void)pathf(path, sizeof(path), "%s/moat.db", dest);
	if (store_backup_snapshot(st, path, err, errsz) < 0) {
		store_close(st);
		goto out;
	}
	store_close(st);

	/* 2. The files its rows name; rows whose file is gone are dropped from the copy. */
	st = store_open(path, 0, err, errsz);
	if (st == NULL)
		goto out;
	if (store_queue_foreach(st, collect_qid, &queue) < 0 ||
	    store_quarantine_qids(st, collect_qid, &quar) < 0) {
		snprintf(err, errsz, "copy of the database: cannot read the queue index");
		store_close(st);
		goto out;
	}
	if (copy_spool(conf->data_dir, dest, "queue", &queue, &gone_q, files, finished, err,
		       errsz) < 0 ||
	    copy_spool(conf->data_dir, dest, "quarantine", &quar, &gone_z, files, finished, err,
		       errsz) < 0) {
		store_close(st);
		goto out;
	}
	if (gone_q.n + gone_z.n > 0) {
		int n;

		if (store_begin(st) < 0)
			goto forget_failed;
		for (i = 0; i < gone_q.n; i++)
			if (store_queue_delete_message(st, gone_q.v[i]) < 0)
				goto forget_failed;
		for (i = 0; i < gone_z.n; i++)
			if (store_quarantine_remove_qid(st, gone_z.v[i], &n) < 0)
				goto forget_failed;
		if (store_commit(st) < 0)
			goto forget_failed;
	}
	if (store_backup_counts(st, &c) < 0) {
		snprintf(err, errsz, "copy of the database: cannot count");
		store_close(st);
		goto out;
	}
	store_close(st);
	st = NULL;

	/* 3. Key material; 4. the database file as it now is. */
	if (copy_secrets(conf->data_dir, dest, files, &nsecrets, err, errsz) < 0)
		goto out;
	(void)pathf(path, sizeof(path), "%s/moat.db", dest);
	if (copy_hash(path, NULL, 0, &size, sha, err, errsz) != 0) {
		if (err[0] == '\0')
			snprintf(err, errsz, "%s: missing", path);
		goto out;
	}
	json_array_insert_new(files, 0, file_entry("moat.db", size, sha));
	{
		static const char *const dirs[] = { "spool/queue", "spool/quarantine", "spool", "",
						    NULL };

		for (i = 0; dirs[i] != NULL; i++) {
			(void)pathf(path, sizeof(path), "%s/%s", dest, dirs[i]);
			if (fsync_dir(path) < 0) {
				snprintf(err, errsz, "%s: fsync: %s", path, strerror(errno));
				goto out;
			}
		}
	}

	/* 5. The manifest, last: a backup without one is incomplete. */
	gmtime_r(&now, &tm);
	strftime(created, sizeof(created), "%Y-%m-%dT%H:%M:%SZ", &tm);
	m = json_pack("{s:s, s:i, s:s, s:i, s:s, s:s, s:{s:I, s:I, s:I, s:I, s:I, s:I, s:I},"
		      " s:O, s:O}",
		      "format", BACKUP_FORMAT, "version", BACKUP_VERSION,
		      "moatd_version", MOAT_VERSION, "schema_version", store_schema_version(),
		      "created", created, "data_dir", conf->data_dir,
		      "counts",
		      "queue_messages", (json_int_t)c.queue_messages,
		      "queue_pending", (json_int_t)c.queue_pending,
		      "queue_held", (json_int_t)c.queue_held,
		      "queue_dead", (json_int_t)c.queue_dead,
		      "quarantine_messages", (json_int_t)c.quarantine_messages,
		      "quarantine_items", (json_int_t)c.quarantine_items,
		      "secrets", (json_int_t)nsecrets,
		      "finished_during_backup", finished, "files", files);
	if (m == NULL) {
		snprintf(err, errsz, "manifest: cannot build");
		goto out;
	}
	if (write_manifest(dest, m, err, errsz) < 0 || fsync_dir(dest) < 0) {
		if (err[0] == '\0')
			snprintf(err, errsz, "%s: fsync: %s", dest, strerror(errno));
		goto out;
	}
	printf("backup %s: queue_messages=%lld queue_pending=%lld queue_held=%lld"
	       " quarantine_items=%lld secrets=%d files=%zu finished_during_backup=%zu\n",
	       dest, (long long)c.queue_messages, (long long)c.queue_pending,
	       (long long)c.queue_held, (long long)c.quarantine_items, nsecrets,
	       json_array_size(files), json_array_size(finished));
	rc = 0;
	goto out;
forget_failed:
	snprintf(err, errsz, "copy of the database: cannot drop finished messages");
	store_rollback(st);
	store_close(st);
out:
	json_decref(m);
	json_decref(files);
	json_decref(finished);
	qids_free(&queue);
	qids_free(&quar);
	qids_free(&gone_q);
	qids_free(&gone_z);
	return rc;
}

int cli_backup_main(int argc, char **argv)
{
	struct conf conf;
	char err[1600] = "";
	const char *dest;
	int r;

	if (cli_load_conf(&argc, &argv, &conf, err, sizeof(err)) < 0) {
		fprintf(stderr, "moatd backup: %s\n", err);
		return 1;
	}
	if (argc == 1 && (strcmp(argv[0], "help") == 0 || strcmp(argv[0], "-h") == 0 ||
			  strcmp(argv[0], "--help") == 0)) {
		backup_usage(stdout);
		return 0;
	}
	if (argc != 1 || argv[0][0] == '-' || argv[0][0] == '\0') {
		backup_usage(stderr);
		return 2;
	}
	dest = argv[0];
	if (strlen(dest) > NAME_MAX_LEN || strlen(conf.data_dir) > NAME_MAX_LEN) {
		fprintf(stderr, "moatd backup: path too long (at most %d bytes)\n", NAME_MAX_LEN);
		return 2;
	}
	r = prepare_dest(dest, err, sizeof(err));
	if (r == 1) {
		fprintf(stderr, "moatd backup: %s is not an empty directory; give a new or"
			" empty one (a backup never overwrites another)\n", dest);
		return 2;
	}
	if (r < 0) {
		fprintf(stderr, "moatd backup: %s\n", err);
		return 1;
	}
	if (do_backup(&conf, dest, err, sizeof(err)) < 0) {
		fprintf(stderr, "moatd backup: %s; %s is incomplete (no %s) and can be removed\n",
			err, dest, MANIFEST_NAME);
		return 1;
	}
	return 0;
}

/* ---- restore ----------------------------------------------------------------------- */

/*
 * A manifest path is one of: moat.db, spool/queue/<qid>, spool/quarantine/<qid>,
 * tls/<name>, secrets/<name> (a plain name: no '/', not starting with '.').
 * Nothing else is ever written by a restore.
 */
static int path_ok(const char *p)
{
	const char *name;
	size_t k;

	if (strcmp(p, "moat.db") == 0)
		return 1;
	if (strncmp(p, "spool/queue/", 12) == 0)
		return is_qid(p + 12);
	if (strncmp(p, "spool/quarantine/", 17) == 0)
		return is_qid(p + 17);
	for (k = 0; secret_dirs[k] != NULL; k++) {
		size_t n = strlen(secret_dirs[k]);

		if (strncmp(p, secret_dirs[k], n) != 0 || p[n] != '/')
			continue;
		name = p + n + 1;
		return name[0] != '\0' && name[0] != '.' && strchr(name, '/') == NULL &&
		       strlen(name) <= 200;
	}
	return 0;
}

struct entry {
	const char *path;
	int64_t size;
	const char *sha;
};

/* The manifest's file list, checked in form; -1 with err. */
static int read_manifest(const char *src, json_t **out, struct entry **entries, size_t *n,
			 char *err, size_t errsz)
{
	char path[PATH_MAX_LEN];
	json_error_t je;
	json_t *m, *files, *f;
	json_int_t schema = 0;
	const char *format = NULL;
	json_int_t version = 0;
	size_t i;
	int has_db = 0;

	(void)pathf(path, sizeof(path), "%s/%s", src, MANIFEST_NAME);
	m = json_load_file(path, JSON_REJECT_DUPLICATES, &je);
	if (m == NULL) {
		if (access(path, F_OK) < 0)
			snprintf(err, errsz, "%s: no %s: not a complete backup", src,
				 MANIFEST_NAME);
		else
			snprintf(err, errsz, "%s: line %d: %s", path, je.line, je.text);
		return -1;
	}
	if (json_unpack(m, "{s:s, s:I, s:I, s:o}", "format", &format, "version", &version,
			"schema_version", &schema, "files", &files) < 0 ||
	    strcmp(format, BACKUP_FORMAT) != 0 || !json_is_array(files)) {
		snprintf(err, errsz, "%s: not a moat backup manifest", path);
		goto fail;
	}
	if (version != BACKUP_VERSION) {
		snprintf(err, errsz, "%s: backup format version %lld; this moatd reads %d", path,
			 (long long)version, BACKUP_VERSION);
		goto fail;
	}
	if (schema < 1 || schema > store_schema_version()) {
		snprintf(err, errsz, "%s: schema version %lld is newer than this moatd knows (%d)",
			 path, (long long)schema, store_schema_version());
		goto fail;
	}
	*n = json_array_size(files);
	*entries = xcalloc(*n + 1, sizeof(**entries));
	json_array_foreach(files, i, f) {
		struct entry *e = &(*entries)[i];
		json_int_t size;

		if (json_unpack(f, "{s:s, s:I, s:s}", "path", &e->path, "size", &size, "sha256",
				&e->sha) < 0 || size < 0 || strlen(e->sha) != 64 ||
		    strspn(e->sha, "0123456789abcdef") != 64 || !path_ok(e->path)) {
			snprintf(err, errsz, "%s: files[%zu]: not a valid entry", path, i);
			free(*entries);
			*entries = NULL;
			goto fail;
		}
		e->size = size;
		if (strcmp(e->path, "moat.db") == 0)
			has_db = 1;
	}
	if (!has_db) {
		snprintf(err, errsz, "%s: lists no moat.db", path);
		free(*entries);
		*entries = NULL;
		goto fail;
	}
	*out = m;
	return 0;
fail:
	json_decref(m);
	return -1;
}

/* Each file of the backup as the manifest says: size and sha256. */
static int verify(const char *src, const struct entry *e, size_t n, char *err, size_t errsz)
{
	char path[PATH_MAX_LEN], sha[65];
	size_t i;

	for (i = 0; i < n; i++) {
		int64_t size;
		int rc;

		(void)pathf(path, sizeof(path), "%s/%s", src, e[i].path);
		rc = copy_hash(path, NULL, 0, &size, sha, err, errsz);
		if (rc == 1) {
			snprintf(err, errsz, "%s: missing from the backup", path);
			return -1;
		}
		if (rc < 0)
			return -1;
		if (size != e[i].size || strcmp(sha, e[i].sha) != 0) {
			snprintf(err, errsz, "%s: %s differs from the manifest: the backup is"
				 " damaged", path, size != e[i].size ? "size" : "sha256");
			return -1;
		}
	}
	return 0;
}

/* Removes the regular files of dir (an old spool being replaced). */
static int empty_dir(const char *dir, char *err, size_t errsz)
{
	char path[PATH_MAX_LEN];
	struct dirent *de;
	DIR *d = opendir(dir);

	if (d == NULL)
		return errno == ENOENT ? 0 : -1;
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		(void)pathf(path, sizeof(path), "%s/%s", dir, de->d_name);
		if (unlink(path) < 0 && errno != ENOENT && errno != EISDIR) {
			snprintf(err, errsz, "%s: %s", path, strerror(errno));
			closedir(d);
			return -1;
		}
	}
	closedir(d);
	return fsync_dir(dir) < 0 ? -1 : 0;
}

/*
 * Copies src/<rel> to data_dir/<rel> under <rel>.restore, checking the hash
 * again (the file may have changed since verify()), then renames it.
 */
static int place(const char *src, const char *data_dir, const struct entry *e,
		 const struct passwd *pw, char *err, size_t errsz)
{
	char from[PATH_MAX_LEN], to[PATH_MAX_LEN], tmp[PATH_MAX_LEN + 16], sha[65];
	mode_t mode = strncmp(e->path, "spool/", 6) == 0 ? 0640 : 0600;
	int64_t size;
	int rc;

	(void)pathf(from, sizeof(from), "%s/%s", src, e->path);
	(void)pathf(to, sizeof(to), "%s/%s", data_dir, e->path);
	(void)pathf(tmp, sizeof(tmp), "%s.restore", to);
	(void)unlink(tmp);
	rc = copy_hash(from, tmp, mode, &size, sha, err, errsz);
	if (rc == 1)
		snprintf(err, errsz, "%s: missing from the backup", from);
	if (rc != 0)
		return -1;
	if (size != e->size || strcmp(sha, e->sha) != 0) {
		snprintf(err, errsz, "%s: changed while being restored", from);
		unlink(tmp);
		return -1;
	}
	if (pw != NULL && chown(tmp, pw->pw_uid, pw->pw_gid) < 0) {
		snprintf(err, errsz, "%s: chown: %s", tmp, strerror(errno));
		unlink(tmp);
		return -1;
	}
	if (strcmp(e->path, "moat.db") == 0) {
		/* A log of another database must never be replayed into this one. */
		static const char *const side[] = { "-wal", "-shm", "-journal", NULL };
		size_t k;

		for (k = 0; side[k] != NULL; k++) {
			char p[PATH_MAX_LEN + 16];

			(void)pathf(p, sizeof(p), "%s%s", to, side[k]);
			if (unlink(p) < 0 && errno != ENOENT) {
				snprintf(err, errsz, "%s: %s", p, strerror(errno));
				unlink(tmp);
				return -1;
			}
		}
	}
	if (rename(tmp, to) < 0) {
		snprintf(err, errsz, "%s: rename: %s", to, strerror(errno));
		unlink(tmp);
		return -1;
	}
	return 0;
}

static int make_owned_dir(const char *path, mode_t mode, const struct passwd *pw, char *err,
			  size_t errsz)
{
	if (mkdir(path, mode) == 0) {
		if (pw != NULL && chown(path, pw->pw_uid, pw->pw_gid) < 0) {
			snprintf(err, errsz, "%s: chown: %s", path, strerror(errno));
			return -1;
		}
		return 0;
	}
	if (errno != EEXIST) {
		snprintf(err, errsz, "%s: %s", path, strerror(errno));
		return -1;
	}
	return 0;
}

static int do_restore(const struct conf *conf, const char *src, int force, char *err,
		      size_t errsz)
{
	static const char *const dirs[] = { "spool", "spool/incoming", "spool/queue",
					    "spool/quarantine", "tls", "secrets", NULL };
	char path[PATH_MAX_LEN];
	struct entry *e = NULL;
	struct passwd *pw = NULL;
	json_t *m = NULL;
	size_t n = 0, i, nq = 0, nz = 0, ns = 0;
	int lock_fd = -1;
	int rc = -1;
	const char *data_dir = conf->data_dir;

	if (read_manifest(src, &m, &e, &n, err, errsz) < 0)
		return -1;
	if (verify(src, e, n, err, errsz) < 0) {
		size_t len = strlen(err);

		snprintf(err + len, errsz - len, "; nothing was restored");
		goto out;
	}
	/* Files restored as root belong to the user moatd runs as. */
	if (geteuid() == 0 && conf->user[0] != '\0') {
		pw = getpwnam(conf->user);
		if (pw == NULL) {
			snprintf(err, errsz, "user %s: no such user", conf->user);
			goto out;
		}
	}
	if (make_owned_dir(data_dir, 0750, pw, err, errsz) < 0)
		goto out;
	/* The lock moatd takes at start: held, no moatd can start meanwhile. */
	(void)pathf(path, sizeof(path), "%s/moatd.lock", data_dir);
	lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0640);
	if (lock_fd < 0) {
		snprintf(err, errsz, "%s: %s", path, strerror(errno));
		goto out;
	}
	if (flock(lock_fd, LOCK_EX | LOCK_NB) < 0) {
		snprintf(err, errsz, "moatd is running on data_dir %s; stop it first", data_dir);
		goto out;
	}
	if (pw != NULL && fchown(lock_fd, pw->pw_uid, pw->pw_gid) < 0) {
		snprintf(err, errsz, "%s: chown: %s", path, strerror(errno));
		goto out;
	}
	(void)pathf(path, sizeof(path), "%s/moat.db", data_dir);
	if (access(path, F_OK) == 0) {
		if (!force) {
			snprintf(err, errsz, "data_dir %s already has a database; restore does not"
				 " replace it without --force", data_dir);
			goto out;
		}
		/* What the old database named goes with it. */
		for (i = 1; i <= 3; i++) {
			(void)pathf(path, sizeof(path), "%s/%s", data_dir, dirs[i]);
			if (empty_dir(path, err, errsz) < 0) {
				if (err[0] == '\0')
					snprintf(err, errsz, "%s: %s", path, strerror(errno));
				goto out;
			}
		}
	}
	for (i = 0; dirs[i] != NULL; i++) {
		(void)pathf(path, sizeof(path), "%s/%s", data_dir, dirs[i]);
		if (make_owned_dir(path, i >= 4 ? 0700 : 0750, pw, err, errsz) < 0)
			goto out;
	}
	/* Messages and key material first, the database last. */
	for (i = 0; i < n; i++) {
		if (strcmp(e[i].path, "moat.db") == 0)
			continue;
		if (place(src, data_dir, &e[i], pw, err, errsz) < 0)
			goto out;
		if (strncmp(e[i].path, "spool/queue/", 12) == 0)
			nq++;
		else if (strncmp(e[i].path, "spool/quarantine/", 17) == 0)
			nz++;
		else
			ns++;
	}
	for (i = 0; dirs[i] != NULL; i++) {
		(void)pathf(path, sizeof(path), "%s/%s", data_dir, dirs[i]);
		if (fsync_dir(path) < 0) {
			snprintf(err, errsz, "%s: fsync: %s", path, strerror(errno));
			goto out;
		}
	}
	for (i = 0; i < n; i++) {
		if (strcmp(e[i].path, "moat.db") == 0 &&
		    place(src, data_dir, &e[i], pw, err, errsz) < 0)
			goto out;
	}
	if (fsync_dir(data_dir) < 0) {
		snprintf(err, errsz, "%s: fsync: %s", data_dir, strerror(errno));
		goto out;
	}
	printf("restored %s into %s: queue_files=%zu quarantine_files=%zu secrets=%zu;"
	       " start moatd on it\n", src, data_dir, nq, nz, ns);
	rc = 0;
out:
	if (lock_fd >= 0)
		close(lock_fd);
	free(e);
	json_decref(m);
	return rc;
}

int cli_restore_main(int argc, char **argv)
{
	struct conf conf;
	char err[1600] = "";
	const char *src = NULL;
	int force = 0;
	int i;

	if (cli_load_conf(&argc, &argv, &conf, err, sizeof(err)) < 0) {
		fprintf(stderr, "moatd restore: %s\n", err);
		return 1;
	}
	for (i = 0; i < argc; i++) {
		if (strcmp(argv[i], "help") == 0 || strcmp(argv[i], "-h") == 0 ||
		    strcmp(argv[i], "--help") == 0) {
			restore_usage(stdout);
			return 0;
		}
		if (strcmp(argv[i], "--force") == 0) {
			force = 1;
		} else if (argv[i][0] == '-' || src != NULL || argv[i][0] == '\0') {
			restore_usage(stderr);
			return 2;
		} else {
			src = argv[i];
		}
	}
	if (src == NULL) {
		restore_usage(stderr);
		return 2;
	}
	if (strlen(src) > NAME_MAX_LEN || strlen(conf.data_dir) > NAME_MAX_LEN) {
		fprintf(stderr, "moatd restore: path too long (at most %d bytes)\n", NAME_MAX_LEN);
		return 2;
	}
	if (do_restore(&conf, src, force, err, sizeof(err)) < 0) {
		fprintf(stderr, "moatd restore: %s\n", err);
		return 1;
	}
	return 0;
}
