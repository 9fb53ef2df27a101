/*
 * policy_settings: the names of the policy lists and settings, each
 * declared once here with its type, default and range (the CLI, the
 * snapshot loader and docs/policy.md follow this table), and the pure
 * conversion of stored (key, value) text into struct policy_settings.
 */
#include "policy_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../util/util.h"

const struct policy_list_kind policy_list_kinds[] = {
	{ "conn_allow", POLICY_LT_HOST, "clients always let in (and exempt from DNSBL,"
	  " reverse-DNS and HELO checks)" },
	{ "conn_deny", POLICY_LT_HOST, "clients refused at connect (554 5.7.1)" },
	{ "sender_allow", POLICY_LT_MAIL, "envelope senders exempt from sender_deny" },
	{ "sender_deny", POLICY_LT_MAIL, "envelope senders refused at MAIL (550 5.7.1)" },
	{ "rcpt_allow", POLICY_LT_MAIL, "recipients exempt from rcpt_deny" },
	{ "rcpt_deny", POLICY_LT_MAIL, "recipients refused at RCPT (550 5.7.1)" },
	{ "local_domain", POLICY_LT_DOMAIN, "domains we receive for; the directory is"
	  " their truth" },
	{ "relay_net", POLICY_LT_HOST, "clients that may relay to other domains" },
	{ "relay_exempt", POLICY_LT_HOST, "clients excluded from relay enforcement" },
	{ "relay_dest_allow", POLICY_LT_DOMAIN, "if any: the only domains we relay to" },
	{ "relay_dest_deny", POLICY_LT_DOMAIN, "domains we never relay to" },
};
const size_t policy_list_kind_count = ARRAY_LEN(policy_list_kinds);

const struct policy_list_kind *policy_list_kind_find(const char *name)
{
	size_t i;

	for (i = 0; i < policy_list_kind_count; i++)
		if (strcmp(policy_list_kinds[i].name, name) == 0)
			return &policy_list_kinds[i];
	return NULL;
}

