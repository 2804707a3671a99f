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
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
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

#define STATS_MAGIC		UINT64_C(0x68656c6c6f642d73)	/* "hellod-s" */
#define STATS_SEALS		(F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL)

/* At offset 0; written once by the master that created the region.  An
 * image reads it only to decide whether it can use a region it was
 * handed, comparing it with the layout it computed itself. */
struct stats_header {
	uint64_t	 sh_magic;
	uint32_t	 sh_layout;		/* STATS_LAYOUT */
	uint32_t	 sh_nslots;
	uint64_t	 sh_master_len;		/* header to the first slot */
	uint64_t	 sh_slot_len;		/* one slot's region */
};

struct stats_master {
	struct stats_header sm_hdr;
	uint64_t	 sm_seq;		/* odd while the slots change */
	uint64_t	 sm_start_ns;		/* CLOCK_REALTIME */
	uint64_t	 sm_start_mono_ns;	/* CLOCK_MONOTONIC, system-wide */
	uint32_t	 sm_generation;
	uint32_t	 sm_mode;
	uint32_t	 sm_workers;
	uint32_t	 sm_serving;
	uint32_t	 sm_draining;
	uint32_t	 sm_unused;
	uint64_t	 sm_restarts;
	uint64_t	 sm_reloads;
	uint64_t	 sm_reload_failures;
	char		 sm_version[STATS_VERSION_MAX];	/* set before fork */
	struct stats_counters sm_retired;	/* of released slots */
} __attribute__((aligned(64)));

/* Who owns a slot: in the master area, after struct stats_master, one per
 * slot; written only by the master. */
struct stats_owner {
	uint32_t	 so_inuse;
	int32_t		 so_pid;		/* 0: forking */
	uint32_t	 so_worker;		/* 0 .. N-1 of its generation */
	uint32_t	 so_generation;
	uint32_t	 so_mode;		/* enum stats_mode */
	uint32_t	 so_unused;
};

/* Counters are folded and summed word by word. */
#define COUNTER_WORDS	(sizeof(struct stats_counters) / sizeof(uint64_t))
_Static_assert(sizeof(struct stats_counters) % sizeof(uint64_t) == 0,
    "struct stats_counters holds only uint64_t");
_Static_assert(sizeof(struct stats_slot) % 64 == 0,
    "a slot fills whole cache lines");
_Static_assert(sizeof(struct stats_master) % 64 == 0,
    "the owners after the master area start on a cache line");
_Static_assert(STATS_MAX_WORKERS >= HD_MAX_WORKERS,
    "one row per worker index");
/* What an upgrade in place hands over is read as this layout: a change of
 * these structures is a new STATS_LAYOUT (stats.h), and new sizes here. */
#ifndef HELLOD_STATS_LAYOUT_TEST
_Static_assert(STATS_LAYOUT == 3 &&
    sizeof(struct stats_counters) == 1808 &&
    sizeof(struct stats_slot) == 1856 &&
    sizeof(struct stats_master) == 1984 &&
    sizeof(struct stats_owner) == 24,
    "the statistics layout changed: bump STATS_LAYOUT");
#endif

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

struct stats_slot	*stats_self;

/*
 * This process's view.  The layout (stats_nslots and the lengths) is its
 * own, computed or inherited through fork(), never read back from the
 * region.  stats_map is the mapping that starts with the master area:
 * the whole region in the master (read-write) and the status server
 * (read-only), only the master area in a worker (read-only), whose own
 * slot is mapped apart (stats_own).
 */
static struct stats_master	*stats_area;
static struct stats_owner	*stats_owners;
static unsigned char		*stats_map;
static size_t			 stats_map_len;
static int			 stats_writer;	/* stats_map is writable */
static int			 stats_whole;	/* stats_map has every slot */
static void			*stats_own;
static uint32_t			 stats_nslots;
static size_t			 stats_master_len, stats_slot_len, stats_len;
static size_t			 stats_page;
static int			 stats_fd = -1;	/* read-write */
static int			 stats_rofd = -1;	/* read-only */

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

