/*
 * The description an image replaced in place hands to the next, in the
 * environment (see upgrade.c):
 *   HELLOD_UPGRADE=gen=G pidfd=F stats=FD tickets=FD old=PID,...
 *       retired=FD,... sock=OPTS:SLOT:PASSED:FD,... conf=FD exe=FD
 * upgrade_parse() is its only reader and turns it into a struct
 * upgrade_desc; upgrade_format() is its only writer.  Pure: no
 * descriptor is touched here.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "hellod.h"

static int
append(char *buf, size_t cap, size_t *len, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int
append(char *buf, size_t cap, size_t *len, const char *fmt, ...)
{
	va_list	 ap;
	int	 n;

	va_start(ap, fmt);
	n = vsnprintf(buf + *len, cap - *len, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= cap - *len)
		return -1;
	*len += (size_t)n;
	return 0;
}

/*
 * The description, parsed once.  Grammar (one space between items, none
 * before the first or after the last):
 *
 *   value  = item *( " " item )
 *   item   = key "=" *( %x21-7E )            ; a key this image knows
 *                                            ; has its own syntax below
 *   key    = %x61-7A *( %x61-7A / DIGIT / "_" )
 *   gen    = NUM                             ; required
 *   pidfd, stats = FD / "-1"
 *   conf, exe    = FD
 *   old     = [ PID *( "," PID ) ]
 *   retired = [ FD *( "," FD ) ]
 *   sock    = [ S *( "," S ) ]    S = OPTS ":" SLOT ":" ("0" / "1") ":" FD
 *   NUM    = "0" / %x31-39 *DIGIT            ; no sign, no leading zero
 *
 * A known key given twice, a number out of its range, a descriptor named
 * twice or anything else is malformed.  Keys of later versions are
 * ignored, once their syntax is that of an item.  Only gen is required:
 * earlier images did not write stats, tickets, conf or exe.
 */
enum {
	UK_GEN, UK_PIDFD, UK_STATS, UK_OLD, UK_RETIRED, UK_SOCK, UK_CONF,
	UK_EXE, UK_TICKETS, UK_NKEYS
};

static const char *const upgrade_keys[UK_NKEYS] = {
	[UK_GEN] = "gen", [UK_PIDFD] = "pidfd", [UK_STATS] = "stats",
	[UK_OLD] = "old", [UK_RETIRED] = "retired", [UK_SOCK] = "sock",
	[UK_CONF] = "conf", [UK_EXE] = "exe", [UK_TICKETS] = "tickets",
};

/* A decimal number at *p, at most max; *p moves past it. */
static int
parse_num(const char **p, unsigned long long max, unsigned long long *out)
{
	const char		*s = *p;
	unsigned long long	 v = 0;

	if (*s < '0' || *s > '9')
		return -1;
	if (*s == '0' && s[1] >= '0' && s[1] <= '9')
		return -1;
	/* max is at most UINT_MAX: v * 10 + 9 cannot wrap. */
	for (; *s >= '0' && *s <= '9'; s++) {
		if (v > max / 10 || v * 10 + (unsigned long long)(*s - '0') >
		    max)
			return -1;
		v = v * 10 + (unsigned long long)(*s - '0');
	}
	*p = s;
	*out = v;
	return 0;
}

static int
parse_fd(const char **p, int none_ok, int *fd)
{
	unsigned long long	 v;

	if (none_ok && (*p)[0] == '-' && (*p)[1] == '1') {
		*p += 2;
		*fd = -1;
		return 0;
	}
	if (parse_num(p, UPGRADE_MAX_FD - 1, &v) == -1)
		return -1;
	*fd = (int)v;
	return 0;
}

/* The end of an item's value: a space before another item, or the end. */
static int
item_end(const char *p)
{
	return *p == '\0' || (*p == ' ' && p[1] != '\0' && p[1] != ' ');
}

/* The separator c at *p, which then moves past it. */
static int
expect(const char **p, char c)
{
	if (**p != c)
		return -1;
	(*p)++;
	return 0;
}

/* Whether another element of a list follows: a comma, then not the end
 * of the item. */