const struct policy_setting_def policy_setting_defs[] = {
	{ "conn_precedence", POLICY_ST_ENUM, "allow", 0, 0, "allow|deny",
	  "which wins when a client is on conn_allow and conn_deny" },
	{ "conn_deny_text", POLICY_ST_TEXT, "Connection refused by policy", 0, 0, NULL,
	  "reply text for conn_deny" },
	{ "sender_precedence", POLICY_ST_ENUM, "allow", 0, 0, "allow|deny",
	  "which wins when a sender is on both lists" },
	{ "sender_deny_text", POLICY_ST_TEXT, "Sender address rejected by policy", 0, 0, NULL,
	  "reply text for sender_deny" },
	{ "rcpt_precedence", POLICY_ST_ENUM, "allow", 0, 0, "allow|deny",
	  "which wins when a recipient is on both lists" },
	{ "rcpt_deny_text", POLICY_ST_TEXT, "Recipient address rejected by policy", 0, 0, NULL,
	  "reply text for rcpt_deny" },
	{ "reverse_lookup", POLICY_ST_BOOL, "yes", 0, 0, NULL,
	  "look up every client's PTR and confirm it forward" },
	{ "require_ptr", POLICY_ST_BOOL, "no", 0, 0, NULL,
	  "refuse clients without a PTR record" },
	{ "mailbox_forward_external", POLICY_ST_BOOL, "no", 0, 0, NULL,
	  "mailbox rules may forward to addresses outside the local domains" },
	{ "require_ptr_text", POLICY_ST_TEXT, "Client host {ip} has no reverse DNS", 0, 0,
	  NULL, "reply text for require_ptr" },
	{ "require_fcrdns", POLICY_ST_BOOL, "no", 0, 0, NULL,
	  "refuse clients whose PTR name does not resolve back to them" },
	{ "require_fcrdns_text", POLICY_ST_TEXT,
	  "Client host {ip} reverse DNS does not match forward DNS", 0, 0, NULL,
	  "reply text for require_fcrdns" },
	{ "helo_syntax", POLICY_ST_BOOL, "yes", 0, 0, NULL,
	  "HELO must be a domain or an address literal" },
	{ "helo_reject_own", POLICY_ST_BOOL, "no", 0, 0, NULL,
	  "refuse a HELO with our own name or address" },
	{ "helo_reject_bare_ip", POLICY_ST_BOOL, "no", 0, 0, NULL,
	  "refuse a HELO that is an IP address without brackets" },
	{ "helo_require_resolve", POLICY_ST_BOOL, "no", 0, 0, NULL,
	  "refuse a HELO name with no A/AAAA record" },
	{ "helo_text", POLICY_ST_TEXT, "Helo command rejected", 0, 0, NULL,
	  "reply text for the HELO checks" },
	{ "dnsbl_text", POLICY_ST_TEXT, "Client host {ip} blocked using {zone}", 0, 0, NULL,
	  "reply text for a DNSBL site without its own message" },
	{ "dnsbl_threshold", POLICY_ST_INT, "1", 1, 1000, NULL,
	  "sum of weights of listing refuse-sites that refuses a client" },
	{ "recipient_verify", POLICY_ST_BOOL, "yes", 0, 0, NULL,
	  "local recipients must be in the directory" },
	{ "unknown_rcpt_text", POLICY_ST_TEXT, "Recipient address rejected: user unknown",
	  0, 0, NULL, "reply text for an unknown local recipient" },
	{ "allow_untrusted_routing", POLICY_ST_BOOL, "no", 0, 0, NULL,
	  "accept %, ! and a quoted @ in a local recipient's local part from clients that are"
	  " not on conn_allow, relay_net or relay_exempt and not authenticated" },
	{ "postmaster_address", POLICY_ST_TEXT, "", 0, 0, NULL,
	  "where RCPT TO:<Postmaster> goes; empty: postmaster@ the first local_domain" },
	{ "group_mail", POLICY_ST_ENUM, "internal", 0, 0, "internal|anyone",
	  "who may send to directory groups: authenticated clients only, or anyone" },
	{ "group_text", POLICY_ST_TEXT, "Mail to this group is not accepted from outside",
	  0, 0, NULL, "reply text for mail to a group" },
	{ "relay_enforce", POLICY_ST_ENUM, "all", 0, 0, "all|external|none",
	  "which clients relay rules apply to" },
	{ "relay_auth", POLICY_ST_BOOL, "yes", 0, 0, NULL,
	  "authenticated clients may relay" },
	{ "relay_text", POLICY_ST_TEXT, "Relay access denied", 0, 0, NULL,
	  "reply text for a refused relay" },
	{ "max_recipients", POLICY_ST_INT, "0", 0, 100000, NULL,
	  "recipients per message (452 4.5.3); 0: the config limit only" },
	{ "client_max_sessions", POLICY_ST_INT, "0", 0, 100000, NULL,
	  "sessions at once per client address; 0: the config limit only" },
	{ "client_max_rate", POLICY_ST_INT, "0", 0, 1000000, NULL,
	  "connections per minute per client address; 0: no limit" },
	{ "trusted_reserve", POLICY_ST_INT, "10", 0, 100000, NULL,
	  "sessions of max_sessions kept for conn_allow and relay_net clients" },
	{ "harvest_threshold", POLICY_ST_INT, "20", 0, 100000, NULL,
	  "unknown recipients per client in harvest_window before deferral; 0: off" },
	{ "harvest_window", POLICY_ST_INT, "600", 1, 86400, NULL,
	  "seconds of the harvesting window" },
	{ "harvest_tarpit", POLICY_ST_INT, "2000", 0, 60000, NULL,
	  "milliseconds every reply to a harvesting client is delayed" },
	{ "harvest_text", POLICY_ST_TEXT, "Too many unknown recipients, try again later",
	  0, 0, NULL, "reply text for a deferred harvester" },
	{ "quarantine_user_release_kinds", POLICY_ST_TEXT, "spam,policy", 0, 0, NULL,
	  "quarantine kinds (comma list of spam, policy, virus, attachment) an end user may"
	  " release from their own quarantine (docs/quarantine.md)" },
	{ "delay_reject", POLICY_ST_BOOL, "yes", 0, 0, NULL,
	  "give refusals decided at connect (client lists, reverse DNS, DNSBL) and HELO at"
	  " each RCPT instead, so the message log names the sender and recipients" },
	{ "delay_reject_max", POLICY_ST_INT, "20", 1, 1000, NULL,
	  "delayed refusals a client gets (RCPT, AUTH) before 421 4.7.0 and the end of the"
	  " session" },
	{ "alert_recipients", POLICY_ST_TEXT, "", 0, 0, NULL,
	  "who gets account alert mail (comma list of addresses); empty: the directory's"
	  " administrators, else the postmaster" },
	{ "alert_webhook_url", POLICY_ST_TEXT, "", 0, 0, NULL,
	  "http:// or https:// URL account alerts are POSTed to (signed JSON); empty: none" },
	{ "alert_webhook_secret", POLICY_ST_TEXT, "", 0, 0, NULL,
	  "HMAC-SHA256 key of the webhook's X-Moat-Signature (16..300 characters); empty:"
	  " one is generated at the first alert" },
	{ "alert_webhook_insecure", POLICY_ST_BOOL, "no", 0, 0, NULL,
	  "do not check the webhook server's TLS certificate" },
	{ "score_enabled", POLICY_ST_BOOL, "yes", 0, 0, NULL,
	  "give every message a score at end of DATA (docs/score.md)" },
	{ "sender_auth", POLICY_ST_BOOL, "yes", 0, 0, NULL,
	  "check SPF, DKIM and DMARC of mail from outside (not authenticated, relay_net or"
	  " conn_allow clients) and add their parts to the score" },
	{ "sender_auth_timeout", POLICY_ST_INT, "5", 1, 60, NULL,
	  "seconds the end of DATA waits for SPF, DKIM and DMARC answers; after that the"
	  " message is judged without them" },
	{ "score_headers", POLICY_ST_ENUM, "always", 0, 0, "always|tagged|never",
	  "when inbound mail gets X-Moat-Score and Authentication-Results: always, only when"
	  " the score reaches its tag threshold, or never" },
	{ "score_tag", POLICY_ST_NUM, "5", -1000, 1000, NULL,
	  "score at which mail is tagged (subject prefix and X-Spam-Flag: YES)" },
	{ "score_tag_subject", POLICY_ST_TEXT, "[SPAM] ", 0, 0, NULL,
	  "subject prefix of tagged mail; empty: the subject is left alone" },
	{ "score_quarantine", POLICY_ST_NUM, "10", -1000, 1000, NULL,
	  "score at which mail is quarantined (kind spam)" },
	{ "score_refuse", POLICY_ST_NUM, "15", -1000, 1000, NULL,
	  "score at which mail is refused at end of DATA (550 5.7.1)" },
	{ "score_greylist", POLICY_ST_NUM, "4", -1000, 1000, NULL,
	  "inbound mail scoring from here to below score_refuse is greylisted" },
	{ "score_spf_pass", POLICY_ST_NUM, "-0.5", -100, 100, NULL, "points for SPF pass" },
	{ "score_spf_fail", POLICY_ST_NUM, "2", -100, 100, NULL, "points for SPF fail" },
	{ "score_spf_softfail", POLICY_ST_NUM, "1", -100, 100, NULL,
	  "points for SPF softfail" },
	{ "score_dkim_pass", POLICY_ST_NUM, "-0.5", -100, 100, NULL,
	  "points for a valid DKIM signature" },
	{ "score_dkim_fail", POLICY_ST_NUM, "2", -100, 100, NULL,
	  "points for DKIM signatures that all fail" },
	{ "score_dmarc_pass", POLICY_ST_NUM, "-1", -100, 100, NULL, "points for DMARC pass" },
	{ "score_dmarc_fail", POLICY_ST_NUM, "4", -100, 100, NULL,
	  "points for DMARC fail where the domain asks for quarantine or reject" },
	{ "score_dmarc_fail_none", POLICY_ST_NUM, "1", -100, 100, NULL,
	  "points for DMARC fail where the domain's policy is none" },
	{ "score_bayes_spam", POLICY_ST_NUM, "5", 0, 100, NULL,
	  "points the statistical filter adds at spam probability 1 (in proportion above 0.5)" },
	{ "score_bayes_ham", POLICY_ST_NUM, "3", 0, 100, NULL,
	  "points the statistical filter takes at spam probability 0 (in proportion below 0.5)" },
	{ "score_account", POLICY_ST_NUM, "0.25", 0, 100, NULL,
	  "points per point of the sending account's defence score" },
	{ "greylist_delay", POLICY_ST_INT, "300", 0, 86400, NULL,
	  "seconds a greylisted sender must wait before its retry is accepted" },
	{ "greylist_window", POLICY_ST_INT, "86400", 60, 604800, NULL,
	  "seconds after the delay within which the retry must come" },
	{ "greylist_lifetime", POLICY_ST_INT, "2592000", 3600, 31536000, NULL,
	  "seconds a passed triplet or an auto-allowed network is kept after its last use" },
	{ "greylist_auto_allow", POLICY_ST_INT, "5", 0, 1000, NULL,
	  "passed retries after which a client network is no longer greylisted; 0: never" },
	{ "bayes_min_learned", POLICY_ST_INT, "200", 0, 100000, NULL,
	  "spam and ham messages a model must have learned (each) before it is used" },
	{ "bayes_autolearn", POLICY_ST_BOOL, "no", 0, 0, NULL,
	  "learn mail whose score is confidently spam or ham" },
	{ "bayes_autolearn_spam", POLICY_ST_NUM, "12", -1000, 1000, NULL,
	  "auto-learn as spam at this score or above" },
	{ "bayes_autolearn_ham", POLICY_ST_NUM, "-1", -1000, 1000, NULL,
	  "auto-learn as ham at this score or below" },
	{ "bayes_learn_on_release", POLICY_ST_BOOL, "yes", 0, 0, NULL,
	  "a release of spam-kind quarantined mail learns it as ham" },
};
const size_t policy_setting_count = ARRAY_LEN(policy_setting_defs);