static struct stats_slot *
slot_at(uint32_t i)
{
	return (struct stats_slot *)(void *)(stats_map + stats_master_len +
	    (size_t)i * stats_slot_len);
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

static size_t
round_page(size_t n, size_t page)
{
	return (n + page - 1) / page * page;
}

/*
 * Whether fd is a region this image can use as it is: sealed, of the
 * expected size, and laid out as this image lays it out.  Only compares
 * what it reads with what it computed; why says what differs.
 */
static int
region_fits(int fd, const struct stats_header *want, const char **why)
{
	struct stats_header	 h;
	struct stat		 st;
	int			 seals;

	if (fstat(fd, &st) == -1) {
		*why = "fstat() failed";
		return 0;
	}
	if ((seals = fcntl(fd, F_GET_SEALS)) == -1 ||
	    (seals & STATS_SEALS) != STATS_SEALS) {
		*why = "not sealed";
		return 0;
	}
	if (st.st_size < 0 || (uint64_t)st.st_size != want->sh_master_len +
	    (uint64_t)want->sh_nslots * want->sh_slot_len) {
		*why = "another size";
		return 0;
	}
	if (pread(fd, &h, sizeof(h), 0) != (ssize_t)sizeof(h)) {
		*why = "unreadable";
		return 0;
	}
	if (h.sh_magic != want->sh_magic || h.sh_layout != want->sh_layout) {
		*why = "another layout";
		return 0;
	}
	if (h.sh_nslots != want->sh_nslots ||
	    h.sh_master_len != want->sh_master_len ||
	    h.sh_slot_len != want->sh_slot_len) {
		*why = "other sizes";
		return 0;
	}
	return 1;
}

/* A new region of len bytes, zeroed, sealed at that size. */
static int
region_create(size_t len)
{
	int	 fd;

	if ((fd = memfd_create("hellod-stats",
	    MFD_CLOEXEC | MFD_ALLOW_SEALING)) == -1) {
		log_warn("memfd_create() failed");
		return -1;
	}
	if (ftruncate(fd, (off_t)len) == -1) {
		log_warn("ftruncate() of the statistics failed");
		close(fd);
		return -1;
	}
	if (fcntl(fd, F_ADD_SEALS, STATS_SEALS) == -1) {
		log_warn("fcntl(F_ADD_SEALS) of the statistics failed");
		close(fd);
		return -1;
	}
	/* Read-only for its owner, nothing for others: a child of the same
	 * user and without capabilities (a master not started as root) may
	 * reach /proc/MASTER/fd/N, and must not open it for writing. */
	if (fchmod(fd, S_IRUSR) == -1) {
		log_warn("fchmod() of the statistics failed");
		close(fd);
		return -1;
	}
	return fd;
}

/*
 * A second descriptor on the region, opened read-only: what children map
 * read-only from.  A shared mapping of a descriptor without write access
 * can never be made writable (mprotect() fails with EACCES).
 */
static int
region_reopen_ro(int fd)
{
	struct stat	 a, b;
	char		 path[64];
	int		 ro;

	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	if ((ro = open(path, O_RDONLY | O_CLOEXEC)) == -1) {
		log_warn("open(\"%s\") failed", path);
		return -1;
	}
	if (fstat(fd, &a) == -1 || fstat(ro, &b) == -1) {
		log_warn("fstat() of the statistics failed");
		close(ro);
		return -1;
	}
	if (a.st_dev != b.st_dev || a.st_ino != b.st_ino) {
		log_warnx("%s is not the statistics region", path);
		close(ro);
		return -1;
	}
	return ro;
}

/*
 * The master, before forking anything: maps the master area and
 * max_procs slots.  Size max_procs for every process that can hold a
 * slot at once: the current generation, the old ones still draining, and
 * workers dead but not yet reaped.  The region lives in a memfd, so that
 * an upgrade in place (upgrade.c) hands it to the next image, counters
 * and start time included: fd is that memfd, or -1 for a new region,
 * which starts zeroed.  A handed-over region laid out otherwise (another
 * build) is left alone, open, for the caller to close once this image
 * stays (the previous one may still need it back), and counting starts
 * afresh in a new region.
 */
int
stats_init(unsigned max_procs, int fd)
{
	struct stats_header	 want;
	const char		*why;
	size_t			 page, mlen, slen, len;
	long			 pg;
	void			*p;
	int			 fresh, ro;

	if (stats_map != NULL || stats_own != NULL)
		stats_fini();
	if (max_procs == 0 || max_procs > 65536) {
		log_warnx("stats_init(): a slot count of %u is out of range",
		    max_procs);
		return -1;
	}
	if ((pg = sysconf(_SC_PAGESIZE)) <= 0) {
		log_warn("sysconf(_SC_PAGESIZE) failed");
		return -1;
	}
	page = (size_t)pg;
	mlen = round_page(sizeof(struct stats_master) +
	    (size_t)max_procs * sizeof(struct stats_owner), page);
	slen = round_page(sizeof(struct stats_slot), page);
	len = mlen + (size_t)max_procs * slen;
	memset(&want, 0, sizeof(want));
	want.sh_magic = STATS_MAGIC;
	want.sh_layout = STATS_LAYOUT;
	want.sh_nslots = max_procs;
	want.sh_master_len = mlen;
	want.sh_slot_len = slen;

	fresh = fd == -1;
	if (!fresh && !region_fits(fd, &want, &why)) {
		log_warnx("statistics handed over by the previous image do "
		    "not fit this one (%s): counters start afresh", why);
		fresh = 1;
	}
	if (fresh && (fd = region_create(len)) == -1)
		return -1;
	if ((ro = region_reopen_ro(fd)) == -1)
		goto fail;
	p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED) {
		log_warn("mmap() failed");
		close(ro);
		goto fail;
	}
	stats_map = p;
	stats_map_len = len;
	stats_writer = 1;
	stats_whole = 1;
	stats_area = p;
	stats_owners = (struct stats_owner *)(void *)(stats_area + 1);
	stats_nslots = max_procs;
	stats_master_len = mlen;
	stats_slot_len = slen;
	stats_len = len;
	stats_page = page;
	stats_fd = fd;
	stats_rofd = ro;
	if (!fresh)
		return 0;	/* inherited as it was */
	/* A new region is zeroed: only the master area is set. */
	stats_area->sm_start_ns = clock_ns(CLOCK_REALTIME);
	stats_area->sm_start_mono_ns = clock_ns(CLOCK_MONOTONIC);
	snprintf(stats_area->sm_version, sizeof(stats_area->sm_version), "%s",
	    VERSION);
	stats_area->sm_hdr = want;
	return 0;
fail:
	if (fresh)
		close(fd);
	return -1;
}

