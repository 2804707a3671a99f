/*
 * Listen addresses in the configuration: one ordered list of {address,
 * options} (struct hd_listen) from the listen keys of the file and the
 * command-line options that replace them, kind by kind.
 */
#include <stdio.h>
#include <string.h>

#include "hellod.h"

/*
 * The keys that give listen addresses, one per kind, and the command-line
 * options that replace them.  A kind is a combination of HD_LO_* options.
 */
static const struct listen_key {
	unsigned	 lk_opts;
	const char	*lk_section;
	const char	*lk_name;
	const char	*lk_option;	/* NULL: none */
} listen_keys[] = {
	{ HD_LO_PLAIN, "server", "listen", "--listen" },
	{ HD_LO_PROXY, "server", "proxy_listen", "--proxy-listen" },
	{ HD_LO_STATUS, "status", "listen", NULL },
	{ HD_LO_STATUS | HD_LO_AGENT, "status", "agent_listen", NULL },
	{ HD_LO_TLS, "server", "tls_listen", "--tls-listen" },
	{ HD_LO_PROXY | HD_LO_TLS, "server", "tls_proxy_listen", NULL },
};

#define NLISTEN_KEYS	(sizeof(listen_keys) / sizeof(listen_keys[0]))

static const struct listen_key *
listen_key(unsigned opts)
{
	size_t	 i;

	for (i = 0; i < NLISTEN_KEYS; i++)
		if (listen_keys[i].lk_opts == opts)
			return &listen_keys[i];
	return NULL;
}

/* "[server] proxy_listen" for HD_LO_PROXY, for messages. */
const char *
config_listen_key(unsigned opts)
{
	static char		 buf[64];
	const struct listen_key	*lk = listen_key(opts);

	if (lk == NULL)
		return "?";
	snprintf(buf, sizeof(buf), "[%s] %s", lk->lk_section, lk->lk_name);
	return buf;
}

/* The configuration's addresses of one kind. */
unsigned
config_listen_count(const struct hd_config *cf, unsigned opts)
{
	unsigned	 i, n = 0;

	for (i = 0; i < cf->cf_nlisten; i++)
		if (cf->cf_listen[i].ln_opts == opts)
			n++;
	return n;
}

/* Drops the addresses of one kind, keeping the order of the others. */
static void
listen_drop(struct hd_config *cf, unsigned opts)
{
	unsigned	 i, n = 0;

	for (i = 0; i < cf->cf_nlisten; i++)
		if (cf->cf_listen[i].ln_opts != opts)
			cf->cf_listen[n++] = cf->cf_listen[i];
	cf->cf_nlisten = n;
}

/* An address given again: where it stands already, when of another kind. */
static void
dup_message(const struct hd_listen *first, unsigned opts, const char *tok,
    char *err, size_t errlen)
{
	char	 line[32] = "";

	if (first->ln_opts == opts) {
		snprintf(err, errlen, "duplicate address '%s'", tok);
		return;
	}
	if (first->ln_line > 0)
		snprintf(line, sizeof(line), ", line %d", first->ln_line);
	snprintf(err, errlen, "duplicate address '%s' (also %s%s)", tok,
	    config_listen_key(first->ln_opts), line);
}

/*
 * Appends the addresses of one value (separated by blanks or commas) to
 * the list, as addresses of kind opts from the given line (0: the
 * command line).  An address may stand in the list once, whatever its
 * kind.  A plain value must give an address; an empty PROXY or status
 * value adds none.  On error the list is unchanged.
 */
