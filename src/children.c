/*
 * The master's children: forking workers and the status server,
 * signalling them, reaping them, and respawning workers with backoff.
 * Below master.c: it works on the struct master it is given and answers
 * by return values; it never calls back into master.c.
 */
#include <sys/prctl.h>
#include <sys/wait.h>

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hellod.h"
#include "master.h"
#include "stats.h"
#include "status.h"

static void
describe_status(int status, char *buf, size_t len)
{
	if (WIFEXITED(status))
		snprintf(buf, len, "exited with code %d", WEXITSTATUS(status));
	else if (WIFSIGNALED(status))
		snprintf(buf, len, "killed by signal %d%s", WTERMSIG(status),
		    WCOREDUMP(status) ? " (core dumped)" : "");
	else
		snprintf(buf, len, "stopped (status %d)", status);
}

/*
 * In a child, once it has dropped its privileges: a SIGTERM when the
 * master dies.  Set after the drop, which clears it (a change of
 * credentials resets the parent-death signal), and checked against the
 * master's pid in case it died before.
 */
static void
child_watch_master(const struct master *m)
{
	if (prctl(PR_SET_PDEATHSIG, SIGTERM) == -1)
		log_warn("prctl(PR_SET_PDEATHSIG) failed");
	if (getppid() != m->m_pid)
		_exit(0);	/* the master is already gone */
}

/* In a child of the master: the signal dispositions and descriptors of
 * a worker or the status server. */
static void
child_prepare(struct master *m)
{
	struct sigaction	 sa;
	unsigned		 i;

	memset(&sa, 0, sizeof(sa));
	sigemptyset(&sa.sa_mask);
	sa.sa_handler = SIG_DFL;
	for (i = 0; i < m->m_nsignals; i++)
		if (sigaction(m->m_signals[i], &sa, NULL) == -1)
			fatal("sigaction() failed");
	/* The master coordinates stopping, reloading and upgrading: a
	 * terminal's SIGINT or SIGHUP, or a SIGUSR2 sent to the whole
	 * group, is its business. */
	sa.sa_handler = SIG_IGN;
	if (sigaction(SIGINT, &sa, NULL) == -1 ||
	    sigaction(SIGHUP, &sa, NULL) == -1 ||
	    sigaction(SIGUSR2, &sa, NULL) == -1 ||
	    sigaction(SIGPIPE, &sa, NULL) == -1)
		fatal("sigaction() failed");

	close(m->m_ready_pipe[0]);
	/* Session ticket keys: read-only from here on. */
	tls_keys_child();
	if (m->m_pidfd != -1)
		close(m->m_pidfd);
	for (i = 0; i < m->m_nretired; i++)
		close(m->m_retired[i]);
}

/* The child side of spawn(): never returns. */
static void
worker_start(struct master *m, unsigned slot, int stats_slot)
{
	static struct hd_worker_ctx ctx;
	char			 ident[32];
	pid_t			 me;

	/* First: the master's writable mapping and the descriptors to the
	 * counters go before anything else runs in this process. */
	if (stats_child(stats_slot) == -1)
		log_warnx("worker %u runs uncounted", slot);
	child_prepare(m);
	memset(&ctx, 0, sizeof(ctx));
	ctx.wc_config = m->m_cf;
	ctx.wc_slot = (int)slot;
	ctx.wc_generation = m->m_generation;
	ctx.wc_nsocks = listeners_slot_sockets(m->m_ls, slot, m->m_nslots,
	    ctx.wc_socks);
	listeners_close_others(m->m_ls, ctx.wc_socks, ctx.wc_nsocks);

	snprintf(ident, sizeof(ident), "worker %u", slot);
	log_set_ident(ident);
	if (access_open(m->m_cf) == -1 || privileges_drop(m->m_cf) == -1)
		_exit(HD_EXIT_FATAL);
	child_watch_master(m);

	/* Report readiness before serving: the master announces the service
	 * once every worker has, and the listeners already queue clients. */
	me = getpid();
	if (write(m->m_ready_pipe[1], &me, sizeof(me)) != sizeof(me))
		log_warn("write() to the master failed");
	close(m->m_ready_pipe[1]);

	if (m->m_cf->cf_mode == HD_MODE_SYNC)
		sync_main(&ctx);
	if (m->m_cf->cf_mode == HD_MODE_URING)
		uring_main(&ctx);
	worker_main(&ctx);
}

int
spawn(struct master *m, unsigned slot)
{
	struct slot	*sl = &m->m_slots[slot];
	pid_t		 pid;
	int		 st;

	sl->s_respawn_at = 0;
	/* Reserved before the fork: the child inherits its number. */
	st = stats_slot_acquire(slot, m->m_generation);
	if ((pid = fork()) == -1) {
		log_warn("fork() failed");
		stats_slot_release(st);
		sl->s_respawn_at = now_mono() + 1.0;
		return -1;
	}
	if (pid == 0)
		worker_start(m, slot, st);
	stats_slot_started(st, pid);
	sl->s_pid = pid;
	sl->s_stats = st;
	sl->s_ready = 0;
	sl->s_started = now_mono();
	log_debug("spawned worker %u, pid %ld", slot, (long)pid);
	return 0;
}