/* The memfd of the region, for an upgrade in place; -1: none. */
int
stats_memfd(void)
{
	return stats_writer ? stats_fd : -1;
}

/* Unmaps the region in this process; the others keep their mapping. */
void
stats_fini(void)
{
	if (stats_map != NULL && munmap(stats_map, stats_map_len) == -1)
		log_warn("munmap() failed");
	if (stats_own != NULL && munmap(stats_own, stats_slot_len) == -1)
		log_warn("munmap() failed");
	if (stats_fd != -1)
		close(stats_fd);
	if (stats_rofd != -1)
		close(stats_rofd);
	stats_map = NULL;
	stats_map_len = 0;
	stats_own = NULL;
	stats_area = NULL;
	stats_owners = NULL;
	stats_self = NULL;
	stats_writer = stats_whole = 0;
	stats_nslots = 0;
	stats_len = 0;
	stats_fd = stats_rofd = -1;
}

/*
 * In a child, right after fork(): replaces the master's read-write
 * mapping with the master area read-only and the slot `slot` read-write
 * (reader: the whole region read-only, and no slot), closes both
 * descriptors, and guards the slot's mapping (stats_slot_guard()).  From then
 * on this process cannot change the region's size, the master area or
 * any other slot.  Returns -1 (logged) when that fails: counting is then
 * off in this process.
 */
static int
child_map(int slot, int reader)
{
	void	*map = MAP_FAILED, *own = MAP_FAILED;
	size_t	 len;
	int	 rc = -1;

	if (stats_map == NULL || !stats_writer)
		return -1;
	len = reader ? stats_len : stats_master_len;
	if (slot >= 0 && (uint32_t)slot >= stats_nslots)
		slot = -1;
	map = mmap(NULL, len, PROT_READ, MAP_SHARED, stats_rofd, 0);
	if (map == MAP_FAILED)
		log_warn("mmap() of the statistics failed");
	else if (slot >= 0) {
		own = mmap(NULL, stats_slot_len, PROT_READ | PROT_WRITE,
		    MAP_SHARED, stats_fd, (off_t)(stats_master_len +
		    (size_t)slot * stats_slot_len));
		if (own == MAP_FAILED)
			log_warn("mmap() of a statistics slot failed");
	}
	if (map != MAP_FAILED && (slot < 0 || own != MAP_FAILED))
		rc = 0;
	/* The master's mapping goes in any case: it is writable. */
	if (munmap(stats_map, stats_map_len) == -1)
		fatal("munmap() of the statistics failed");
	if (close(stats_fd) == -1 || close(stats_rofd) == -1)
		log_warn("close() of the statistics failed");
	stats_fd = stats_rofd = -1;
	stats_map = NULL;
	stats_area = NULL;
	stats_owners = NULL;
	stats_self = NULL;
	stats_writer = stats_whole = 0;
	if (rc == -1) {
		if (map != MAP_FAILED && munmap(map, len) == -1)
			log_warn("munmap() failed");
		if (own != MAP_FAILED && munmap(own, stats_slot_len) == -1)
			log_warn("munmap() failed");
		return -1;
	}
	stats_map = map;
	stats_map_len = len;
	stats_whole = reader;
	stats_area = map;
	stats_owners = (struct stats_owner *)(void *)(stats_area + 1);
	if (own == MAP_FAILED)
		return 0;
	/* Without the guard, the slot's mapping could reach the rest. */
	if (stats_slot_guard(own, stats_slot_len, stats_page) == -1) {
		if (munmap(own, stats_slot_len) == -1)
			fatal("munmap() of a statistics slot failed");
		return -1;
	}
	stats_own = own;
	stats_self = own;
	return 0;
}