static int
set_addrs(struct hd_config *cf, unsigned opts, const char *v, int line,
    char *err, size_t errlen)
{
	char		 buf[1024], *tok, *save = NULL;
	struct hd_listen *ln;
	unsigned	 n = cf->cf_nlisten, nkind, i;

	if (strlen(v) >= sizeof(buf)) {
		snprintf(err, errlen, "value too long");
		return -1;
	}
	strcpy(buf, v);
	nkind = config_listen_count(cf, opts);
	for (tok = strtok_r(buf, " \t,", &save); tok != NULL;
	    tok = strtok_r(NULL, " \t,", &save)) {
		if (nkind == HD_MAX_LISTEN || n == HD_MAX_LISTENERS) {
			snprintf(err, errlen, "more than %d addresses",
			    HD_MAX_LISTEN);
			return -1;
		}
		ln = &cf->cf_listen[n];
		memset(ln, 0, sizeof(*ln));
		if (listen_parse_addr(tok, &ln->ln_addr, err, errlen) == -1)
			return -1;
		for (i = 0; i < n; i++)
			if (listen_same_addr(&cf->cf_listen[i].ln_addr,
			    &ln->ln_addr)) {
				dup_message(&cf->cf_listen[i], opts, tok, err,
				    errlen);
				return -1;
			}
		ln->ln_opts = opts;
		ln->ln_line = line;
		n++;
		nkind++;
	}
	if (n == cf->cf_nlisten && opts == HD_LO_PLAIN) {
		snprintf(err, errlen, "no address given");
		return -1;
	}
	cf->cf_nlisten = n;
	return 0;
}

/*
 * -l and --proxy-listen into ov, in order; main() reports the error.
 * At most HD_MAX_LISTEN options of a kind.
 */
int
config_add_listen_arg(struct hd_overrides *ov, const char *v, unsigned opts,
    char *err, size_t errlen)
{
	const struct listen_key	*lk = listen_key(opts);
	unsigned		 i, n = 0;

	for (i = 0; i < ov->ov_nlisten; i++)
		if (ov->ov_listen[i].la_opts == opts)
			n++;
	if (lk == NULL || lk->lk_option == NULL) {
		snprintf(err, errlen, "no option for %s",
		    config_listen_key(opts));
		return -1;
	}
	if (n == HD_MAX_LISTEN || ov->ov_nlisten == HD_MAX_LISTENERS) {
		snprintf(err, errlen, "%s: more than %d addresses",
		    lk->lk_option, HD_MAX_LISTEN);
		return -1;
	}
	ov->ov_listen[ov->ov_nlisten].la_text = v;
	ov->ov_listen[ov->ov_nlisten++].la_opts = opts;
	return 0;
}

/*
 * A line of the listen key [section] name, read on `line`.  Lines of a
 * key add up, and the first line of a kind (*seen keeps count, by bit)
 * replaces the built-in addresses of that kind.
 */
int
config_listen_line(struct hd_config *cf, const char *section,
    const char *name, const char *value, int line, unsigned *seen,
    char *why, size_t whylen)
{
	size_t	 k;

	for (k = 0; k < NLISTEN_KEYS; k++)
		if (strcmp(section, listen_keys[k].lk_section) == 0 &&
		    strcmp(name, listen_keys[k].lk_name) == 0)
			break;
	if (k == NLISTEN_KEYS) {
		snprintf(why, whylen, "unknown key");
		return -1;
	}
	if (!(*seen & (1u << k))) {
		listen_drop(cf, listen_keys[k].lk_opts);
		*seen |= 1u << k;
	}
	return set_addrs(cf, listen_keys[k].lk_opts, value, line, why, whylen);
}

/* Addresses on the command line replace the file's addresses of their
 * kind, and only those; they come after the others. */
int
config_listen_apply(struct hd_config *cf, const struct hd_overrides *ov,
    char *err, size_t errlen)
{
	char			 why[HD_ERRLEN - 64];
	const struct listen_key	*lk;
	unsigned		 i, k;

	for (k = 0; k < NLISTEN_KEYS; k++)
		for (i = 0; i < ov->ov_nlisten; i++)
			if (ov->ov_listen[i].la_opts == listen_keys[k].lk_opts) {
				listen_drop(cf, listen_keys[k].lk_opts);
				break;
			}
	for (i = 0; i < ov->ov_nlisten; i++)
		if (set_addrs(cf, ov->ov_listen[i].la_opts,
		    ov->ov_listen[i].la_text, 0, why, sizeof(why)) == -1) {
			lk = listen_key(ov->ov_listen[i].la_opts);
			snprintf(err, errlen, "%s: %s", lk != NULL &&
			    lk->lk_option != NULL ? lk->lk_option : "--listen",
			    why);
			return -1;
		}
	return 0;
}
