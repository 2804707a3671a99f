/*
 * Counters in shared memory.
 *
 * The master maps one region before forking: a master area, written only
 * by the master, and an array of per-process slots.  A worker writes only
 * its own slot, with plain relaxed atomic loads and stores (no locked
 * instruction, no lock): one writer per word, any number of readers.
 *
 * The region is a sealed memfd (it can neither shrink nor grow), laid out
 * in whole pages: first a header {magic, layout, sizes, slot count} and
 * the master area, then one page-aligned region per slot.  A child maps
 * the master area read-only from a read-only descriptor, its own slot
 * read-write (the status server: everything read-only), closes every
 * descriptor to the region, and a seccomp filter keeps the slot's mapping
 * from being stretched or moved over other pages (mremap(),
 * remap_file_pages()): it cannot write what the master relies on,
 * another child's slot, or the region's size.  The master and the status
 * server bound every loop by their own copy of the layout, never by a
 * value read back from shared memory.
 *
 * When a worker has been reaped, the master folds the counters of its
 * slot into the retired totals of the master area and frees the slot, so
 * every total stays monotonic across respawns and reloads.  Folds (and
 * slot assignments) happen inside a sequence lock: stats_snapshot() never
 * sees a fold half done.
 */
#ifndef HELLOD_STATS_H
#define HELLOD_STATS_H

#include <sys/types.h>

#include <stddef.h>
#include <stdint.h>

#define STATS_MAX_WORKERS	256	/* worker indices of one generation */
#define STATS_VERSION_MAX	32

/* The region's layout: bump it with any change of the structures below
 * or in stats.c.  An image handed a region of another layout (an upgrade
 * in place) starts counting afresh.  HELLOD_STATS_LAYOUT_TEST builds a
 * layout that differs (one more counter) for the upgrade tests. */
#ifdef HELLOD_STATS_LAYOUT_TEST
#define STATS_LAYOUT		0x1003
#else
#define STATS_LAYOUT		3
#endif

/* Statuses counted one by one; stats_code_index() maps any other to 500,
 * as the response writer answers it. */
#define STATS_NCODES		7
extern const int	 stats_codes[STATS_NCODES];

/* Request duration buckets, upper bounds in nanoseconds (the Prometheus
 * defaults widened to 100 us .. 10 s); one more counts what is slower. */
#define STATS_NBUCKETS		16

/* Handshakes by how they ended (enum tls_event), per TLS listener in the
 * order of the configuration. */
#define STATS_MAX_TLS		32	/* 16 tls_listen, 16 tls_proxy_listen */
#define STATS_NTLS		6
extern const char *const stats_tls_names[STATS_NTLS];
extern const uint64_t	 stats_bucket_ns[STATS_NBUCKETS];
extern const char *const stats_bucket_text[STATS_NBUCKETS];

enum stats_conn_state {
	STATS_READING,		/* a request head in progress */
	STATS_WRITING,		/* output blocked on the client */
	STATS_IDLE,		/* keep-alive, between requests */
	STATS_DELAYED,		/* a response waits for the delay */
	STATS_LINGERING,	/* closing, reading what is left */
	STATS_NSTATES
};
extern const char *const stats_state_names[STATS_NSTATES];

enum stats_pause {
	STATS_PAUSE_EMFILE,	/* EMFILE, ENFILE, ENOBUFS, ENOMEM */
	STATS_PAUSE_MAXCONN,	/* max_connections reached */
	STATS_NPAUSES
};
extern const char *const stats_pause_names[STATS_NPAUSES];

/* Faults served on request (?status=, ?close=, ?reset=, ?delay_body=). */
enum stats_fault {
	STATS_FAULT_STATUS,
	STATS_FAULT_CLOSE,
	STATS_FAULT_RESET,
	STATS_FAULT_DELAY_BODY,
	STATS_NFAULTS
};
extern const char *const stats_fault_names[STATS_NFAULTS];

/* The answers of HAProxy's agent-check (status.c). */
enum stats_agent {
	STATS_AGENT_UP,
	STATS_AGENT_DRAIN,
	STATS_AGENT_DOWN,
	STATS_NAGENT
};
extern const char *const stats_agent_names[STATS_NAGENT];

enum stats_mode {
	STATS_MODE_ASYNC,
	STATS_MODE_SYNC,
	STATS_MODE_URING,
	STATS_NMODES
};
extern const char *const stats_mode_names[STATS_NMODES];