/* A worker, right after fork(): its slot (-1: uncounted). */
int
stats_child(int slot)
{
	return child_map(slot, 0);
}

/* The status server, right after fork(): reads everything, counts
 * nothing. */
int
stats_child_reader(void)
{
	return child_map(-1, 1);
}

/*
 * The master, before fork(): reserves a free slot for worker `worker` of
 * generation `generation`.  The child learns the number by inheriting it
 * and maps that slot (stats_child()); no child ever searches the slots,
 * so two children cannot race for one.  The master records the child's
 * pid once fork() returns (stats_slot_started()).  Returns -1 (logged)
 * when all are taken: that worker then runs uncounted.
 */
int
stats_slot_acquire(unsigned worker, unsigned generation)
{
	struct stats_owner	*o;
	uint32_t		 i;

	if (!stats_writer)
		return -1;
	for (i = 0; i < stats_nslots; i++)
		if (STATS_LOAD(&stats_owners[i].so_inuse) == 0)
			break;
	if (i == stats_nslots) {
		log_warnx("all %u statistics slots are taken; worker %u runs "
		    "uncounted", i, worker);
		return -1;
	}
	o = &stats_owners[i];
	seq_begin();
	STATS_STORE(&o->so_pid, 0);
	STATS_STORE(&o->so_worker, worker);
	STATS_STORE(&o->so_generation, generation);
	STATS_STORE(&o->so_mode, STATS_LOAD(&stats_area->sm_mode));
	STATS_STORE(&o->so_inuse, 1);
	seq_end();
	return (int)i;
}

/* The master, once fork() returned: whose the slot is. */
void
stats_slot_started(int slot, pid_t pid)
{
	if (!stats_writer || slot < 0 || (uint32_t)slot >= stats_nslots)
		return;
	STATS_STORE(&stats_owners[slot].so_pid, (int32_t)pid);
}

/*
 * The master, once the slot's process has been reaped (or its fork
 * failed): folds the counters into the retired totals and frees the
 * slot.  Gauges are dropped: a dead process has no connections.
 */
void
stats_slot_release(int slot)
{
	struct stats_owner	*o;
	struct stats_slot	*s;
	uint64_t		*dst, *src;
	size_t			 i;

	if (!stats_writer || slot < 0 || (uint32_t)slot >= stats_nslots)
		return;
	o = &stats_owners[slot];
	if (STATS_LOAD(&o->so_inuse) == 0)
		return;
	s = slot_at((uint32_t)slot);
	dst = (uint64_t *)(void *)&stats_area->sm_retired;
	src = (uint64_t *)(void *)&s->ss_c;
	seq_begin();
	for (i = 0; i < COUNTER_WORDS; i++) {
		STATS_ADD(&dst[i], STATS_LOAD(&src[i]));
		STATS_STORE(&src[i], 0);
	}
	for (i = 0; i < STATS_NSTATES; i++)
		STATS_STORE(&s->ss_conns[i], 0);
	STATS_STORE(&o->so_pid, 0);
	STATS_STORE(&o->so_inuse, 0);
	seq_end();
}

/* The slot of a process, found by its pid (after an upgrade in place,
 * the old image's workers are known by pid only); -1: none.  Owners are
 * written by masters only. */
int
stats_slot_of(pid_t pid)
{
	uint32_t	 i;

	if (stats_owners == NULL || pid <= 0)
		return -1;
	for (i = 0; i < stats_nslots; i++)
		if (STATS_LOAD(&stats_owners[i].so_inuse) &&
		    STATS_LOAD(&stats_owners[i].so_pid) == (int32_t)pid)
			return (int)i;
	return -1;
}