const struct policy_setting_def *policy_setting_find(const char *key)
{
	size_t i;

	for (i = 0; i < policy_setting_count; i++)
		if (strcmp(policy_setting_defs[i].key, key) == 0)
			return &policy_setting_defs[i];
	return NULL;
}

static int parse_bool(const char *v, int *out)
{
	if (strcmp(v, "yes") == 0 || strcmp(v, "on") == 0 || strcmp(v, "true") == 0 ||
	    strcmp(v, "1") == 0) {
		*out = 1;
		return 0;
	}
	if (strcmp(v, "no") == 0 || strcmp(v, "off") == 0 || strcmp(v, "false") == 0 ||
	    strcmp(v, "0") == 0) {
		*out = 0;
		return 0;
	}
	return -1;
}

/* A decimal number: optional '-', digits, optional '.' and at most 3 digits. */
static int parse_num(const char *v, int64_t min, int64_t max, double *out)
{
	const char *p = v;
	char *end;
	double d;

	if (*p == '-')
		p++;
	if (*p < '0' || *p > '9' || strlen(v) > 16)
		return -1;
	while (*p >= '0' && *p <= '9')
		p++;
	if (*p == '.') {
		p++;
		if (*p < '0' || *p > '9')
			return -1;
		while (*p >= '0' && *p <= '9' && p - strchr(v, '.') <= 3)
			p++;
	}
	if (*p != '\0')
		return -1;
	errno = 0;
	d = strtod(v, &end);
	if (errno != 0 || *end != '\0' || d < (double)min || d > (double)max)
		return -1;
	*out = d;
	return 0;
}

