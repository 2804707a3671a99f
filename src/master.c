/*
 * The master: spawns, reaps and respawns workers, reloads, stops.  It
 * never serves.  Signal handlers only set flags; the master sleeps in
 * ppoll() with every signal unblocked for just that call, so a signal can
 * never arrive between checking the flags and going to sleep.  The same
 * ppoll() watches the pipe on which workers report that they serve.
 */
#include <sys/prctl.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "hellod.h"
#include "stats.h"
#include "status.h"

#define MAX_RETIRING		(4 * HD_MAX_WORKERS)
#define RESPAWN_MAX_DELAY	30.0
#define RESPAWN_FIRST_DELAY	0.1
#define STABLE_AFTER		10.0	/* a worker this old crashed anew */

struct slot {
	pid_t		 s_pid;		/* 0: no process */
	int		 s_stats;	/* its statistics slot; -1: none */
	int		 s_ready;	/* it reported serving */
	int		 s_stop_sent;	/* SIGTERM sent: draining */
	int		 s_killed;	/* SIGKILL sent */
	unsigned	 s_fails;	/* quick deaths in a row */
	double		 s_started;
	double		 s_respawn_at;	/* 0: none pending */
};

/* A worker of an earlier generation, draining. */
struct retiring {
	pid_t		 r_pid;
	int		 r_stats;	/* -1: none, or not known */
	double		 r_kill_at;	/* shutdown_timeout passed */
	int		 r_killed;	/* SIGKILL sent */
};

enum master_state {
	MS_RUNNING,
	MS_NOTICE,	/* drain_notice: /healthz says 503, all still serve */
	MS_STOPPING,	/* workers asked to finish; killed at m_stop_at */
	MS_KILLING	/* past the deadline: SIGKILL sent, reaping */
};

struct master {
	struct hd_config	*m_cf;
	const struct hd_overrides *m_ov;
	struct listeners	*m_ls;
	unsigned		 m_generation;
	unsigned		 m_nslots;
	struct slot		 m_slots[HD_MAX_WORKERS];
	struct retiring		 m_old[MAX_RETIRING];
	unsigned		 m_nold;
	int			 m_retired[HD_MAX_SOCKETS];
	unsigned		 m_nretired;
	int			 m_ready_pipe[2];
	int			 m_pidfd;
	int			 m_announce;	/* READY=1 due once all serve */
	enum master_state	 m_state;
	double			 m_stop_at;	/* or the notice's end */
	pid_t			 m_status_pid;	/* the status server; 0: none */
	int			 m_status_stop_sent;
	double			 m_status_respawn_at;	/* 0: none pending */
	int			 m_status;
};

static void	 stop_begin(struct master *, int);

static volatile sig_atomic_t	 sig_reload, sig_terminate, sig_quit;
static volatile sig_atomic_t	 sig_reopen, sig_child, sig_upgrade;

/* Two configurations and listener sets: the running one and the one a
 * reload builds; they swap when the reload succeeds. */
static struct hd_config		 cf_store[2];
static struct listeners		 ls_store[2];

static void
master_signal(int sig)
{
	switch (sig) {
	case SIGHUP:
		sig_reload = 1;
		break;
	case SIGTERM:
	case SIGINT:
		sig_terminate++;
		break;
	case SIGQUIT:
		sig_quit = 1;
		break;
	case SIGUSR1:
		sig_reopen = 1;
		break;
	case SIGCHLD:
		sig_child = 1;
		break;
	case SIGUSR2:
		sig_upgrade = 1;
		break;
	}
}

static const int master_signals[] = {
	SIGHUP, SIGTERM, SIGINT, SIGQUIT, SIGUSR1, SIGCHLD, SIGUSR2
};
#define NSIGNALS	(sizeof(master_signals) / sizeof(master_signals[0]))