/* The master, at start and after each successful reload, before it
 * spawns that generation: slots take their mode from here. */
void
stats_set_config(unsigned generation, enum stats_mode mode, unsigned workers)
{
	if (!stats_writer)
		return;
	seq_begin();
	STATS_STORE(&stats_area->sm_generation, generation);
	STATS_STORE(&stats_area->sm_mode, (uint32_t)mode);
	STATS_STORE(&stats_area->sm_workers, workers);
	seq_end();
}

/* The serving figure: after an upgrade in place, the previous image's. */
unsigned
stats_serving(void)
{
	return stats_area != NULL ? STATS_LOAD(&stats_area->sm_serving) : 0;
}

void
stats_set_serving(unsigned n)
{
	if (stats_writer)
		STATS_STORE(&stats_area->sm_serving, n);
}

void
stats_set_draining(int on)
{
	if (stats_writer)
		STATS_STORE(&stats_area->sm_draining, on ? 1 : 0);
}

void
stats_worker_restarted(void)
{
	if (stats_writer)
		STATS_ADD(&stats_area->sm_restarts, 1);
}

/* A reload attempt: ok counts a new generation, !ok a failure. */
void
stats_reloaded(int ok)
{
	if (!stats_writer)
		return;
	if (ok)
		STATS_ADD(&stats_area->sm_reloads, 1);
	else
		STATS_ADD(&stats_area->sm_reload_failures, 1);
}

/* Points the hot path at slot `slot` of this process's mapping of every
 * slot (the master's, in tests); -1 leaves counting off.  A child has
 * its slot from stats_child(). */
void
stats_attach(int slot)
{
	if (!stats_writer || slot < 0 || (uint32_t)slot >= stats_nslots) {
		stats_self = NULL;
		return;
	}
	stats_self = slot_at((uint32_t)slot);
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
	const struct stats_owner *o;
	const struct stats_slot	*s;
	struct stats_worker_row	*row;
	struct stats_counters	 c;
	unsigned char		 seen[STATS_MAX_WORKERS];
	uint32_t		 i, w, mode;
	unsigned		 k;
	uint64_t		 v;

	memset(sn, 0, sizeof(*sn));
	memset(seen, 0, sizeof(seen));
	sn->sn_start_ns = STATS_LOAD(&m->sm_start_ns);
	sn->sn_generation = STATS_LOAD(&m->sm_generation);
	mode = STATS_LOAD(&m->sm_mode);
	sn->sn_mode = mode < STATS_NMODES ? (enum stats_mode)mode :
	    STATS_MODE_ASYNC;
	sn->sn_workers = STATS_LOAD(&m->sm_workers);
	sn->sn_serving = STATS_LOAD(&m->sm_serving);
	sn->sn_draining = STATS_LOAD(&m->sm_draining) != 0;
	sn->sn_restarts = STATS_LOAD(&m->sm_restarts);
	sn->sn_reloads = STATS_LOAD(&m->sm_reloads);
	sn->sn_reload_failures = STATS_LOAD(&m->sm_reload_failures);
	memcpy(sn->sn_version, m->sm_version, sizeof(sn->sn_version));
	sn->sn_version[sizeof(sn->sn_version) - 1] = '\0';
	counters_add(&sn->sn_total, &m->sm_retired);

	/* Bounded by this process's own slot count. */
	for (i = 0; i < stats_nslots; i++) {
		o = &stats_owners[i];
		if (STATS_LOAD(&o->so_inuse) == 0)
			continue;
		s = slot_at(i);
		memset(&c, 0, sizeof(c));
		counters_add(&c, &s->ss_c);
		counters_add(&sn->sn_total, &c);
		w = STATS_LOAD(&o->so_worker);
		row = NULL;
		if (STATS_LOAD(&o->so_generation) == sn->sn_generation &&
		    w < STATS_MAX_WORKERS) {
			/* Two slots of one index (a master that respawns
			 * before releasing) make one row. */
			row = &sn->sn_rows[w];
			if (!seen[w] || row->sw_pid == 0)
				row->sw_pid = STATS_LOAD(&o->so_pid);
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

	if (stats_area == NULL || !stats_whole)
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
	if (stats_area != NULL && STATS_LOAD(&stats_area->sm_draining))
		*why = "draining";
	else if (stats_serving() == 0)
		*why = "no workers";
	else {
		*why = "ok";
		return 1;
	}
	return 0;
}
