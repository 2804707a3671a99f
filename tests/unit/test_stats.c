/*
 * Unit tests for the shared counters (src/stats.c): slots, folding, the
 * sequence lock, histogram edges, the master area, the accept-queue
 * figures.  Rendering is tested in test_stats_render.c.
 */
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include <netinet/in.h>
#include <arpa/inet.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "hellod.h"
#include "stats.h"

#define NS		UINT64_C(1000000000)

static struct stats_snapshot	 snap, snap2;

static int
teardown(void **state)
{
	(void)state;
	stats_fini();
	return 0;
}

static void
test_code_index(void **state)
{
	unsigned	 i;

	(void)state;
	for (i = 0; i < STATS_NCODES; i++)
		assert_int_equal(stats_code_index(stats_codes[i]), i);
	/* Anything else is answered, and counted, as 500. */
	assert_int_equal(stats_codes[stats_code_index(418)], 500);
	assert_int_equal(stats_codes[stats_code_index(0)], 500);
	assert_int_equal(stats_codes[stats_code_index(-1)], 500);
}

static void
test_bucket_index(void **state)
{
	unsigned	 i;

	(void)state;
	assert_int_equal(stats_bucket_index(0), 0);
	for (i = 0; i < STATS_NBUCKETS; i++) {
		/* "le": the bound itself is inside. */
		assert_int_equal(stats_bucket_index(stats_bucket_ns[i]), i);
		assert_int_equal(stats_bucket_index(stats_bucket_ns[i] + 1),
		    i + 1);
		if (i > 0)
			assert_true(stats_bucket_ns[i] > stats_bucket_ns[i - 1]);
	}
	assert_int_equal(stats_bucket_index(UINT64_MAX), STATS_NBUCKETS);
}

/* The text and the nanoseconds of each bound say the same. */
static void
test_bucket_text(void **state)
{
	unsigned	 i;

	(void)state;
	for (i = 0; i < STATS_NBUCKETS; i++)
		assert_int_equal((uint64_t)(strtod(stats_bucket_text[i], NULL) *
		    1e9 + .5), stats_bucket_ns[i]);
}

/* Seconds given by a caller land where their decimal value says. */
static void
test_request_edges(void **state)
{
	static const struct {
		double		 secs;
		unsigned	 bucket;
	} cases[] = {
		{ 0., 0 }, { -1., 0 }, { 0.0001, 0 }, { 0.000100001, 1 },
		{ 0.00025, 1 }, { 0.001, 3 }, { 0.0010001, 4 }, { 0.1, 9 },
		{ 1., 12 }, { 1.0000001, 13 }, { 2.5, 13 }, { 10., 15 },
		{ 10.000001, 16 }, { 1e12, 16 },
	};
	struct stats_slot	*s;
	unsigned		 i, k;
	int			 slot;

	(void)state;
	assert_int_equal(stats_init(2, -1), 0);
	assert_true((slot = stats_slot_acquire(0, 1)) >= 0);
	stats_attach(slot);
	s = stats_self;
	assert_non_null(s);
	assert_int_equal((uintptr_t)s % (uintptr_t)sysconf(_SC_PAGESIZE), 0);
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		stats_request(200, 1, cases[i].secs);
		for (k = 0; k <= STATS_NBUCKETS; k++)
			assert_int_equal(s->ss_c.sc_buckets[k],
			    k == cases[i].bucket ? 1 : 0);
		memset(s->ss_c.sc_buckets, 0, sizeof(s->ss_c.sc_buckets));
	}
	stats_request(200, 0, NAN);
	assert_int_equal(s->ss_c.sc_buckets[0], 1);
	s->ss_c.sc_duration_ns = 0;
	stats_request(200, 0, 1.5);
	stats_request(405, 0, 0.0000005);
	assert_int_equal(s->ss_c.sc_duration_ns, 1500000500);
	stats_attach(-1);
	assert_null(stats_self);
}