static double
now_mono(void)
{
	struct timespec	 ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static const char *
mode_name(const struct hd_config *cf)
{
	return cf->cf_mode == HD_MODE_SYNC ? "sync" : "async";
}

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

static void
status_notify(struct master *m)
{
	notify_send("READY=1\nSTATUS=%u workers serving (%s), generation %u",
	    m->m_nslots, mode_name(m->m_cf), m->m_generation);
}

/* In a child of the master: the signal dispositions and descriptors of
 * a worker or the status server. */
static void
child_prepare(struct master *m)
{
	struct sigaction	 sa;
	unsigned		 i;

	if (prctl(PR_SET_PDEATHSIG, SIGTERM) == -1)
		log_warn("prctl(PR_SET_PDEATHSIG) failed");
	if (getppid() == 1)
		_exit(0);	/* the master is already gone */

	memset(&sa, 0, sizeof(sa));
	sigemptyset(&sa.sa_mask);
	sa.sa_handler = SIG_DFL;
	for (i = 0; i < NSIGNALS; i++)
		if (sigaction(master_signals[i], &sa, NULL) == -1)
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

	stats_attach(stats_slot);
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

	/* Report readiness before serving: the master announces the service
	 * once every worker has, and the listeners already queue clients. */
	me = getpid();
	if (write(m->m_ready_pipe[1], &me, sizeof(me)) != sizeof(me))
		log_warn("write() to the master failed");
	close(m->m_ready_pipe[1]);

	if (m->m_cf->cf_mode == HD_MODE_SYNC)
		sync_main(&ctx);
	worker_main(&ctx);
}

static int
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
	sl->s_pid = pid;
	sl->s_stats = st;
	sl->s_ready = 0;
	sl->s_started = now_mono();
	log_debug("spawned worker %u, pid %ld", slot, (long)pid);
	return 0;
}

static void
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
static void
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
		child_prepare(m);
		close(m->m_ready_pipe[1]);
		log_set_ident("status");
		if (privileges_drop(m->m_cf) == -1)
			_exit(HD_EXIT_FATAL);
		status_run(m->m_ls, m->m_cf);
	}
	m->m_status_pid = pid;
	log_debug("spawned the status server, pid %ld", (long)pid);
}

/* How many workers of the current generation serve, for /healthz. */
static void
serving_update(const struct master *m)
{
	unsigned	 i, n = 0;

	for (i = 0; i < m->m_nslots; i++)
		if (m->m_slots[i].s_pid > 0 && m->m_slots[i].s_ready)
			n++;
	/* Between a reload and the new generation's first report, the
	 * old one still finishes what it took and the sockets queue new
	 * clients: the service is up. */
	if (n == 0 && m->m_announce)
		n = m->m_nold;
	stats_set_serving(n);
}

/* Signals every worker, current and retiring, and records what it asked. */
static void
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
static int
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

static int
children_left(const struct master *m)
{
	return workers_left(m) || m->m_status_pid > 0;
}

/*
 * SIGTERM: with a status listener and drain_notice, /healthz says 503 for
 * that long first, while every worker serves on, so that balancers stop
 * sending before anything stops accepting.
 */
static void
stop_notice(struct master *m)
{
	stats_set_draining(1);
	if (m->m_cf->cf_drain_notice == 0 || m->m_status_pid <= 0) {
		stop_begin(m, 0);
		return;
	}
	m->m_state = MS_NOTICE;
	m->m_stop_at = now_mono() + m->m_cf->cf_drain_notice / 1000.;
	notify_send("STATUS=draining: /healthz answers 503 for %ums",
	    m->m_cf->cf_drain_notice);
	log_info("draining: /healthz answers 503 for %ums before the stop",
	    m->m_cf->cf_drain_notice);
}

static void
stop_begin(struct master *m, int status)
{
	unsigned	 i;

	if (m->m_state != MS_RUNNING && m->m_state != MS_NOTICE)
		return;
	stats_set_draining(1);
	m->m_state = MS_STOPPING;
	m->m_status = status;
	m->m_stop_at = now_mono() + m->m_cf->cf_shutdown_timeout / 1000.;
	for (i = 0; i < m->m_nslots; i++)
		m->m_slots[i].s_respawn_at = 0;
	notify_send("STOPPING=1");
	log_info("stopping gracefully (at most %ums)",
	    m->m_cf->cf_shutdown_timeout);
	signal_all(m, SIGTERM);
}