static int parse_int(const char *v, int64_t min, int64_t max, int64_t *out)
{
	char *end;
	long long n;

	if (*v < '0' || *v > '9')
		return -1;
	errno = 0;
	n = strtoll(v, &end, 10);
	if (errno != 0 || *end != '\0' || n < min || n > max)
		return -1;
	*out = n;
	return 0;
}

/* Is v one of "a|b|c"? */
static int enum_index(const char *choices, const char *v)
{
	size_t vlen = strlen(v);
	const char *p = choices;
	int i = 0;

	while (*p != '\0') {
		size_t n = strcspn(p, "|");

		if (n == vlen && strncmp(p, v, n) == 0)
			return i;
		p += n;
		if (*p == '|')
			p++;
		i++;
	}
	return -1;
}

/* "" (the default) or local@domain with a plain local part. */
static int postmaster_check(const char *value, char *err, size_t errsz)
{
	const char *at = strrchr(value, '@');
	size_t i;

	if (value[0] == '\0')
		return 0;
	if (at == NULL || at == value || at - value > 64 ||
	    !policy_domain_ok(at + 1, strlen(at + 1))) {
		snprintf(err, errsz, "postmaster_address: expected local@domain or empty");
		return -1;
	}
	for (i = 0; value + i < at; i++) {
		unsigned char c = (unsigned char)value[i];

		if (c <= ' ' || c >= 127 || strchr("\"@%!(),:;<>[\\]", c) != NULL) {
			snprintf(err, errsz, "postmaster_address: expected local@domain or empty");
			return -1;
		}
	}
	return 0;
}

