/*
 * libFuzzer harness: one SMTP command line through every command-mode
 * parser (verb, MAIL and RCPT with and without SMTPUTF8, HELO).
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "smtp/smtp_parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *line = (const char *)data;
	struct smtp_command cmd;
	struct smtp_mail_args mail;
	struct smtp_rcpt_args rcpt;

	if (size > 4096)
		return 0;
	smtp_parse_command(line, size, &cmd);
	if (smtp_parse_mail(cmd.args, cmd.argslen, &mail) == SMTP_PARSE_OK &&
	    strlen(mail.addr) > SMTP_PATH_MAX)
		__builtin_trap();
	smtp_parse_rcpt(cmd.args, cmd.argslen, 0, &rcpt);
	if (smtp_parse_rcpt(cmd.args, cmd.argslen, 1, &rcpt) == SMTP_PARSE_OK &&
	    strlen(rcpt.addr) > SMTP_PATH_MAX)
		__builtin_trap();
	smtp_check_helo(cmd.args, cmd.argslen);
	smtp_utf8_valid(line, size);
	return 0;
}