static void
retired_close(struct master *m)
{
	unsigned	 i;

	for (i = 0; i < m->m_nretired; i++)
		if (close(m->m_retired[i]) == -1)
			log_warn("close() of a retired listener failed");
	if (m->m_nretired > 0)
		log_info("closed %u listeners no longer configured",
		    m->m_nretired);
	m->m_nretired = 0;
}

static void
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
		return;
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
			return;
		}
	for (i = 0; i < m->m_nslots; i++)
		if (m->m_slots[i].s_pid == pid)
			break;
	if (i == m->m_nslots) {
		log_debug("unknown child pid %ld %s", (long)pid, how);
		return;
	}
	sl = &m->m_slots[i];
	sl->s_pid = 0;
	sl->s_ready = 0;
	stats_slot_release(sl->s_stats);
	sl->s_stats = -1;
	serving_update(m);
	if (m->m_state != MS_RUNNING) {
		log_debug("worker %u (pid %ld) %s", i, (long)pid, how);
		return;
	}
	if (WIFEXITED(status) && WEXITSTATUS(status) == HD_EXIT_FATAL) {
		log_error("worker %u (pid %ld) cannot start with this "
		    "configuration; stopping", i, (long)pid);
		stop_begin(m, 1);
		return;
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

static void
reap(struct master *m)
{
	pid_t	 pid;
	int	 status;

	for (;;) {
		pid = waitpid(-1, &status, WNOHANG);
		if (pid == 0)
			return;
		if (pid == -1) {
			if (errno == EINTR)
				continue;
			if (errno != ECHILD)
				log_warn("waitpid() failed");
			return;
		}
		reap_one(m, pid, status);
	}
}

static void
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
		return;
	for (i = 0; i < m->m_nslots; i++)
		if (!m->m_slots[i].s_ready)
			all = 0;
	if (all) {
		m->m_announce = 0;
		status_notify(m);
	}
}

/* A child of an earlier generation: it drains, and is killed at kill_at. */
static void
retire(struct master *m, pid_t pid, int stats_slot, double kill_at)
{
	m->m_old[m->m_nold].r_pid = pid;
	m->m_old[m->m_nold].r_stats = stats_slot;
	m->m_old[m->m_nold].r_kill_at = kill_at;
	m->m_old[m->m_nold].r_killed = 0;
	m->m_nold++;
}

static int
reload_check_files(const struct hd_config *cf, char *err, size_t errlen)
{
	int	 fd;

	if (cf->cf_access_log[0] == '\0')
		return 0;
	fd = open(cf->cf_access_log, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC,
	    0644);
	if (fd == -1) {
		snprintf(err, errlen, "%.200s: [log] access_log: cannot open "
		    "'%.200s': %s", cf->cf_file, cf->cf_access_log,
		    strerror(errno));
		return -1;
	}
	close(fd);
	return 0;
}

/*
 * All or nothing: the new configuration is parsed and its listeners bound
 * beside the running ones; only then does a new generation start and the
 * old one drain.  Any failure leaves everything as it was.
 */