/* Everything that only grows: folded into the retired totals. */
struct stats_counters {
	uint64_t	 sc_requests[STATS_NCODES];
	uint64_t	 sc_bytes;		/* response bytes */
	uint64_t	 sc_accepted;
	uint64_t	 sc_reclaimed;		/* idle ones closed at the limit */
	uint64_t	 sc_pauses[STATS_NPAUSES];
	/* Per bucket, not cumulative; the last counts what is slower. */
	uint64_t	 sc_buckets[STATS_NBUCKETS + 1];
	uint64_t	 sc_duration_ns;	/* histogram sum */
	uint64_t	 sc_tls[STATS_MAX_TLS][STATS_NTLS];
	uint64_t	 sc_faults[STATS_NFAULTS];
#ifdef HELLOD_STATS_LAYOUT_TEST
	uint64_t	 sc_layout_test;	/* only changes the layout */
#endif
};

/* A process's own counters, in a page-aligned region of their own; who
 * owns the slot (pid, worker, generation) is in the master area. */
struct stats_slot {
	/* Written only by the owner (and zeroed by the master once the
	 * owner has been reaped). */
	struct stats_counters ss_c;
	uint64_t	 ss_conns[STATS_NSTATES];	/* gauges */
} __attribute__((aligned(64)));

/* The slot of this process; NULL: counting is off (the master, the status
 * server, unit tests, fuzz targets). */
extern struct stats_slot	*stats_self;

#define STATS_LOAD(p)		__atomic_load_n((p), __ATOMIC_RELAXED)
#define STATS_STORE(p, v)	__atomic_store_n((p), (v), __ATOMIC_RELAXED)
/* Owner-only: a load and a store, never a read-modify-write bus lock. */
#define STATS_ADD(p, v)		STATS_STORE((p), STATS_LOAD(p) + (v))

/* The index of a status in stats_codes[]; keep the two in step. */
static inline int
stats_code_index(int status)
{
	switch (status) {
	case 200:	return 0;
	case 400:	return 1;
	case 405:	return 2;
	case 414:	return 3;
	case 431:	return 4;
	case 505:	return 6;
	default:	return 5;	/* 500 */
	}
}

/* Bucket bounds are inclusive ("le"); most requests take the first. */
static inline unsigned
stats_bucket_index(uint64_t ns)
{
	unsigned	 i;

	for (i = 0; i < STATS_NBUCKETS; i++)
		if (ns <= stats_bucket_ns[i])
			break;
	return i;
}

/* One answered request: its status, the bytes of the response, and the
 * time from its first byte to its response. */
static inline void
stats_request(int status, uint64_t bytes, double seconds)
{
	struct stats_slot	*s = stats_self;
	uint64_t		 ns;

	if (s == NULL)
		return;
	if (!(seconds > 0.))		/* negative, or NaN */
		ns = 0;
	else if (seconds >= 1e9)
		ns = UINT64_C(1000000000) * UINT64_C(1000000000);
	else
		ns = (uint64_t)(seconds * 1e9 + .5);
	STATS_ADD(&s->ss_c.sc_requests[stats_code_index(status)], 1);
	STATS_ADD(&s->ss_c.sc_bytes, bytes);
	STATS_ADD(&s->ss_c.sc_buckets[stats_bucket_index(ns)], 1);
	STATS_ADD(&s->ss_c.sc_duration_ns, ns);
}

/* A connection changes state; -1 stands for none (opened, closed). */
static inline void
stats_conn_move(int from, int to)
{
	struct stats_slot	*s = stats_self;

	if (s == NULL || from == to)
		return;
	if (from >= 0 && from < STATS_NSTATES)
		STATS_ADD(&s->ss_conns[from], (uint64_t)-1);
	if (to >= 0 && to < STATS_NSTATES)
		STATS_ADD(&s->ss_conns[to], 1);
}

static inline void
stats_accepted(void)
{
	if (stats_self != NULL)
		STATS_ADD(&stats_self->ss_c.sc_accepted, 1);
}

static inline void
stats_tls(int listener, int event)
{
	if (stats_self != NULL && listener >= 0 && listener < STATS_MAX_TLS &&
	    event >= 0 && event < STATS_NTLS)
		STATS_ADD(&stats_self->ss_c.sc_tls[listener][event], 1);
}

