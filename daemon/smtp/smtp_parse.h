/*
 * smtp_parse: pure parsers for what an SMTP client sends in command mode —
 * the command verb, MAIL/RCPT paths (RFC 5321 4.1.2, RFC 6531 for UTF-8)
 * and their ESMTP parameters.  No I/O, no allocation: unit-tested and
 * fuzzed on their own.  Input is (pointer, length) without the CRLF.
 */
#ifndef MOAT_SMTP_PARSE_H
#define MOAT_SMTP_PARSE_H

#include <stddef.h>
#include <stdint.h>

#define SMTP_LOCAL_MAX 64
#define SMTP_DOMAIN_MAX 255
#define SMTP_PATH_MAX 256

enum smtp_verb {
	SMTP_V_UNKNOWN,
	SMTP_V_HELO,
	SMTP_V_EHLO,
	SMTP_V_MAIL,
	SMTP_V_RCPT,
	SMTP_V_DATA,
	SMTP_V_RSET,
	SMTP_V_NOOP,
	SMTP_V_QUIT,
	SMTP_V_HELP,
	SMTP_V_VRFY,
	SMTP_V_EXPN,
	SMTP_V_STARTTLS,
	SMTP_V_AUTH,
	SMTP_V_BDAT,
};

struct smtp_command {
	enum smtp_verb verb;
	const char *args; /* after the verb and its separating spaces */
	size_t argslen;
};

/* Always succeeds for a line without NUL; unknown verbs are SMTP_V_UNKNOWN. */
void smtp_parse_command(const char *line, size_t len, struct smtp_command *cmd);

enum smtp_parse_result {
	SMTP_PARSE_OK,
	SMTP_PARSE_SYNTAX,    /* no "FROM:" / "TO:" or no <path>: 501 5.5.4 */
	SMTP_PARSE_ADDRESS,   /* bad mailbox: 501 5.1.7 (MAIL) / 5.1.3 (RCPT) */
	SMTP_PARSE_PARAM,     /* unknown or bad parameter: 555 5.5.4 */
	SMTP_PARSE_UTF8,      /* non-ASCII address without SMTPUTF8: 553 5.6.7 */
};

enum smtp_body { SMTP_BODY_NONE, SMTP_BODY_7BIT, SMTP_BODY_8BITMIME };

struct smtp_mail_args {
	char addr[SMTP_PATH_MAX + 1]; /* "" for the null sender */
	int64_t size;                 /* -1 when SIZE= was not given */
	enum smtp_body body;
	int smtputf8;
};

struct smtp_rcpt_args {
	char addr[SMTP_PATH_MAX + 1];
};

/* args: what follows "MAIL " e.g. "FROM:<a@b.example> SIZE=100". */
enum smtp_parse_result smtp_parse_mail(const char *args, size_t len,
				       struct smtp_mail_args *out);
/* args: what follows "RCPT "; smtputf8 from the transaction's MAIL. */
enum smtp_parse_result smtp_parse_rcpt(const char *args, size_t len, int smtputf8,
				       struct smtp_rcpt_args *out);

/*
 * Validate a mailbox "local@domain" (no angle brackets).  allow_utf8
 * permits UTF-8 in the local part and U-labels in the domain.
 * Returns SMTP_PARSE_OK, SMTP_PARSE_ADDRESS or SMTP_PARSE_UTF8.
 */
enum smtp_parse_result smtp_check_mailbox(const char *s, size_t len, int allow_utf8);

/* A HELO/EHLO argument: a domain or an address literal, printable ASCII. */
int smtp_check_helo(const char *s, size_t len);

/* Is s (len bytes) well-formed UTF-8 without overlongs or surrogates? */
int smtp_utf8_valid(const char *s, size_t len);

#endif