void
signal_pid(pid_t pid, int sig)
{
	if (kill(pid, sig) == -1 && errno != ESRCH)
		log_warn("kill(%ld) failed", (long)pid);
}

/*
 * The status server ([status] listen), a process of its own so that it
 * answers while every worker is busy or blocked.  It keeps the greeting
 * listeners open to read their queues; a reload replaces it, the new one
 * beside the old on the same sockets.
 */
void
status_spawn(struct master *m)
{
	struct hd_socket	 socks[HD_MAX_LISTEN];
	pid_t			 pid;

	m->m_status_respawn_at = 0;
	m->m_status_stop_sent = 0;
	if (listeners_status_sockets(m->m_ls, socks) == 0)
		return;
	if ((pid = fork()) == -1) {
		log_warn("fork() failed");
		m->m_status_respawn_at = now_mono() + 1.0;
		return;
	}
	if (pid == 0) {
		if (stats_child_reader() == -1)
			log_warnx("the status server cannot read the counters");
		child_prepare(m);
		close(m->m_ready_pipe[1]);
		log_set_ident("status");
		if (privileges_drop(m->m_cf) == -1)
			_exit(HD_EXIT_FATAL);
		child_watch_master(m);
		status_run(m->m_ls, m->m_cf);
	}
	m->m_status_pid = pid;
	log_debug("spawned the status server, pid %ld", (long)pid);
}


/*
 * How many workers serve, for /healthz: those of the current generation
 * that reported so.  Between a reload and the new generation's first
 * report, the old one still finishes what it took and the sockets queue
 * new clients: the service is up, and the old generation's figure
 * stands.
 */
unsigned
serving_update(const struct master *m)
{
	unsigned	 i, n = 0;

	for (i = 0; i < m->m_nslots; i++)
		if (m->m_slots[i].s_pid > 0 && m->m_slots[i].s_ready)
			n++;
	if (n == 0 && m->m_announce && m->m_nold > 0)
		n = m->m_prev_serving;
	stats_set_serving(n);
	return n;
}

/*
 * After an upgrade in place: the previous image's workers serve on until
 * this image's report, so its serving figure (from the counters it
 * handed over) stands meanwhile, as the old generation's does after a
 * reload.  Counters that could not be handed over lost the figure: while
 * old workers run, 1 keeps /healthz up.
 */
void
serving_adopt(struct master *m, unsigned figure)
{
	m->m_prev_serving = figure > 0 ? figure : m->m_nold > 0;
}

/* Signals every worker, current and retiring, and records what it asked. */
void
signal_all(struct master *m, int sig)
{
	unsigned	 i;

	for (i = 0; i < m->m_nslots; i++)
		if (m->m_slots[i].s_pid > 0) {
			signal_pid(m->m_slots[i].s_pid, sig);
			if (sig == SIGTERM)
				m->m_slots[i].s_stop_sent = 1;
			else if (sig == SIGKILL)
				m->m_slots[i].s_killed = 1;
		}
	for (i = 0; i < m->m_nold; i++) {
		signal_pid(m->m_old[i].r_pid, sig);
		if (sig == SIGKILL)
			m->m_old[i].r_killed = 1;
	}
	/* The status server outlives a graceful stop's workers (below). */
	if (m->m_status_pid > 0 && sig != SIGTERM)
		signal_pid(m->m_status_pid, sig);
}

/* Workers, current or old, still to be reaped. */
int
workers_left(const struct master *m)
{
	unsigned	 i;

	if (m->m_nold > 0)
		return 1;
	for (i = 0; i < m->m_nslots; i++)
		if (m->m_slots[i].s_pid > 0)
			return 1;
	return 0;
}

int
children_left(const struct master *m)
{
	return workers_left(m) || m->m_status_pid > 0;
}

void
retired_close(struct master *m)
{
	unsigned	 i;

	for (i = 0; i < m->m_nretired; i++)
		if (close(m->m_retired[i]) == -1)
			log_warn("close() of a retired listener failed");
	if (m->m_nretired > 0)
		log_info("closed %u listener%s no longer configured",
		    m->m_nretired, plural(m->m_nretired));
	m->m_nretired = 0;
}

