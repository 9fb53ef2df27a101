/*
 * smtp_server_dns: hands the loop's resolver to the SMTP server (main.c
 * creates it; sessions use srv->dns for their DNS checks).
 */
#include "smtp.h"
#include "smtp_internal.h"

void smtp_server_set_dns(struct smtp_server *srv, struct dns *dns)
{
	srv->dns = dns;
}