static int
list_next(const char **p)
{
	if (**p != ',' || item_end(*p + 1))
		return 0;
	(*p)++;
	return 1;
}

static int
parse_sock(const char **p, struct upgrade_sock *uk)
{
	unsigned long long	 opts, slot, passed;

	if (parse_num(p, UINT_MAX, &opts) == -1 ||
	    !listen_opts_valid((unsigned)opts) || expect(p, ':') == -1 ||
	    parse_num(p, HD_MAX_WORKERS - 1, &slot) == -1 ||
	    expect(p, ':') == -1 || parse_num(p, 1, &passed) == -1 ||
	    expect(p, ':') == -1 || parse_fd(p, 0, &uk->uk_fd) == -1)
		return -1;
	uk->uk_opts = (unsigned)opts;
	uk->uk_slot = (unsigned)slot;
	uk->uk_passed = (int)passed;
	return 0;
}

/* The value of a known key at *p, into ud. */
static int
parse_value(int key, const char **p, struct upgrade_desc *ud)
{
	unsigned long long	 v;

	switch (key) {
	case UK_GEN:
		if (parse_num(p, UINT_MAX, &v) == -1)
			return -1;
		ud->ud_generation = (unsigned)v;
		return 0;
	case UK_PIDFD:
		return parse_fd(p, 1, &ud->ud_pidfd);
	case UK_STATS:
		return parse_fd(p, 1, &ud->ud_statsfd);
	case UK_TICKETS:
		return parse_fd(p, 1, &ud->ud_ticketsfd);
	case UK_CONF:
		return parse_fd(p, 0, &ud->ud_conf);
	case UK_EXE:
		return parse_fd(p, 0, &ud->ud_exe);
	}
	if (item_end(*p))
		return 0;	/* an empty list */
	do {
		switch (key) {
		case UK_OLD:
			if (ud->ud_nold == UPGRADE_MAX_OLD ||
			    parse_num(p, UPGRADE_MAX_PID, &v) == -1 || v == 0)
				return -1;
			ud->ud_old[ud->ud_nold++] = (pid_t)v;
			break;
		case UK_RETIRED:
			if (ud->ud_nretired == HD_MAX_SOCKETS ||
			    parse_fd(p, 0, &ud->ud_retired[ud->ud_nretired]) ==
			    -1)
				return -1;
			ud->ud_nretired++;
			break;
		case UK_SOCK:
			if (ud->ud_nsocks == HD_MAX_SOCKETS ||
			    parse_sock(p, &ud->ud_socks[ud->ud_nsocks]) == -1)
				return -1;
			ud->ud_nsocks++;
			break;
		default:
			return -1;
		}
	} while (list_next(p));
	return 0;
}

/* Every descriptor ud names, into fds (UPGRADE_MAX_FDS of room). */
unsigned
upgrade_desc_fds(const struct upgrade_desc *ud, int *fds)
{
	unsigned	 i, n = 0;

	if (ud->ud_pidfd != -1)
		fds[n++] = ud->ud_pidfd;
	if (ud->ud_statsfd != -1)
		fds[n++] = ud->ud_statsfd;
	if (ud->ud_ticketsfd != -1)
		fds[n++] = ud->ud_ticketsfd;
	for (i = 0; i < ud->ud_nretired; i++)
		fds[n++] = ud->ud_retired[i];
	for (i = 0; i < ud->ud_nsocks; i++)
		fds[n++] = ud->ud_socks[i].uk_fd;
	if (ud->ud_conf != -1)
		fds[n++] = ud->ud_conf;
	if (ud->ud_exe != -1)
		fds[n++] = ud->ud_exe;
	return n;
}

/* Whether a descriptor is named twice. */
static int
fds_repeat(const struct upgrade_desc *ud)
{
	static int		 fds[UPGRADE_MAX_FDS];
	static unsigned char	 seen[UPGRADE_MAX_FD / 8];
	unsigned		 i, n = upgrade_desc_fds(ud, fds);
	int			 dup = 0;

	for (i = 0; i < n && !dup; i++) {
		if (seen[fds[i] >> 3] & (1u << (fds[i] & 7)))
			dup = 1;
		seen[fds[i] >> 3] |= (unsigned char)(1u << (fds[i] & 7));
	}
	while (i-- > 0)
		seen[fds[i] >> 3] = 0;
	return dup;
}

