/*
 * The status server: a process of its own that answers /metrics,
 * /status.json, / and /healthz on the status listeners, from the shared
 * counters (stats.h).  It never blocks on the greeting workers and its
 * requests are never counted.
 */
#ifndef HELLOD_STATUS_H
#define HELLOD_STATUS_H

#include <stddef.h>

struct stats_listener_info;

#define STATUS_MAX_CONNS	256

struct status_ctx {
	const int	*stc_fds;	/* status listeners: bound, listening,
					   non-blocking */
	unsigned	 stc_nfds;
	/* The greeting listeners, for their accept-queue figures. */
	const struct stats_listener_info *stc_listeners;
	unsigned	 stc_nlisteners;
	unsigned	 stc_header_timeout;	/* ms */
	size_t		 stc_max_header_size;
	const unsigned	*stc_opts;	/* each fd's HD_LO_* */
	unsigned	 stc_max_connections;	/* per worker */
};

struct hd_config;
struct listeners;

void	 status_main(const struct status_ctx *) __attribute__((noreturn));
void	 status_run(const struct listeners *, const struct hd_config *)
	    __attribute__((noreturn));

/* status_page.c */
extern const char	 status_page_html[];
extern const size_t	 status_page_len;

#endif /* HELLOD_STATUS_H */