/* Without a slot, the hot-path calls do nothing (fuzz targets, tests). */
static void
test_no_slot(void **state)
{
	(void)state;
	stats_attach(-1);
	stats_request(200, 100, 0.5);
	stats_conn_move(-1, STATS_READING);
	stats_accepted();
	stats_accept_paused(STATS_PAUSE_EMFILE);
	assert_int_equal(stats_snapshot(&snap), -1);
	assert_int_equal(stats_slot_acquire(0, 1), -1);
	stats_slot_release(0);
}

static void
test_slots_exhausted(void **state)
{
	int	 a, b;

	(void)state;
	assert_int_equal(stats_init(2, -1), 0);
	assert_int_equal((a = stats_slot_acquire(0, 1)), 0);
	assert_int_equal((b = stats_slot_acquire(1, 1)), 1);
	assert_int_equal(stats_slot_acquire(2, 1), -1);
	stats_slot_release(a);
	assert_int_equal(stats_slot_acquire(2, 1), a);
	stats_slot_release(b);
	stats_slot_release(b);		/* twice: harmless */
	stats_slot_release(-1);
	stats_slot_release(2);
}

/* What child k of a round counts: known, different numbers. */
#define CHILD_OK(k)	(100 + 10 * (k))
#define CHILD_405(k)	(3 + (k))
#define CHILD_ACC(k)	(20 + (k))

static void
child_count(int k)
{
	int	 i;

	for (i = 0; i < CHILD_OK(k); i++)
		stats_request(200, 1000, 0.0002);
	for (i = 0; i < CHILD_405(k); i++)
		stats_request(405, 100, 2.0);
	for (i = 0; i < CHILD_ACC(k); i++)
		stats_accepted();
	stats_accept_paused(STATS_PAUSE_MAXCONN);
	stats_conn_move(-1, STATS_READING);
	stats_conn_move(STATS_READING, STATS_IDLE);	/* still open */
	stats_conn_move(-1, STATS_WRITING);
	stats_conn_move(STATS_WRITING, -1);
}

/* Forks n workers of generation gen that count and exit; returns their
 * slots, not yet released. */
static void
round_run(unsigned gen, int n, int *slots)
{
	pid_t	 pid;
	int	 k, status;

	for (k = 0; k < n; k++) {
		/* The master's side: the slot is reserved before fork. */
		assert_true((slots[k] = stats_slot_acquire((unsigned)k, gen)) >=
		    0);
		pid = fork();
		assert_true(pid != -1);
		if (pid == 0) {
			if (stats_child(slots[k]) == -1)
				_exit(1);
			child_count(k);
			_exit(0);
		}
		stats_slot_started(slots[k], pid);
		assert_int_equal(waitpid(pid, &status, 0), pid);
		assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	}
}

static void
assert_round_totals(const struct stats_snapshot *sn, int n, int rounds)
{
	uint64_t	 ok = 0, nf = 0, acc = 0;
	int		 k;

	for (k = 0; k < n; k++) {
		ok += CHILD_OK(k);
		nf += CHILD_405(k);
		acc += CHILD_ACC(k);
	}
	ok *= rounds;
	nf *= rounds;
	acc *= rounds;
	assert_int_equal(sn->sn_total.sc_requests[stats_code_index(200)], ok);
	assert_int_equal(sn->sn_total.sc_requests[stats_code_index(405)], nf);
	assert_int_equal(stats_requests(&sn->sn_total), ok + nf);
	assert_int_equal(sn->sn_total.sc_bytes, ok * 1000 + nf * 100);
	assert_int_equal(sn->sn_total.sc_accepted, acc);
	assert_int_equal(sn->sn_total.sc_pauses[STATS_PAUSE_MAXCONN],
	    (uint64_t)n * rounds);
	assert_int_equal(sn->sn_total.sc_pauses[STATS_PAUSE_EMFILE], 0);
	assert_int_equal(sn->sn_total.sc_buckets[1], ok);
	assert_int_equal(sn->sn_total.sc_buckets[13], nf);
	assert_int_equal(sn->sn_total.sc_duration_ns, ok * 200000 + nf * 2 * NS);
}

static void
assert_monotonic(const struct stats_counters *before,
    const struct stats_counters *after)
{
	const uint64_t	*a = (const uint64_t *)(const void *)before;
	const uint64_t	*b = (const uint64_t *)(const void *)after;
	size_t		 i;

	for (i = 0; i < sizeof(*before) / sizeof(uint64_t); i++)
		assert_true(b[i] >= a[i]);
}