static void
reload(struct master *m)
{
	struct hd_config	*ncf = m->m_cf == &cf_store[0] ? &cf_store[1] :
				    &cf_store[0];
	struct listeners	*nls = m->m_ls == &ls_store[0] ? &ls_store[1] :
				    &ls_store[0];
	int			 retired[HD_MAX_SOCKETS];
	unsigned		 nretired, n, i;
	char			 err[HD_ERRLEN];
	double			 now;
	struct timespec		 ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	notify_send("RELOADING=1\nMONOTONIC_USEC=%llu",
	    (unsigned long long)ts.tv_sec * 1000000ull +
	    (unsigned long long)ts.tv_nsec / 1000ull);
	log_info("reloading configuration");

	if (config_read(ncf, m->m_ov, err, sizeof(err)) == -1 ||
	    reload_check_files(ncf, err, sizeof(err)) == -1)
		goto fail;
	if (privileges_check(ncf, err, sizeof(err)) == -1)
		goto fail;
	n = config_worker_count(ncf);
	if (m->m_nold + m->m_nslots + 1 > MAX_RETIRING ||
	    m->m_nretired + HD_MAX_LISTENERS * m->m_nslots > HD_MAX_SOCKETS) {
		snprintf(err, sizeof(err), "too many old workers still "
		    "draining");
		goto fail;
	}
	if (listeners_update(m->m_ls, nls, ncf, n, retired, &nretired) == -1) {
		snprintf(err, sizeof(err), "cannot open the new listeners");
		goto fail;
	}
	if (strcmp(ncf->cf_error_log, m->m_cf->cf_error_log) != 0 ||
	    ncf->cf_log_level != m->m_cf->cf_log_level) {
		if (log_open(log_destination(ncf->cf_error_log,
		    m->m_ov->ov_foreground), ncf->cf_log_level) == -1)
			log_warn("open(\"%s\") failed; keeping the current "
			    "error log", ncf->cf_error_log);
	}

	/* Commit: the running workers become the old generation. */
	now = now_mono();
	for (i = 0; i < m->m_nslots; i++) {
		if (m->m_slots[i].s_pid > 0) {
			retire(m, m->m_slots[i].s_pid, m->m_slots[i].s_stats,
			    now + ncf->cf_shutdown_timeout / 1000.);
		}
	}
	/* The status server too: its successor starts beside it. */
	if (m->m_status_pid > 0) {
		retire(m, m->m_status_pid, -1,
		    now + ncf->cf_shutdown_timeout / 1000.);
		m->m_status_pid = 0;
	}
	for (i = 0; i < nretired; i++)
		m->m_retired[m->m_nretired++] = retired[i];
	m->m_cf = ncf;
	m->m_ls = nls;
	m->m_generation++;
	stats_reloaded(1);
	stats_set_config(m->m_generation, ncf->cf_mode == HD_MODE_SYNC ?
	    STATS_MODE_SYNC : STATS_MODE_ASYNC, n);
	privileges_chown_logs(ncf);
	m->m_nslots = n;
	memset(m->m_slots, 0, sizeof(m->m_slots));
	for (i = 0; i < n; i++)
		spawn(m, i);
	status_spawn(m);
	/* The new generation accepts on the same sockets: the old one can
	 * stop without a queued connection being lost. */
	for (i = 0; i < m->m_nold; i++)
		if (!m->m_old[i].r_killed)
			signal_pid(m->m_old[i].r_pid, SIGTERM);
	m->m_announce = 1;
	log_info("reloaded: generation %u, %u workers (%s)", m->m_generation,
	    n, mode_name(ncf));
	return;
fail:
	stats_reloaded(0);
	log_error("reload failed, keeping the running configuration: %s", err);
	status_notify(m);
}

/* SIGUSR2: hands everything to a new image of the executable (upgrade.c);
 * returns only when that could not happen. */
static void
upgrade(struct master *m)
{
	static struct upgrade_state	 us;
	unsigned			 i;

	memset(&us, 0, sizeof(us));
	us.us_generation = m->m_generation;
	us.us_pidfd = m->m_pidfd;
	for (i = 0; i < m->m_nslots; i++)
		if (m->m_slots[i].s_pid > 0)
			us.us_old[us.us_nold++] = m->m_slots[i].s_pid;
	for (i = 0; i < m->m_nold && us.us_nold < UPGRADE_MAX_OLD; i++)
		us.us_old[us.us_nold++] = m->m_old[i].r_pid;
	if (m->m_status_pid > 0 && us.us_nold < UPGRADE_MAX_OLD)
		us.us_old[us.us_nold++] = m->m_status_pid;
	us.us_statsfd = stats_memfd();
	for (i = 0; i < m->m_nretired; i++)
		us.us_retired[us.us_nretired++] = m->m_retired[i];
	us.us_listeners = m->m_ls;
	upgrade_exec(&us);
	status_notify(m);
}

