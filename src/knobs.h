/*
 * Per-request knobs in the query string (knobs.c).
 */
#ifndef HELLOD_KNOBS_H
#define HELLOD_KNOBS_H

#include <stddef.h>

struct hd_config;

struct knobs {
	unsigned	 kn_delay;	/* ms */
	size_t		 kn_pad;	/* bytes */
	int		 kn_has_delay;
	int		 kn_has_pad;
	unsigned	 kn_delay_body;	/* ms, <= query_max_delay */
	int		 kn_has_delay_body;
	int		 kn_status;	/* 200..599; 0: not asked */
	int		 kn_close;	/* ?close=1 */
	int		 kn_has_close;	/* ?close= given, 0 or 1 */
	int		 kn_reset;	/* ?reset=1 */
	int		 kn_has_reset;
};

int	 knobs_parse(const char *, size_t, const struct hd_config *,
	    struct knobs *);

#endif /* HELLOD_KNOBS_H */