/*
 * Parses an HELLOD_UPGRADE value into ud.  Returns 0, or -1 with why in
 * err; ud is then undefined.  Pure: no descriptor is looked at.
 */
int
upgrade_parse(const char *v, struct upgrade_desc *ud, char *err,
    size_t errlen)
{
	const char	*p = v, *key;
	size_t		 klen;
	unsigned	 seen = 0;
	int		 k;

	ud->ud_generation = 0;
	ud->ud_pidfd = ud->ud_statsfd = ud->ud_ticketsfd = ud->ud_conf =
	    ud->ud_exe = -1;
	ud->ud_nold = ud->ud_nretired = ud->ud_nsocks = 0;
	for (;;) {
		key = p;
		if (*p < 'a' || *p > 'z')
			goto bad;
		while ((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
		    *p == '_')
			p++;
		klen = (size_t)(p - key);
		if (*p++ != '=')
			goto bad;
		for (k = 0; k < UK_NKEYS; k++)
			if (strlen(upgrade_keys[k]) == klen &&
			    strncmp(upgrade_keys[k], key, klen) == 0)
				break;
		if (k == UK_NKEYS) {
			/* A later version's: its value is its own. */
			while (*p > ' ' && *p < 0x7f)
				p++;
		} else {
			if (seen & (1u << k)) {
				snprintf(err, errlen, "%s given twice",
				    upgrade_keys[k]);
				return -1;
			}
			seen |= 1u << k;
			if (parse_value(k, &p, ud) == -1) {
				snprintf(err, errlen, "invalid %s",
				    upgrade_keys[k]);
				return -1;
			}
		}
		if (*p == '\0')
			break;
		if (!item_end(p))
			goto bad;
		p++;
	}
	if (!(seen & (1u << UK_GEN))) {
		snprintf(err, errlen, "no gen");
		return -1;
	}
	if (fds_repeat(ud)) {
		snprintf(err, errlen, "a descriptor named twice");
		return -1;
	}
	return 0;
bad:
	snprintf(err, errlen, "syntax error at offset %zu", (size_t)(p - v));
	return -1;
}

/* Writes ud as an HELLOD_UPGRADE value; -1 when it does not fit. */
int
upgrade_format(const struct upgrade_desc *ud, char *buf, size_t cap)
{
	const struct upgrade_sock *uk;
	size_t		 len = 0;
	unsigned	 i;

	if (append(buf, cap, &len, "gen=%u pidfd=%d stats=%d tickets=%d old=",
	    ud->ud_generation, ud->ud_pidfd, ud->ud_statsfd,
	    ud->ud_ticketsfd) == -1)
		return -1;
	for (i = 0; i < ud->ud_nold; i++)
		if (append(buf, cap, &len, "%s%ld", i ? "," : "",
		    (long)ud->ud_old[i]) == -1)
			return -1;
	if (append(buf, cap, &len, " retired=") == -1)
		return -1;
	for (i = 0; i < ud->ud_nretired; i++)
		if (append(buf, cap, &len, "%s%d", i ? "," : "",
		    ud->ud_retired[i]) == -1)
			return -1;
	if (append(buf, cap, &len, " sock=") == -1)
		return -1;
	for (i = 0; i < ud->ud_nsocks; i++) {
		uk = &ud->ud_socks[i];
		if (append(buf, cap, &len, "%s%u:%u:%d:%d", i ? "," : "",
		    uk->uk_opts, uk->uk_slot, uk->uk_passed, uk->uk_fd) == -1)
			return -1;
	}
	if (ud->ud_conf != -1 &&
	    append(buf, cap, &len, " conf=%d", ud->ud_conf) == -1)
		return -1;
	if (ud->ud_exe != -1 &&
	    append(buf, cap, &len, " exe=%d", ud->ud_exe) == -1)
		return -1;
	return 0;
}