/* The alert settings: empty (the default) or a well-formed value. */
static int alert_check(const char *key, const char *value, char *err, size_t errsz)
{
	size_t len = strlen(value), i;

	if (len == 0)
		return 0;
	for (i = 0; i < len; i++) {
		if ((unsigned char)value[i] < ' ' || (unsigned char)value[i] >= 127) {
			snprintf(err, errsz, "%s: text must be printable ASCII on one line", key);
			return -1;
		}
	}
	if (strcmp(key, "alert_webhook_url") == 0) {
		size_t scheme = strncmp(value, "http://", 7) == 0 ? 7
			: strncmp(value, "https://", 8) == 0 ? 8 : 0;

		if (len > 1000 || scheme == 0 || strchr(value, ' ') != NULL ||
		    strchr(value, '@') != NULL || strchr("/?#:", value[scheme]) != NULL) {
			snprintf(err, errsz, "%s: expected http://host[:port][/path] or https://..."
				 " (no user information)", key);
			return -1;
		}
		return 0;
	}
	if (strcmp(key, "alert_webhook_secret") == 0) {
		if (len < 16 || len > 300) {
			snprintf(err, errsz, "%s: 16 to 300 characters", key);
			return -1;
		}
		return 0;
	}
	/* alert_recipients: local@domain, comma separated */
	{
		const char *p = value;

		if (len > 1000) {
			snprintf(err, errsz, "%s: at most 1000 characters", key);
			return -1;
		}
		while (*p != '\0') {
			const char *at;
			size_t n;

			while (*p == ',' || *p == ' ')
				p++;
			n = strcspn(p, ", ");
			if (n == 0)
				break;
			at = memchr(p, '@', n);
			if (at == NULL || at == p || memchr(at + 1, '@', n - (size_t)(at + 1 - p)) ||
			    !policy_domain_ok(at + 1, n - (size_t)(at + 1 - p))) {
				snprintf(err, errsz, "%s: expected addresses local@domain, comma"
					 " separated", key);
				return -1;
			}
			p += n;
		}
	}
	return 0;
}