static int
poll_timeout(const struct master *m)
{
	double		 next = -1, now = now_mono(), t;
	unsigned	 i;

	if (m->m_state == MS_STOPPING || m->m_state == MS_NOTICE)
		next = m->m_stop_at;
	if (m->m_status_respawn_at > 0 &&
	    (next < 0 || m->m_status_respawn_at < next))
		next = m->m_status_respawn_at;
	for (i = 0; i < m->m_nold; i++)
		if (!m->m_old[i].r_killed &&
		    (next < 0 || m->m_old[i].r_kill_at < next))
			next = m->m_old[i].r_kill_at;
	for (i = 0; i < m->m_nslots; i++) {
		t = m->m_slots[i].s_respawn_at;
		if (t > 0 && (next < 0 || t < next))
			next = t;
	}
	if (next < 0)
		return -1;
	if (next <= now)
		return 0;
	return (int)((next - now) * 1000) + 1;
}

static void
timers(struct master *m)
{
	double		 now = now_mono();
	unsigned	 i;

	if (m->m_state == MS_NOTICE && now >= m->m_stop_at)
		stop_begin(m, 0);
	/* A graceful stop ends the status server last: it says 503 while
	 * the workers drain. */
	if (m->m_state == MS_STOPPING && !workers_left(m) &&
	    m->m_status_pid > 0 && !m->m_status_stop_sent) {
		signal_pid(m->m_status_pid, SIGTERM);
		m->m_status_stop_sent = 1;
	}
	if (m->m_state == MS_STOPPING && now >= m->m_stop_at &&
	    children_left(m)) {
		log_warnx("shutdown_timeout passed, killing the workers left");
		signal_all(m, SIGKILL);
		m->m_state = MS_KILLING;
		return;
	}
	for (i = 0; i < m->m_nold; i++)
		if (!m->m_old[i].r_killed && now >= m->m_old[i].r_kill_at) {
			log_warnx("old worker pid %ld still busy after "
			    "shutdown_timeout, killing it",
			    (long)m->m_old[i].r_pid);
			signal_pid(m->m_old[i].r_pid, SIGKILL);
			m->m_old[i].r_killed = 1;
		}
	if (m->m_state != MS_RUNNING)
		return;
	for (i = 0; i < m->m_nslots; i++)
		if (m->m_slots[i].s_respawn_at > 0 &&
		    now >= m->m_slots[i].s_respawn_at)
			spawn(m, i);
	if (m->m_status_respawn_at > 0 && now >= m->m_status_respawn_at)
		status_spawn(m);
}

static int
signals_setup(sigset_t *unblocked)
{
	struct sigaction	 sa;
	sigset_t		 block;
	unsigned		 i;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = master_signal;
	sigemptyset(&sa.sa_mask);
	sigemptyset(&block);
	for (i = 0; i < NSIGNALS; i++) {
		sigaddset(&block, master_signals[i]);
		if (sigaction(master_signals[i], &sa, NULL) == -1) {
			log_warn("sigaction() failed");
			return -1;
		}
	}
	sa.sa_handler = SIG_IGN;
	if (sigaction(SIGPIPE, &sa, NULL) == -1) {
		log_warn("sigaction(SIGPIPE) failed");
		return -1;
	}
	if (sigprocmask(SIG_BLOCK, &block, unblocked) == -1) {
		log_warn("sigprocmask() failed");
		return -1;
	}
	for (i = 0; i < NSIGNALS; i++)
		sigdelset(unblocked, master_signals[i]);
	return 0;
}

/*
 * Runs the service with cf and the listeners in ls (both owned from now
 * on) until it stops; returns the exit status.
 */
int
master_run(struct hd_config *cf, const struct hd_overrides *ov,
    struct listeners *ls, int pidfd, const struct upgrade_state *us)
{
	static struct master	 m;
	struct pollfd		 pfd;
	sigset_t		 unblocked;
	struct timespec		 ts;
	char			 pid_path[PATH_MAX];
	unsigned		 i;
	int			 kills = 0, ms;