/*
 * Workers count in their slots and exit; their totals are exact while
 * the slots wait to be released, stay exact after the fold, and keep
 * growing over a second generation.
 */
static void
test_fold_exact(void **state)
{
	int		 slots[4], k;
	unsigned	 s;

	(void)state;
	assert_int_equal(stats_init(8, -1), 0);
	stats_set_config(1, STATS_MODE_ASYNC, 4);

	round_run(1, 4, slots);
	assert_int_equal(stats_snapshot(&snap), 0);
	assert_round_totals(&snap, 4, 1);
	/* Reaped, not yet released: still rows, with their gauges. */
	assert_int_equal(snap.sn_nrows, 4);
	assert_int_equal(snap.sn_conns[STATS_IDLE], 4);
	assert_int_equal(snap.sn_conns[STATS_WRITING], 0);
	for (k = 0; k < 4; k++) {
		assert_int_equal(snap.sn_rows[k].sw_worker, k);
		assert_true(snap.sn_rows[k].sw_pid > 0);
		assert_int_equal(snap.sn_rows[k].sw_requests,
		    CHILD_OK(k) + CHILD_405(k));
		assert_int_equal(snap.sn_rows[k].sw_accepted, CHILD_ACC(k));
		assert_int_equal(snap.sn_rows[k].sw_conns[STATS_IDLE], 1);
	}

	for (k = 0; k < 4; k++)
		stats_slot_release(slots[k]);
	assert_int_equal(stats_snapshot(&snap2), 0);
	assert_round_totals(&snap2, 4, 1);
	assert_monotonic(&snap.sn_total, &snap2.sn_total);
	assert_int_equal(snap2.sn_nrows, 0);
	for (s = 0; s < STATS_NSTATES; s++)
		assert_int_equal(snap2.sn_conns[s], 0);

	/* A reload: generation 2, three workers. */
	stats_set_config(2, STATS_MODE_SYNC, 3);
	stats_reloaded(1);
	round_run(2, 4, slots);
	assert_int_equal(stats_snapshot(&snap), 0);
	assert_round_totals(&snap, 4, 2);
	assert_monotonic(&snap2.sn_total, &snap.sn_total);
	for (k = 0; k < 4; k++)
		stats_slot_release(slots[k]);
	assert_int_equal(stats_snapshot(&snap2), 0);
	assert_round_totals(&snap2, 4, 2);
	assert_monotonic(&snap.sn_total, &snap2.sn_total);
	assert_int_equal(snap2.sn_generation, 2);
	assert_int_equal(snap2.sn_mode, STATS_MODE_SYNC);
	assert_int_equal(snap2.sn_workers, 3);
	assert_int_equal(snap2.sn_reloads, 1);
}

/* Rows: only the current generation, in worker order; two slots of one
 * index make one row. */
static void
test_rows(void **state)
{
	int	 a, b, c, d;

	(void)state;
	assert_int_equal(stats_init(8, -1), 0);
	stats_set_config(1, STATS_MODE_ASYNC, 2);
	a = stats_slot_acquire(0, 1);
	stats_set_config(2, STATS_MODE_ASYNC, 2);
	b = stats_slot_acquire(1, 2);
	c = stats_slot_acquire(0, 2);
	d = stats_slot_acquire(1, 2);
	assert_true(a >= 0 && b >= 0 && c >= 0 && d >= 0);
	stats_slot_started(b, getpid());
	stats_attach(a);
	stats_request(200, 1, 0.);
	stats_attach(b);
	stats_request(200, 1, 0.);
	stats_request(200, 1, 0.);
	stats_conn_move(-1, STATS_DELAYED);
	stats_attach(d);
	stats_request(505, 1, 0.);
	stats_attach(-1);

	assert_int_equal(stats_snapshot(&snap), 0);
	assert_int_equal(stats_requests(&snap.sn_total), 4);
	assert_int_equal(snap.sn_nrows, 2);
	assert_int_equal(snap.sn_rows[0].sw_worker, 0);
	assert_int_equal(snap.sn_rows[0].sw_requests, 0);
	assert_int_equal(snap.sn_rows[1].sw_worker, 1);
	assert_int_equal(snap.sn_rows[1].sw_requests, 3);
	assert_int_equal(snap.sn_rows[1].sw_conns[STATS_DELAYED], 1);
	assert_int_equal(snap.sn_rows[1].sw_pid, getpid());
	assert_int_equal(snap.sn_conns[STATS_DELAYED], 1);
}

