/*
 * Counters in shared memory (see stats.h): the region, slot assignment,
 * folding, and the consistent reader.
 *
 * Memory ordering.  Every shared word is read and written with relaxed
 * atomics, so no access is a data race.  Slot counters have one writer,
 * their owner, and only grow, so a reader sees each of them monotonic
 * without help.  What needs more is the move of a dead worker's counters
 * into the retired totals: a reader that saw the slot before the move
 * and the totals after it would count them twice.  The master, the only
 * writer of the master area, brackets every change of the set of slots
 * with a sequence counter (odd while it changes); a reader copies
 * everything and retries when the counter was odd or moved meanwhile.
 */
#include <sys/mman.h>
#include <sys/types.h>
#include <sys/socket.h>

#include <netinet/in.h>
#include <netinet/tcp.h>

#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "hellod.h"
#include "stats.h"

/* A reader gives up when the master stays inside a fold this long (it
 * can only be stopped, e.g. by a debugger): about 100 ms. */
#define SNAPSHOT_SPINS		64
#define SNAPSHOT_SLEEPS		100

struct stats_master {
	uint64_t	 sm_seq;		/* odd while the slots change */
	uint64_t	 sm_start_ns;		/* CLOCK_REALTIME */
	uint64_t	 sm_start_mono_ns;	/* CLOCK_MONOTONIC, system-wide */
	uint32_t	 sm_nslots;
	uint32_t	 sm_generation;
	uint32_t	 sm_mode;
	uint32_t	 sm_workers;
	uint32_t	 sm_serving;
	uint32_t	 sm_draining;
	uint64_t	 sm_restarts;
	uint64_t	 sm_reloads;
	uint64_t	 sm_reload_failures;
	char		 sm_version[STATS_VERSION_MAX];	/* set before fork */
	struct stats_counters sm_retired;	/* of released slots */
} __attribute__((aligned(64)));

/* Counters are folded and summed word by word. */
#define COUNTER_WORDS	(sizeof(struct stats_counters) / sizeof(uint64_t))
_Static_assert(sizeof(struct stats_counters) % sizeof(uint64_t) == 0,
    "struct stats_counters holds only uint64_t");
_Static_assert(sizeof(struct stats_slot) % 64 == 0,
    "a slot fills whole cache lines");
_Static_assert(sizeof(struct stats_master) % 64 == 0,
    "the slots after the master area start on a cache line");
_Static_assert(STATS_MAX_WORKERS >= HD_MAX_WORKERS,
    "one row per worker index");

/* By enum tls_event: results, then failure reasons. */
const char *const stats_tls_names[STATS_NTLS] = {
	"full", "resumed", "protocol", "no_shared_cipher", "certificate",
	"timeout"
};

const int stats_codes[STATS_NCODES] = {
	200, 400, 405, 414, 431, 500, 505
};

const uint64_t stats_bucket_ns[STATS_NBUCKETS] = {
	100000, 250000, 500000,
	1000000, 2500000, 5000000,
	10000000, 25000000, 50000000,
	100000000, 250000000, 500000000,
	1000000000, 2500000000, 5000000000, 10000000000
};

/* As Prometheus client libraries print these bounds. */
const char *const stats_bucket_text[STATS_NBUCKETS] = {
	"0.0001", "0.00025", "0.0005",
	"0.001", "0.0025", "0.005",
	"0.01", "0.025", "0.05",
	"0.1", "0.25", "0.5",
	"1", "2.5", "5", "10"
};

const char *const stats_state_names[STATS_NSTATES] = {
	[STATS_READING] = "reading",
	[STATS_WRITING] = "writing",
	[STATS_IDLE] = "idle",
	[STATS_DELAYED] = "delayed",
	[STATS_LINGERING] = "lingering",
};

const char *const stats_pause_names[STATS_NPAUSES] = {
	[STATS_PAUSE_EMFILE] = "emfile",
	[STATS_PAUSE_MAXCONN] = "max_connections",
};