	memset(&m, 0, sizeof(m));
	cf_store[0] = *cf;
	ls_store[0] = *ls;
	m.m_cf = &cf_store[0];
	m.m_ls = &ls_store[0];
	m.m_ov = ov;
	m.m_pidfd = pidfd;
	/* Where the pid file was created, whatever a reload says later. */
	snprintf(pid_path, sizeof(pid_path), "%s", cf->cf_pid_file);
	m.m_generation = us->us_active ? us->us_generation + 1 : 1;
	m.m_nslots = config_worker_count(m.m_cf);
	/* After an upgrade in place, the old image's workers are this
	 * process's children: they drain like a reload's old generation. */
	for (i = 0; i < us->us_nold && i < MAX_RETIRING; i++)
		retire(&m, us->us_old[i], -1, now_mono() +
		    m.m_cf->cf_shutdown_timeout / 1000.);
	for (i = 0; i < us->us_nretired; i++)
		m.m_retired[m.m_nretired++] = us->us_retired[i];

	/* Counters for every process that can hold a slot at once; an
	 * upgrade in place hands over the region, figures and all. */
	if (stats_init(HD_MAX_WORKERS + MAX_RETIRING,
	    us->us_active ? us->us_statsfd : -1) == -1 &&
	    m.m_cf->cf_nstatus_listen > 0) {
		log_error("cannot map the statistics; exiting");
		return 1;
	}
	stats_set_config(m.m_generation, m.m_cf->cf_mode == HD_MODE_SYNC ?
	    STATS_MODE_SYNC : STATS_MODE_ASYNC, m.m_nslots);
	stats_set_draining(0);

	if (signals_setup(&unblocked) == -1)
		return 1;
	if (pipe2(m.m_ready_pipe, O_CLOEXEC | O_NONBLOCK) == -1) {
		log_warn("pipe2() failed");
		return 1;
	}
	privileges_chown_logs(m.m_cf);
	for (i = 0; i < m.m_nslots; i++)
		spawn(&m, i);
	status_spawn(&m);
	for (i = 0; i < m.m_nold; i++)
		signal_pid(m.m_old[i].r_pid, SIGTERM);
	m.m_announce = 1;
	log_info("%s %s started: %u workers (%s), generation %u", HELLOD_NAME,
	    VERSION, m.m_nslots, mode_name(m.m_cf), m.m_generation);

	pfd.fd = m.m_ready_pipe[0];
	pfd.events = POLLIN;
	for (;;) {
		if (m.m_state != MS_RUNNING && !children_left(&m))
			break;
		ms = poll_timeout(&m);
		if (ms >= 0) {
			ts.tv_sec = ms / 1000;
			ts.tv_nsec = (long)(ms % 1000) * 1000000L;
		}
		if (ppoll(&pfd, 1, ms >= 0 ? &ts : NULL, &unblocked) == -1 &&
		    errno != EINTR) {
			log_warn("ppoll() failed");
			break;
		}
		read_ready(&m);
		if (sig_child) {
			sig_child = 0;
			reap(&m);
		}
		if (sig_quit) {
			sig_quit = 0;
			log_info("stopping now (SIGQUIT)");
			notify_send("STOPPING=1");
			if (m.m_state == MS_RUNNING || m.m_state == MS_NOTICE)
				m.m_state = MS_STOPPING;
			m.m_stop_at = now_mono() + 1.0;
			signal_all(&m, SIGQUIT);
		}
		if (sig_terminate != kills) {
			kills = sig_terminate;
			if (m.m_state == MS_RUNNING)
				stop_notice(&m);
			else if (m.m_state == MS_NOTICE)
				stop_begin(&m, 0);
			else {
				log_info("stopping now (second signal)");
				signal_all(&m, SIGKILL);
				m.m_state = MS_KILLING;
			}
		}
		if (sig_reload) {
			sig_reload = 0;
			if (m.m_state == MS_RUNNING)
				reload(&m);
		}
		if (sig_upgrade) {
			sig_upgrade = 0;
			if (m.m_state == MS_RUNNING)
				upgrade(&m);
		}
		if (sig_reopen) {
			sig_reopen = 0;
			log_info("reopening log files");
			log_reopen();
			privileges_chown_logs(m.m_cf);
			signal_all(&m, SIGUSR1);
		}
		timers(&m);
	}

	listeners_close(m.m_ls);
	retired_close(&m);
	log_info("exiting");
	if (pidfd != -1)
		pidfile_remove(pid_path, pidfd);
	return m.m_status;
}