static void
test_master_area(void **state)
{
	const char	*why;

	(void)state;
	assert_int_equal(stats_init(1, -1), 0);
	assert_int_equal(stats_health(&why), 0);
	assert_string_equal(why, "no workers");
	stats_set_serving(2);
	assert_int_equal(stats_health(&why), 1);
	stats_set_draining(1);
	assert_int_equal(stats_health(&why), 0);
	assert_string_equal(why, "draining");
	stats_worker_restarted();
	stats_worker_restarted();
	stats_reloaded(0);
	assert_int_equal(stats_snapshot(&snap), 0);
	assert_int_equal(snap.sn_restarts, 2);
	assert_int_equal(snap.sn_reloads, 0);
	assert_int_equal(snap.sn_reload_failures, 1);
	assert_int_equal(snap.sn_serving, 2);
	assert_true(snap.sn_draining);
	assert_string_equal(snap.sn_version, VERSION);
	/* Started just now, by the wall clock. */
	assert_true(snap.sn_start_ns > (uint64_t)(time(NULL) - 5) * NS);
	assert_true(snap.sn_uptime_ns < 5 * NS);
}

/*
 * The sequence lock.  The parent plays a master that folds slot after
 * slot, each holding exactly ROUND_REQ requests, while a child reads
 * snapshots as fast as it can.  Each snapshot must lie between the
 * rounds finished before it and the rounds started after it, and never
 * go back: a half fold would count a slot twice, or not at all.  The
 * parent folds only once the reader has seen the filled slot, so that a
 * fold that loses the slot's counters shows as a step back.
 */
#define ROUNDS		20000
#define ROUND_REQ	1000

struct race {
	uint64_t	 r_started;
	uint64_t	 r_done;
	uint64_t	 r_reader_ready;
	uint64_t	 r_snapshots;
	uint64_t	 r_during;	/* snapshots taken while folding */
	uint64_t	 r_exited;	/* the reader stopped: no more waiting */
	uint64_t	 r_final;	/* rounds, once the parent is done */
};

static int
race_reader(struct race *r)
{
	uint64_t	 done, started, req, bytes, last = 0, final;
	double		 until = now_mono() + 60;

	__atomic_store_n(&r->r_reader_ready, 1, __ATOMIC_RELEASE);
	for (;;) {
		final = __atomic_load_n(&r->r_final, __ATOMIC_ACQUIRE);
		done = __atomic_load_n(&r->r_done, __ATOMIC_ACQUIRE);
		if (stats_snapshot(&snap) == -1)
			return 5;
		started = __atomic_load_n(&r->r_started, __ATOMIC_ACQUIRE);
		req = snap.sn_total.sc_requests[0];
		bytes = snap.sn_total.sc_bytes;
		if (req < done * ROUND_REQ || req > started * ROUND_REQ)
			return 2;
		if (req < last || req % ROUND_REQ != 0 ||
		    bytes % (7 * ROUND_REQ) != 0)
			return 3;
		last = req;
		__atomic_store_n(&r->r_snapshots, r->r_snapshots + 1,
		    __ATOMIC_RELEASE);
		if (done < started)
			r->r_during++;
		if (final != 0 && done == final)
			return req == final * ROUND_REQ ? 0 : 4;
		if (now_mono() > until)
			return 6;
	}
}