int policy_setting_check(const char *key, const char *value, char *err, size_t errsz)
{
	const struct policy_setting_def *d = policy_setting_find(key);
	int64_t n;
	int b;
	size_t i;

	if (d == NULL) {
		snprintf(err, errsz, "unknown setting \"%s\" (see `moatd policy show`)", key);
		return -1;
	}
	switch (d->type) {
	case POLICY_ST_BOOL:
		if (parse_bool(value, &b) < 0) {
			snprintf(err, errsz, "%s: expected yes or no", key);
			return -1;
		}
		return 0;
	case POLICY_ST_INT:
		if (parse_int(value, d->min, d->max, &n) < 0) {
			snprintf(err, errsz, "%s: expected an integer from %lld to %lld", key,
				 (long long)d->min, (long long)d->max);
			return -1;
		}
		return 0;
	case POLICY_ST_ENUM:
		if (enum_index(d->choices, value) < 0) {
			snprintf(err, errsz, "%s: expected one of %s", key, d->choices);
			return -1;
		}
		return 0;
	case POLICY_ST_NUM: {
		double dv;

		if (parse_num(value, d->min, d->max, &dv) < 0) {
			snprintf(err, errsz, "%s: expected a number from %lld to %lld (at most 3"
				 " decimals)", key, (long long)d->min, (long long)d->max);
			return -1;
		}
		return 0;
	}
	case POLICY_ST_TEXT:
		if (strcmp(key, "score_tag_subject") == 0 && value[0] == '\0')
			return 0;
		if (strcmp(key, "score_tag_subject") == 0 && strlen(value) > 60) {
			snprintf(err, errsz, "%s: at most 60 characters", key);
			return -1;
		}
		if (strcmp(key, "postmaster_address") == 0)
			return postmaster_check(value, err, errsz);
		if (strncmp(key, "alert_", 6) == 0)
			return alert_check(key, value, err, errsz);
		if (value[0] == '\0' || strlen(value) > 300) {
			snprintf(err, errsz, "%s: text must be 1 to 300 characters", key);
			return -1;
		}
		for (i = 0; value[i] != '\0'; i++) {
			if ((unsigned char)value[i] < ' ' || (unsigned char)value[i] >= 127) {
				snprintf(err, errsz, "%s: text must be printable ASCII on one line",
					 key);
				return -1;
			}
		}
		return 0;
	}
	return -1;
}

void policy_settings_defaults(struct policy_settings *s)
{
	size_t i;

	memset(s, 0, sizeof(*s));
	for (i = 0; i < policy_setting_count; i++)
		policy_settings_apply(s, policy_setting_defs[i].key, policy_setting_defs[i].def);
}