struct stats_slot	*stats_self;

static struct stats_master	*stats_area;
static struct stats_slot	*stats_slots;
static size_t			 stats_len;
static int			 stats_fd = -1;

static uint64_t
clock_ns(clockid_t clock)
{
	struct timespec	 ts;

	if (clock_gettime(clock, &ts) == -1) {
		log_warn("clock_gettime() failed");
		return 0;
	}
	return (uint64_t)ts.tv_sec * UINT64_C(1000000000) +
	    (uint64_t)ts.tv_nsec;
}

/*
 * Writer side of the sequence lock (master only).  The release fence
 * after the odd value orders it before the data stores that follow; the
 * release store of the even value orders the data stores before it.
 */
static void
seq_begin(void)
{
	STATS_STORE(&stats_area->sm_seq, STATS_LOAD(&stats_area->sm_seq) + 1);
	__atomic_thread_fence(__ATOMIC_RELEASE);
}

static void
seq_end(void)
{
	__atomic_store_n(&stats_area->sm_seq,
	    STATS_LOAD(&stats_area->sm_seq) + 1, __ATOMIC_RELEASE);
}

/*
 * The master, before forking anything: maps the master area and
 * max_procs slots.  Size max_procs for every process that can hold a
 * slot at once: the current generation, the old ones still draining, and
 * workers dead but not yet reaped.  The region lives in a memfd, so that
 * an upgrade in place (upgrade.c) hands it to the next image, counters
 * and start time included: fd is that memfd, or -1 for a new region,
 * which starts zeroed.
 */
int
stats_init(unsigned max_procs, int fd)
{
	size_t	 len;
	void	*p;
	int	 fresh = fd == -1;

	if (stats_area != NULL)
		stats_fini();
	if (max_procs == 0 || max_procs > 65536) {
		log_warnx("stats_init(): a slot count of %u is out of range",
		    max_procs);
		return -1;
	}
	len = sizeof(struct stats_master) +
	    (size_t)max_procs * sizeof(struct stats_slot);
	if (fresh) {
		if ((fd = memfd_create("hellod-stats", MFD_CLOEXEC)) == -1) {
			log_warn("memfd_create() failed");
			return -1;
		}
		if (ftruncate(fd, (off_t)len) == -1) {
			log_warn("ftruncate() of the statistics failed");
			close(fd);
			return -1;
		}
	}
	p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED) {
		log_warn("mmap() failed");
		if (fresh)
			close(fd);
		return -1;
	}
	stats_area = p;
	stats_slots = (struct stats_slot *)(stats_area + 1);
	stats_len = len;
	stats_fd = fd;
	if (!fresh && stats_area->sm_nslots == max_procs)
		return 0;	/* inherited as it was */
	memset(p, 0, len);
	stats_area->sm_nslots = max_procs;
	stats_area->sm_start_ns = clock_ns(CLOCK_REALTIME);
	stats_area->sm_start_mono_ns = clock_ns(CLOCK_MONOTONIC);
	snprintf(stats_area->sm_version, sizeof(stats_area->sm_version), "%s",
	    VERSION);
	return 0;
}

/* The memfd of the region, for an upgrade in place; -1: none. */
int
stats_memfd(void)
{
	return stats_area != NULL ? stats_fd : -1;
}

/* Unmaps the region in this process; the others keep their mapping. */
void
stats_fini(void)
{
	if (stats_area == NULL)
		return;
	if (munmap(stats_area, stats_len) == -1)
		log_warn("munmap() failed");
	stats_area = NULL;
	stats_slots = NULL;
	stats_self = NULL;
	stats_len = 0;
	if (stats_fd != -1)
		close(stats_fd);
	stats_fd = -1;
}