/* REAP_FATAL: a worker cannot start with this configuration. */
static int
reap_one(struct master *m, pid_t pid, int status)
{
	struct slot	*sl;
	char		 how[64];
	unsigned	 i;
	double		 now = now_mono(), delay;

	describe_status(status, how, sizeof(how));
	if (pid == m->m_status_pid) {
		m->m_status_pid = 0;
		if (m->m_state == MS_RUNNING) {
			log_error("status server (pid %ld) %s; respawning in "
			    "1s", (long)pid, how);
			m->m_status_respawn_at = now + 1.0;
		} else
			log_debug("status server (pid %ld) %s", (long)pid, how);
		return REAP_OK;
	}
	for (i = 0; i < m->m_nold; i++)
		if (m->m_old[i].r_pid == pid) {
			log_debug("old worker pid %ld %s", (long)pid, how);
			/* After an upgrade, the old image's workers are known
			 * by pid only. */
			stats_slot_release(m->m_old[i].r_stats != -1 ?
			    m->m_old[i].r_stats : stats_slot_of(pid));
			m->m_old[i] = m->m_old[--m->m_nold];
			if (m->m_nold == 0) {
				log_info("previous generation finished");
				retired_close(m);
			}
			return REAP_OK;
		}
	for (i = 0; i < m->m_nslots; i++)
		if (m->m_slots[i].s_pid == pid)
			break;
	if (i == m->m_nslots) {
		log_debug("unknown child pid %ld %s", (long)pid, how);
		return REAP_OK;
	}
	sl = &m->m_slots[i];
	sl->s_pid = 0;
	sl->s_ready = 0;
	stats_slot_release(sl->s_stats);
	sl->s_stats = -1;
	serving_update(m);
	if (m->m_state != MS_RUNNING) {
		log_debug("worker %u (pid %ld) %s", i, (long)pid, how);
		return REAP_OK;
	}
	if (WIFEXITED(status) && WEXITSTATUS(status) == HD_EXIT_FATAL) {
		log_error("worker %u (pid %ld) cannot start with this "
		    "configuration; stopping", i, (long)pid);
		return REAP_FATAL;
	}
	if (now - sl->s_started < STABLE_AFTER)
		sl->s_fails++;
	else
		sl->s_fails = 1;
	delay = master_respawn_delay(sl->s_fails);
	stats_worker_restarted();
	log_error("worker %u (pid %ld) %s; respawning in %.1fs", i, (long)pid,
	    how, delay);
	sl->s_respawn_at = now + delay;	/* never 0: the clock is > 0 */
	return REAP_OK;
}

/*
 * The wait before respawning a worker that died `fails` times in a row,
 * each within STABLE_AFTER of its start: the first death is answered at
 * once; a crash loop backs off 0.1 s, 0.2 s, 0.4 s ... up to
 * RESPAWN_MAX_DELAY.
 */
double
master_respawn_delay(unsigned fails)
{
	double		 delay = 0;
	unsigned	 k;

	for (k = 1; k < fails && delay < RESPAWN_MAX_DELAY; k++)
		delay = delay == 0 ? RESPAWN_FIRST_DELAY : delay * 2;
	return delay > RESPAWN_MAX_DELAY ? RESPAWN_MAX_DELAY : delay;
}

/*
 * Reaps every child that exited.  Returns REAP_FATAL as soon as a worker
 * of the running service exited with HD_EXIT_FATAL: the caller stops the
 * service and calls again for the others; REAP_OK once none is left.
 */
int
reap(struct master *m)
{
	pid_t	 pid;
	int	 status;

	for (;;) {
		pid = waitpid(-1, &status, WNOHANG);
		if (pid == 0)
			return REAP_OK;
		if (pid == -1) {
			if (errno == EINTR)
				continue;
			if (errno != ECHILD)
				log_warn("waitpid() failed");
			return REAP_OK;
		}
		if (reap_one(m, pid, status) == REAP_FATAL)
			return REAP_FATAL;
	}
}

/*
 * Reads which workers report serving.  Returns 1 once, when every worker
 * of a new generation does: the caller then announces the service.
 */
int
read_ready(struct master *m)
{
	pid_t		 pids[64];
	ssize_t		 n;
	unsigned	 i, k, all = 1;

	while ((n = read(m->m_ready_pipe[0], pids, sizeof(pids))) > 0)
		for (k = 0; k < (size_t)n / sizeof(pid_t); k++)
			for (i = 0; i < m->m_nslots; i++)
				if (m->m_slots[i].s_pid == pids[k])
					m->m_slots[i].s_ready = 1;
	if (n == -1 && errno != EAGAIN && errno != EINTR)
		log_warn("read() from workers failed");
	serving_update(m);
	if (!m->m_announce)
		return 0;
	for (i = 0; i < m->m_nslots; i++)
		if (!m->m_slots[i].s_ready)
			all = 0;
	if (all)
		m->m_announce = 0;
	return all;
}

/* A child of an earlier generation: it drains, and is killed at kill_at. */
void
retire(struct master *m, pid_t pid, int stats_slot, double kill_at)
{
	m->m_old[m->m_nold].r_pid = pid;
	m->m_old[m->m_nold].r_stats = stats_slot;
	m->m_old[m->m_nold].r_kill_at = kill_at;
	m->m_old[m->m_nold].r_killed = 0;
	m->m_nold++;
}
