/*
 * The master: its loop, reloads, stops and upgrades; children.c forks,
 * signals and reaps its children.  It never serves.  Signal handlers only
 * set flags; the master sleeps in ppoll() with every signal unblocked for
 * just that call, so a signal can never arrive between checking the
 * flags and going to sleep.  The same ppoll() watches the pipe on which
 * workers report that they serve.
 */

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
#include "master.h"
#include "stats.h"
#include "uring.h"

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

/* The signals the master handles; its children set them back. */
static const int master_signals[] = {
	SIGHUP, SIGTERM, SIGINT, SIGQUIT, SIGUSR1, SIGCHLD, SIGUSR2
};
#define MASTER_NSIGNALS \
	(sizeof(master_signals) / sizeof(master_signals[0]))

static void	 stop_begin(struct master *, int);

static enum stats_mode
stats_mode(const struct hd_config *cf)
{
	if (cf->cf_mode == HD_MODE_SYNC)
		return STATS_MODE_SYNC;
	return cf->cf_mode == HD_MODE_URING ? STATS_MODE_URING :
	    STATS_MODE_ASYNC;
}

static void
status_notify(struct master *m)
{
	notify_send("READY=1\nSTATUS=%u worker%s serving (%s), generation %u",
	    m->m_nslots, plural(m->m_nslots), config_mode_name(m->m_cf),
	    m->m_generation);
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
	struct tls_server	*tls = NULL;
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
	if (privileges_check(ncf, err, sizeof(err)) == -1 ||
	    uring_check(ncf, err, sizeof(err)) == -1)
		goto fail;
	/* New certificates for the new generation; a bad one keeps the
	 * running configuration, certificates included. */
	if (tls_prepare(ncf, &tls, err, sizeof(err)) == -1)
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
	if (tls_commit(tls, ncf) == -1)
		log_warnx("cannot make the session ticket keys: TLS sessions "
		    "are not resumed");
	tls = NULL;
	now = now_mono();
	m->m_prev_serving = serving_update(m);
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
	stats_set_config(m->m_generation, stats_mode(ncf), n);
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
	log_info("reloaded: generation %u, %u worker%s (%s)", m->m_generation,
	    n, plural(n), config_mode_name(ncf));
	return;
fail:
	tls_server_free(tls);
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
	us.us_ticketsfd = tls_keys_fd();
	for (i = 0; i < m->m_nretired; i++)
		us.us_retired[us.us_nretired++] = m->m_retired[i];
	us.us_listeners = m->m_ls;
	us.us_cf = m->m_cf;
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
	/* The next rotation of the session ticket keys. */
	if ((t = tls_keys_due()) >= 0 && (next < 0 || now + t < next))
		next = now + t;
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

	tls_keys_rotate();
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
	for (i = 0; i < MASTER_NSIGNALS; i++) {
		sigaddset(&block, master_signals[i]);
		if (sigaction(master_signals[i], &sa, NULL) == -1) {
			log_errno("sigaction() failed");
			return -1;
		}
	}
	sa.sa_handler = SIG_IGN;
	if (sigaction(SIGPIPE, &sa, NULL) == -1) {
		log_errno("sigaction(SIGPIPE) failed");
		return -1;
	}
	if (sigprocmask(SIG_BLOCK, &block, unblocked) == -1) {
		log_errno("sigprocmask() failed");
		return -1;
	}
	for (i = 0; i < MASTER_NSIGNALS; i++)
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
	m.m_pid = getpid();
	m.m_signals = master_signals;
	m.m_nsignals = MASTER_NSIGNALS;
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
	    (config_listen_count(m.m_cf, HD_LO_STATUS) > 0 ||
	    config_listen_count(m.m_cf, HD_LO_STATUS | HD_LO_AGENT) > 0)) {
		upgrade_abandon("cannot map the statistics");
		log_error("cannot map the statistics, which [status] listen "
		    "serves: remove [status] listen to run without them; "
		    "exiting");
		return 1;
	}
	stats_set_config(m.m_generation, stats_mode(m.m_cf), m.m_nslots);
	stats_set_draining(0);

	if (signals_setup(&unblocked) == -1) {
		upgrade_abandon("cannot set up the signals");
		return 1;
	}
	if (pipe2(m.m_ready_pipe, O_CLOEXEC | O_NONBLOCK) == -1) {
		log_errno("pipe2() failed");
		upgrade_abandon("pipe2() failed");
		return 1;
	}
	/* From here on this image stays.  A counters region it could not
	 * use (stats_init()) was kept for the previous image until now. */
	upgrade_started();
	if (us->us_active && us->us_statsfd != -1 &&
	    us->us_statsfd != stats_memfd() && close(us->us_statsfd) == -1)
		log_warn("close() of the previous statistics failed");
	privileges_chown_logs(m.m_cf);
	serving_adopt(&m, us->us_active ? stats_serving() : 0);
	for (i = 0; i < m.m_nslots; i++)
		spawn(&m, i);
	status_spawn(&m);
	for (i = 0; i < m.m_nold; i++)
		signal_pid(m.m_old[i].r_pid, SIGTERM);
	m.m_announce = 1;
	log_info("%s %s started: %u worker%s (%s), generation %u", HELLOD_NAME,
	    VERSION, m.m_nslots, plural(m.m_nslots), config_mode_name(m.m_cf),
	    m.m_generation);

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
		if (read_ready(&m))
			status_notify(&m);
		if (sig_child) {
			sig_child = 0;
			/* A worker that cannot start stops the service; the
			 * others are reaped after that, as stopping. */
			while (reap(&m) == REAP_FATAL)
				stop_begin(&m, 1);
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