/*
 * The master, before fork(): reserves a free slot for worker `worker` of
 * generation `generation`.  The child learns the number by inheriting it
 * and calls stats_attach(); no child ever searches the slots, so two
 * children cannot race for one, and a slot is never assigned to a pid
 * that might already have exited.  Returns -1 (logged) when all are
 * taken: that worker then runs uncounted.
 */
int
stats_slot_acquire(unsigned worker, unsigned generation)
{
	struct stats_slot	*s;
	uint32_t		 i;

	if (stats_area == NULL)
		return -1;
	for (i = 0; i < stats_area->sm_nslots; i++)
		if (STATS_LOAD(&stats_slots[i].ss_inuse) == 0)
			break;
	if (i == stats_area->sm_nslots) {
		log_warnx("all %u statistics slots are taken; worker %u runs "
		    "uncounted", i, worker);
		return -1;
	}
	s = &stats_slots[i];
	seq_begin();
	STATS_STORE(&s->ss_pid, 0);
	STATS_STORE(&s->ss_worker, worker);
	STATS_STORE(&s->ss_generation, generation);
	STATS_STORE(&s->ss_mode, STATS_LOAD(&stats_area->sm_mode));
	STATS_STORE(&s->ss_inuse, 1);
	seq_end();
	return (int)i;
}

/*
 * The master, once the slot's process has been reaped (or its fork
 * failed): folds the counters into the retired totals and frees the
 * slot.  Gauges are dropped: a dead process has no connections.
 */
void
stats_slot_release(int slot)
{
	struct stats_slot	*s;
	uint64_t		*dst, *src;
	size_t			 i;

	if (stats_area == NULL || slot < 0 ||
	    (uint32_t)slot >= stats_area->sm_nslots)
		return;
	s = &stats_slots[slot];
	if (STATS_LOAD(&s->ss_inuse) == 0)
		return;
	dst = (uint64_t *)(void *)&stats_area->sm_retired;
	src = (uint64_t *)(void *)&s->ss_c;
	seq_begin();
	for (i = 0; i < COUNTER_WORDS; i++) {
		STATS_ADD(&dst[i], STATS_LOAD(&src[i]));
		STATS_STORE(&src[i], 0);
	}
	for (i = 0; i < STATS_NSTATES; i++)
		STATS_STORE(&s->ss_conns[i], 0);
	STATS_STORE(&s->ss_pid, 0);
	STATS_STORE(&s->ss_inuse, 0);
	seq_end();
}

/* The slot a process attached to, found by its pid (after an upgrade in
 * place, the old image's workers are known by pid only); -1: none. */
int
stats_slot_of(pid_t pid)
{
	uint32_t	 i;

	if (stats_area == NULL || pid <= 0)
		return -1;
	for (i = 0; i < stats_area->sm_nslots; i++)
		if (STATS_LOAD(&stats_slots[i].ss_inuse) &&
		    STATS_LOAD(&stats_slots[i].ss_pid) == (int32_t)pid)
			return (int)i;
	return -1;
}

/* The master, at start and after each successful reload, before it
 * spawns that generation: slots take their mode from here. */
void
stats_set_config(unsigned generation, enum stats_mode mode, unsigned workers)
{
	if (stats_area == NULL)
		return;
	seq_begin();
	STATS_STORE(&stats_area->sm_generation, generation);
	STATS_STORE(&stats_area->sm_mode, (uint32_t)mode);
	STATS_STORE(&stats_area->sm_workers, workers);
	seq_end();
}

void
stats_set_serving(unsigned n)
{
	if (stats_area != NULL)
		STATS_STORE(&stats_area->sm_serving, n);
}

void
stats_set_draining(int on)
{
	if (stats_area != NULL)
		STATS_STORE(&stats_area->sm_draining, on ? 1 : 0);
}

void
stats_worker_restarted(void)
{
	if (stats_area != NULL)
		STATS_ADD(&stats_area->sm_restarts, 1);
}