void policy_settings_apply(struct policy_settings *s, const char *key, const char *value)
{
	const struct policy_setting_def *d = policy_setting_find(key);
	char err[200];
	int64_t n = 0;
	double num = 0;
	int b = 0;
	int e = 0;

	if (d == NULL || policy_setting_check(key, value, err, sizeof(err)) < 0)
		return;
	if (d->type == POLICY_ST_BOOL)
		parse_bool(value, &b);
	else if (d->type == POLICY_ST_INT)
		parse_int(value, d->min, d->max, &n);
	else if (d->type == POLICY_ST_ENUM)
		e = enum_index(d->choices, value);
	else if (d->type == POLICY_ST_NUM)
		parse_num(value, d->min, d->max, &num);

#define TEXT(k, f) else if (strcmp(key, k) == 0) strlcpy_s(s->f, value, sizeof(s->f))
#define BOOL(k, f) else if (strcmp(key, k) == 0) s->f = b
#define INT(k, f) else if (strcmp(key, k) == 0) s->f = n
#define NUM(k, f) else if (strcmp(key, k) == 0) s->f = num
	if (strcmp(key, "conn_precedence") == 0)
		s->conn_allow_wins = e == 0;
	else if (strcmp(key, "sender_precedence") == 0)
		s->sender_allow_wins = e == 0;
	else if (strcmp(key, "rcpt_precedence") == 0)
		s->rcpt_allow_wins = e == 0;
	else if (strcmp(key, "group_mail") == 0)
		s->group_mail_external = e == 1;
	else if (strcmp(key, "relay_enforce") == 0)
		s->relay_enforce = e == 0 ? POLICY_RELAY_ALL
			: e == 1 ? POLICY_RELAY_EXTERNAL : POLICY_RELAY_NONE;
	else if (strcmp(key, "dnsbl_threshold") == 0)
		s->dnsbl_threshold = (int)n;
	else if (strcmp(key, "score_headers") == 0)
		s->score_headers = e;
	TEXT("conn_deny_text", conn_deny_text);
	TEXT("sender_deny_text", sender_deny_text);
	TEXT("rcpt_deny_text", rcpt_deny_text);
	BOOL("reverse_lookup", reverse_lookup);
	BOOL("require_ptr", require_ptr);
	TEXT("require_ptr_text", require_ptr_text);
	BOOL("require_fcrdns", require_fcrdns);
	TEXT("require_fcrdns_text", require_fcrdns_text);
	BOOL("helo_syntax", helo_required_syntax);
	BOOL("helo_reject_own", helo_reject_own);
	BOOL("helo_reject_bare_ip", helo_reject_bare_ip);
	BOOL("helo_require_resolve", helo_require_resolve);
	TEXT("helo_text", helo_text);
	TEXT("dnsbl_text", dnsbl_default_text);
	BOOL("recipient_verify", recipient_verify);
	TEXT("unknown_rcpt_text", unknown_rcpt_text);
	BOOL("allow_untrusted_routing", allow_untrusted_routing);
	TEXT("postmaster_address", postmaster_address);
	TEXT("group_text", group_text);
	BOOL("relay_auth", relay_auth);
	TEXT("relay_text", relay_text);
	INT("max_recipients", max_recipients);
	INT("client_max_sessions", client_max_sessions);
	INT("client_max_rate", client_max_rate);
	INT("trusted_reserve", trusted_reserve);
	INT("harvest_threshold", harvest_threshold);
	INT("harvest_window", harvest_window_s);
	INT("harvest_tarpit", harvest_tarpit_ms);
	TEXT("harvest_text", harvest_text);
	BOOL("delay_reject", delay_reject);
	INT("delay_reject_max", delay_reject_max);
	BOOL("score_enabled", score_enabled);
	BOOL("sender_auth", sender_auth);
	INT("sender_auth_timeout", sender_auth_timeout_s);
	NUM("score_tag", score_tag);
	TEXT("score_tag_subject", score_tag_subject);
	NUM("score_quarantine", score_quarantine);
	NUM("score_refuse", score_refuse);
	NUM("score_greylist", score_greylist);
	NUM("score_spf_pass", score_spf_pass);
	NUM("score_spf_fail", score_spf_fail);
	NUM("score_spf_softfail", score_spf_softfail);
	NUM("score_dkim_pass", score_dkim_pass);
	NUM("score_dkim_fail", score_dkim_fail);
	NUM("score_dmarc_pass", score_dmarc_pass);
	NUM("score_dmarc_fail", score_dmarc_fail);
	NUM("score_dmarc_fail_none", score_dmarc_fail_none);
	NUM("score_bayes_spam", score_bayes_spam);
	NUM("score_bayes_ham", score_bayes_ham);
	NUM("score_account", score_account);
	INT("greylist_delay", greylist_delay_s);
	INT("greylist_window", greylist_window_s);
	INT("greylist_lifetime", greylist_lifetime_s);
	INT("greylist_auto_allow", greylist_auto_allow);
	INT("bayes_min_learned", bayes_min_learned);
	BOOL("bayes_autolearn", bayes_autolearn);
	NUM("bayes_autolearn_spam", bayes_autolearn_spam);
	NUM("bayes_autolearn_ham", bayes_autolearn_ham);
	BOOL("bayes_learn_on_release", bayes_learn_on_release);
#undef TEXT
#undef BOOL
#undef INT
#undef NUM
}