static void
test_seqlock(void **state)
{
	struct race	*r;
	pid_t		 pid;
	uint64_t	 seen, spins;
	double		 until;
	int		 status, slot;
	unsigned	 i;

	(void)state;
	r = mmap(NULL, sizeof(*r), PROT_READ | PROT_WRITE,
	    MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	assert_true(r != MAP_FAILED);
	memset(r, 0, sizeof(*r));
	assert_int_equal(stats_init(4, -1), 0);
	stats_set_config(1, STATS_MODE_ASYNC, 1);

	pid = fork();
	assert_true(pid != -1);
	if (pid == 0) {
		status = race_reader(r);
		__atomic_store_n(&r->r_exited, 1, __ATOMIC_RELEASE);
		_exit(status);
	}
	while (!__atomic_load_n(&r->r_reader_ready, __ATOMIC_ACQUIRE))
		usleep(1000);

	/* Bounded in time too: on one CPU, rounds wait for time slices. */
	until = now_mono() + 3;
	for (i = 0; i < ROUNDS && now_mono() < until; i++) {
		__atomic_store_n(&r->r_started, i + 1, __ATOMIC_RELEASE);
		slot = stats_slot_acquire(0, 1);
		assert_true(slot >= 0);
		/* The worker's part, in one store per word. */
		stats_attach(slot);
		STATS_STORE(&stats_self->ss_c.sc_requests[0], ROUND_REQ);
		STATS_STORE(&stats_self->ss_c.sc_bytes, 7 * ROUND_REQ);
		stats_attach(-1);
		seen = __atomic_load_n(&r->r_snapshots, __ATOMIC_ACQUIRE) + 2;
		for (spins = 0; __atomic_load_n(&r->r_snapshots,
		    __ATOMIC_ACQUIRE) < seen; spins++)
			if (__atomic_load_n(&r->r_exited, __ATOMIC_ACQUIRE) ||
			    spins > 100000000)
				break;
			else if (spins > 100)
				sched_yield();	/* one CPU: let it run */
		stats_slot_release(slot);
		__atomic_store_n(&r->r_done, i + 1, __ATOMIC_RELEASE);
	}
	__atomic_store_n(&r->r_final, i, __ATOMIC_RELEASE);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	print_message("      %u folds, %llu snapshots, %llu during folds\n",
	    i, (unsigned long long)r->r_snapshots,
	    (unsigned long long)r->r_during);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	assert_true(r->r_snapshots > 0);
	munmap(r, sizeof(*r));
}

/*
 * Linux reports a listening socket's accept queue in tcpi_unacked and its
 * backlog in tcpi_sacked: three connections nobody accepted are three.
 */
static void
test_listen_queue(void **state)
{
	struct sockaddr_in	 sin;
	socklen_t		 slen = sizeof(sin);
	unsigned		 len = 99, limit = 99, i;
	int			 lfd, cfd[3], one = 1, tries;

	(void)state;
	lfd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(lfd != -1);
	assert_int_equal(setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one,
	    sizeof(one)), 0);
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(lfd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	/* Not listening yet. */
	assert_int_equal(stats_listen_queue(lfd, &len, &limit), -1);
	assert_int_equal(listen(lfd, 17), 0);
	assert_int_equal(getsockname(lfd, (struct sockaddr *)&sin, &slen), 0);
	assert_int_equal(stats_listen_queue(lfd, &len, &limit), 0);
	assert_int_equal(len, 0);
	assert_int_equal(limit, 17);
	for (i = 0; i < 3; i++) {
		cfd[i] = socket(AF_INET, SOCK_STREAM, 0);
		assert_true(cfd[i] != -1);
		assert_int_equal(connect(cfd[i], (struct sockaddr *)&sin,
		    sizeof(sin)), 0);
	}
	/* The handshake completes in the kernel, not necessarily before
	 * connect() returns. */
	for (tries = 0; tries < 1000; tries++) {
		assert_int_equal(stats_listen_queue(lfd, &len, &limit), 0);
		if (len == 3)
			break;
		usleep(1000);
	}
	assert_int_equal(len, 3);
	assert_int_equal(limit, 17);
	i = (unsigned)accept(lfd, NULL, NULL);
	assert_true((int)i != -1);
	close((int)i);
	assert_int_equal(stats_listen_queue(lfd, &len, &limit), 0);
	assert_int_equal(len, 2);
	for (i = 0; i < 3; i++)
		close(cfd[i]);
	close(lfd);
	/* Not a socket at all: -1 (and a warning). */
	assert_int_equal(stats_listen_queue(lfd, &len, &limit), -1);
}

/* The region's mappings in this process, from /proc/self/maps. */
struct region_map {
	uintptr_t	 rm_lo, rm_hi;
	char		 rm_perms[5];
	unsigned long long rm_off;
};

static unsigned
region_maps(struct region_map *rm, unsigned max)
{
	FILE		*f;
	char		 line[512];
	unsigned	 n = 0;

	assert_non_null(f = fopen("/proc/self/maps", "r"));
	while (fgets(line, sizeof(line), f) != NULL && n < max) {
		if (strstr(line, "memfd:hellod-stats") == NULL)
			continue;
		assert_int_equal(sscanf(line, "%" SCNxPTR "-%" SCNxPTR
		    " %4s %llx", &rm[n].rm_lo, &rm[n].rm_hi, rm[n].rm_perms,
		    &rm[n].rm_off), 4);
		n++;
	}
	fclose(f);
	return n;
}

/* Descriptors of this process open on the region. */
static unsigned
region_fds(void)
{
	char		 path[64], target[256];
	ssize_t		 n;
	unsigned	 found = 0;
	int		 fd;

	for (fd = 0; fd < 1024; fd++) {
		snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
		if ((n = readlink(path, target, sizeof(target) - 1)) <= 0)
			continue;
		target[n] = '\0';
		if (strncmp(target, "/memfd:hellod-stats", 19) == 0)
			found++;
	}
	return found;
}

/* The master's region can neither shrink nor grow, nor be unsealed. */
static void
test_sealed(void **state)
{
	int	 fd;

	(void)state;
	assert_int_equal(stats_init(4, -1), 0);
	assert_true((fd = stats_memfd()) != -1);
	assert_int_equal(fcntl(fd, F_GET_SEALS),
	    F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL);
	assert_int_equal(ftruncate(fd, 0), -1);
	assert_int_equal(errno, EPERM);
	assert_int_equal(ftruncate(fd, 1 << 30), -1);
	assert_int_equal(errno, EPERM);
	assert_int_equal(fcntl(fd, F_ADD_SEALS, F_SEAL_WRITE), -1);
	assert_int_equal(errno, EPERM);
}

/*
 * A worker, after stats_child(): no descriptor on the region; the master
 * area and nothing else read-only, its own slot read-write, and
 * mprotect() cannot make the read-only part writable.  Its counts reach
 * the master.  The status server (stats_child_reader()) maps everything
 * read-only.
 */
static void
child_check(int slot, int reader)
{
	struct region_map	 rm[8];
	long			 page = sysconf(_SC_PAGESIZE);
	unsigned		 n, i, rw = 0;

	if ((reader ? stats_child_reader() : stats_child(slot)) == -1)
		_exit(10);
	if (region_fds() != 0 || stats_memfd() != -1)
		_exit(11);
	n = region_maps(rm, 8);
	if (n != (reader ? 1u : 2u))
		_exit(12);
	for (i = 0; i < n; i++) {
		if (strcmp(rm[i].rm_perms, "rw-s") == 0) {
			/* Only its own slot, one page. */
			if (reader || rm[i].rm_off == 0 ||
			    rm[i].rm_hi - rm[i].rm_lo != (uintptr_t)page)
				_exit(13);
			rw++;
			continue;
		}
		if (strcmp(rm[i].rm_perms, "r--s") != 0 || rm[i].rm_off != 0)
			_exit(14);
		if (mprotect((void *)rm[i].rm_lo, rm[i].rm_hi - rm[i].rm_lo,
		    PROT_READ | PROT_WRITE) != -1 || errno != EACCES)
			_exit(15);
	}
	if (rw != (reader ? 0u : 1u))
		_exit(16);
	/* Its writable mapping cannot be stretched over, or pointed at,
	 * other pages of the region: mremap() growing it or duplicating it,
	 * remap_file_pages() moving it onto the master area. */
	for (i = 0; i < n && !reader; i++) {
		if (strcmp(rm[i].rm_perms, "rw-s") != 0)
			continue;
		if (mremap((void *)rm[i].rm_lo, (size_t)page, 2 * (size_t)page,
		    MREMAP_MAYMOVE) != MAP_FAILED || errno != EPERM)
			_exit(18);
		if (mremap((void *)rm[i].rm_lo, 0, 2 * (size_t)page,
		    MREMAP_MAYMOVE) != MAP_FAILED || errno != EPERM)
			_exit(19);
		if (remap_file_pages((void *)rm[i].rm_lo, (size_t)page, 0, 0,
		    0) != -1 || errno != EPERM)
			_exit(20);
	}
	if (reader) {
		if (stats_snapshot(&snap) == -1 || snap.sn_generation != 7)
			_exit(17);
	} else
		child_count(0);
	_exit(0);
}

static void
test_child_mappings(void **state)
{
	pid_t	 pid;
	int	 slot, reader, status;

	(void)state;
	assert_int_equal(stats_init(4, -1), 0);
	stats_set_config(7, STATS_MODE_ASYNC, 1);
	for (reader = 0; reader < 2; reader++) {
		slot = reader ? -1 : stats_slot_acquire(0, 7);
		pid = fork();
		assert_true(pid != -1);
		if (pid == 0)
			child_check(slot, reader);
		stats_slot_started(slot, pid);
		assert_int_equal(waitpid(pid, &status, 0), pid);
		assert_true(WIFEXITED(status));
		assert_int_equal(WEXITSTATUS(status), 0);
	}
	assert_int_equal(stats_snapshot(&snap), 0);
	assert_round_totals(&snap, 1, 1);
	assert_int_equal(stats_slot_of(pid), -1);	/* the reader's */
	assert_int_equal(region_fds(), 2);	/* the master keeps its own */
}

/*
 * An upgrade in place hands the region over: the same layout keeps every
 * figure; another one (here another slot count, an unsealed memfd, or
 * none of ours) starts afresh and leaves the handed descriptor open.
 */
static void
test_handover(void **state)
{
	int	 fd, slot, other;

	(void)state;
	assert_int_equal(stats_init(4, -1), 0);
	slot = stats_slot_acquire(0, 1);
	stats_attach(slot);
	child_count(0);
	stats_attach(-1);
	stats_slot_release(slot);
	stats_reloaded(1);
	assert_true((fd = dup(stats_memfd())) != -1);

	assert_int_equal(stats_init(4, fd), 0);
	assert_int_equal(stats_memfd(), fd);
	assert_int_equal(stats_snapshot(&snap), 0);
	assert_round_totals(&snap, 1, 1);
	assert_int_equal(snap.sn_reloads, 1);
	assert_true((fd = dup(stats_memfd())) != -1);

	assert_int_equal(stats_init(5, fd), 0);
	assert_true(stats_memfd() != fd);
	assert_int_not_equal(fcntl(fd, F_GETFD), -1);
	assert_int_equal(stats_snapshot(&snap), 0);
	assert_int_equal(stats_requests(&snap.sn_total), 0);
	assert_int_equal(snap.sn_reloads, 0);
	close(fd);

	assert_true((other = memfd_create("hellod-stats", MFD_CLOEXEC)) != -1);
	assert_int_equal(ftruncate(other, 1 << 20), 0);
	assert_int_equal(stats_init(4, other), 0);
	assert_true(stats_memfd() != other);
	close(other);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_code_index),
		cmocka_unit_test(test_bucket_index),
		cmocka_unit_test(test_bucket_text),
		cmocka_unit_test_teardown(test_request_edges, teardown),
		cmocka_unit_test(test_no_slot),
		cmocka_unit_test_teardown(test_slots_exhausted, teardown),
		cmocka_unit_test_teardown(test_fold_exact, teardown),
		cmocka_unit_test_teardown(test_rows, teardown),
		cmocka_unit_test_teardown(test_master_area, teardown),
		cmocka_unit_test_teardown(test_seqlock, teardown),
		cmocka_unit_test(test_listen_queue),
		cmocka_unit_test_teardown(test_sealed, teardown),
		cmocka_unit_test_teardown(test_child_mappings, teardown),
		cmocka_unit_test_teardown(test_handover, teardown),
	};

	/* The warnings some tests provoke on purpose stay quiet. */
	log_open("stderr", LOG_LEVEL_ERROR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