/* A reload attempt: ok counts a new generation, !ok a failure. */
void
stats_reloaded(int ok)
{
	if (stats_area == NULL)
		return;
	if (ok)
		STATS_ADD(&stats_area->sm_reloads, 1);
	else
		STATS_ADD(&stats_area->sm_reload_failures, 1);
}

/* The worker, in the child, first thing after fork(): -1 leaves counting
 * off.  The child owns the slot from here on, its pid included. */
void
stats_attach(int slot)
{
	if (stats_area == NULL || slot < 0 ||
	    (uint32_t)slot >= stats_area->sm_nslots) {
		stats_self = NULL;
		return;
	}
	stats_self = &stats_slots[slot];
	STATS_STORE(&stats_self->ss_pid, (int32_t)getpid());
}

static void
counters_add(struct stats_counters *dst, const struct stats_counters *src)
{
	uint64_t	*d = (uint64_t *)(void *)dst;
	const uint64_t	*s = (const uint64_t *)(const void *)src;
	size_t		 i;

	for (i = 0; i < COUNTER_WORDS; i++)
		d[i] += STATS_LOAD(&s[i]);
}

/* Requests answered, over every status code. */
uint64_t
stats_requests(const struct stats_counters *c)
{
	uint64_t	 n = 0;
	unsigned	 i;

	for (i = 0; i < STATS_NCODES; i++)
		n += c->sc_requests[i];
	return n;
}

/* One attempt at a copy; the caller checks the sequence around it. */
static void
snapshot_copy(struct stats_snapshot *sn)
{
	const struct stats_master *m = stats_area;
	const struct stats_slot	*s;
	struct stats_worker_row	*row;
	struct stats_counters	 c;
	unsigned char		 seen[STATS_MAX_WORKERS];
	uint32_t		 i, w, n;
	unsigned		 k;
	uint64_t		 v;

	memset(sn, 0, sizeof(*sn));
	memset(seen, 0, sizeof(seen));
	sn->sn_start_ns = STATS_LOAD(&m->sm_start_ns);
	sn->sn_generation = STATS_LOAD(&m->sm_generation);
	sn->sn_mode = STATS_LOAD(&m->sm_mode) == STATS_MODE_SYNC ?
	    STATS_MODE_SYNC : STATS_MODE_ASYNC;
	sn->sn_workers = STATS_LOAD(&m->sm_workers);
	sn->sn_serving = STATS_LOAD(&m->sm_serving);
	sn->sn_draining = STATS_LOAD(&m->sm_draining) != 0;
	sn->sn_restarts = STATS_LOAD(&m->sm_restarts);
	sn->sn_reloads = STATS_LOAD(&m->sm_reloads);
	sn->sn_reload_failures = STATS_LOAD(&m->sm_reload_failures);
	memcpy(sn->sn_version, m->sm_version, sizeof(sn->sn_version));
	sn->sn_version[sizeof(sn->sn_version) - 1] = '\0';
	counters_add(&sn->sn_total, &m->sm_retired);

	n = STATS_LOAD(&m->sm_nslots);
	for (i = 0; i < n; i++) {
		s = &stats_slots[i];
		if (STATS_LOAD(&s->ss_inuse) == 0)
			continue;
		memset(&c, 0, sizeof(c));
		counters_add(&c, &s->ss_c);
		counters_add(&sn->sn_total, &c);
		w = STATS_LOAD(&s->ss_worker);
		row = NULL;
		if (STATS_LOAD(&s->ss_generation) == sn->sn_generation &&
		    w < STATS_MAX_WORKERS) {
			/* Two slots of one index (a master that respawns
			 * before releasing) make one row. */
			row = &sn->sn_rows[w];
			if (!seen[w] || row->sw_pid == 0)
				row->sw_pid = STATS_LOAD(&s->ss_pid);
			seen[w] = 1;
			row->sw_worker = w;
			row->sw_requests += stats_requests(&c);
			row->sw_accepted += c.sc_accepted;
		}
		for (k = 0; k < STATS_NSTATES; k++) {
			v = STATS_LOAD(&s->ss_conns[k]);
			sn->sn_conns[k] += v;
			if (row != NULL)
				row->sw_conns[k] += v;
		}
	}

	/* Rows in worker order, packed. */
	for (w = 0; w < STATS_MAX_WORKERS; w++)
		if (seen[w]) {
			if (sn->sn_nrows != w)
				sn->sn_rows[sn->sn_nrows] = sn->sn_rows[w];
			sn->sn_nrows++;
		}
}