static inline void
stats_fault(int kind)
{
	if (stats_self != NULL && kind >= 0 && kind < STATS_NFAULTS)
		STATS_ADD(&stats_self->ss_c.sc_faults[kind], 1);
}

static inline void
stats_reclaimed(void)
{
	if (stats_self != NULL)
		STATS_ADD(&stats_self->ss_c.sc_reclaimed, 1);
}

static inline void
stats_accept_paused(int reason)
{
	if (stats_self != NULL && reason >= 0 && reason < STATS_NPAUSES)
		STATS_ADD(&stats_self->ss_c.sc_pauses[reason], 1);
}

/* The master, before any fork. */
int	 stats_init(unsigned, int);
int	 stats_memfd(void);
int	 stats_slot_of(pid_t);
void	 stats_fini(void);
int	 stats_slot_acquire(unsigned, unsigned);
void	 stats_slot_started(int, pid_t);
void	 stats_slot_release(int);
void	 stats_set_config(unsigned, enum stats_mode, unsigned);
unsigned stats_serving(void);
void	 stats_set_serving(unsigned);
void	 stats_set_draining(int);
void	 stats_worker_restarted(void);
void	 stats_reloaded(int);

/* A child, right after fork(), before it drops its privileges. */
int	 stats_child(int);
int	 stats_child_reader(void);
int	 stats_slot_guard(const void *, size_t, size_t);	/* stats_guard.c */
/* Points the hot path at a slot of this process's mapping (-1: none). */
void	 stats_attach(int);

/* Readers. */
struct stats_worker_row {
	unsigned	 sw_worker;
	pid_t		 sw_pid;		/* 0: starting */
	uint64_t	 sw_requests;
	uint64_t	 sw_accepted;
	uint64_t	 sw_conns[STATS_NSTATES];
};

struct stats_snapshot {
	uint64_t	 sn_start_ns;		/* wall clock of stats_init() */
	uint64_t	 sn_uptime_ns;		/* since then, monotonic */
	unsigned	 sn_generation;
	enum stats_mode	 sn_mode;
	unsigned	 sn_workers;		/* configured */
	unsigned	 sn_serving;
	int		 sn_draining;
	uint64_t	 sn_restarts;
	uint64_t	 sn_reloads;
	uint64_t	 sn_reload_failures;
	char		 sn_version[STATS_VERSION_MAX];
	struct stats_counters sn_total;		/* retired + every live slot */
	uint64_t	 sn_conns[STATS_NSTATES];
	/* The live slots of the current generation, by worker index. */
	struct stats_worker_row sn_rows[STATS_MAX_WORKERS];
	unsigned	 sn_nrows;
	/* Filled by the status server, which alone answers the agent. */
	uint64_t	 sn_agent[STATS_NAGENT];
};

int	 stats_snapshot(struct stats_snapshot *);
uint64_t stats_requests(const struct stats_counters *);
int	 stats_health(const char **);

/* A greeting listener, for its accept-queue figures.  The status server
 * fills sli_qlen/sli_qlimit with stats_listen_queue() before rendering,
 * so that rendering stays a pure function. */
struct stats_listener_info {
	const char	*sli_addr;	/* as configured */
	unsigned	 sli_socket;	/* index among the address's sockets */
	int		 sli_fd;
	int		 sli_known;	/* the two figures below are valid */
	unsigned	 sli_qlen;
	unsigned	 sli_qlimit;
	const char	*sli_kind;	/* listen_opts_name(): "plain", ... */
	int		 sli_tls;	/* its number among the TLS listeners
					   plus one (stats_tls()); 0: none */
};

int	 stats_listen_queue(int, unsigned *, unsigned *);
void	 stats_listeners_poll(struct stats_listener_info *, unsigned);

/* stats_render.c: pure.  Both return the length of the whole text (not
 * counting a NUL); when that is >= cap, buf holds only a truncated text
 * and the caller renders again with a buffer of that length + 1. */
size_t	 stats_render_metrics(const struct stats_snapshot *,
	    const struct stats_listener_info *, unsigned, char *, size_t);
size_t	 stats_render_json(const struct stats_snapshot *,
	    const struct stats_listener_info *, unsigned, char *, size_t);

#endif /* HELLOD_STATS_H */