/*
 * Copies the master area and every slot consistently: retries while the
 * master is folding.  Returns -1 when the region is missing or the master
 * has stayed inside a fold for about 100 ms (stopped).
 */
int
stats_snapshot(struct stats_snapshot *sn)
{
	struct timespec	 ts = { 0, 1000000 };
	uint64_t	 s1, s2, now, start;
	unsigned	 tries;

	if (stats_area == NULL)
		return -1;
	for (tries = 0; tries < SNAPSHOT_SPINS + SNAPSHOT_SLEEPS; tries++) {
		if (tries >= SNAPSHOT_SPINS) {
			if (nanosleep(&ts, NULL) == -1 && errno != EINTR)
				log_warn("nanosleep() failed");
		} else if (tries > 0)
			(void)sched_yield();	/* cannot fail on Linux */
		s1 = __atomic_load_n(&stats_area->sm_seq, __ATOMIC_ACQUIRE);
		if (s1 & 1)
			continue;
		snapshot_copy(sn);
		__atomic_thread_fence(__ATOMIC_ACQUIRE);
		s2 = STATS_LOAD(&stats_area->sm_seq);
		if (s1 == s2) {
			/* Uptime by the monotonic clock: a wall clock
			 * step does not change it. */
			now = clock_ns(CLOCK_MONOTONIC);
			start = STATS_LOAD(&stats_area->sm_start_mono_ns);
			sn->sn_uptime_ns = now > start ? now - start : 0;
			return 0;
		}
	}
	log_warnx("statistics: the master stays inside an update");
	return -1;
}

/*
 * Whether the service is up: not draining and at least one worker
 * serving.  Otherwise *why says which ("draining", "no workers").
 */
int
stats_health(const char **why)
{
	if (stats_area == NULL) {
		*why = "no workers";
		return 0;
	}
	if (STATS_LOAD(&stats_area->sm_draining)) {
		*why = "draining";
		return 0;
	}
	if (STATS_LOAD(&stats_area->sm_serving) == 0) {
		*why = "no workers";
		return 0;
	}
	*why = "ok";
	return 1;
}

/*
 * A listening TCP socket's accept queue.  Linux reports, for a socket in
 * LISTEN state only, the connections waiting in the accept queue in
 * tcpi_unacked and the backlog it was given (capped by somaxconn) in
 * tcpi_sacked.  Returns -1 for a socket not listening, or on failure
 * (logged).
 */
int
stats_listen_queue(int fd, unsigned *len, unsigned *limit)
{
	struct tcp_info	 ti;
	socklen_t	 tlen = sizeof(ti);

	memset(&ti, 0, sizeof(ti));
	if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &tlen) == -1) {
		log_warn("getsockopt(TCP_INFO) failed");
		return -1;
	}
	if (ti.tcpi_state != TCP_LISTEN)
		return -1;
	*len = ti.tcpi_unacked;
	*limit = ti.tcpi_sacked;
	return 0;
}

void
stats_listeners_poll(struct stats_listener_info *li, unsigned n)
{
	unsigned	 i;

	for (i = 0; i < n; i++)
		li[i].sli_known = stats_listen_queue(li[i].sli_fd,
		    &li[i].sli_qlen, &li[i].sli_qlimit) == 0;
}
