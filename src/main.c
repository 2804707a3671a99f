/*
 * hellod: command line, start-up, then the master.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hellod.h"
#include "uring.h"

static struct hd_config		 config;
static struct listeners		 listeners;

static void
usage(FILE *fp)
{
	fprintf(fp,
	    "usage: %s [-fthv] [-c file] [-w n|auto] [-l addr:port]... "
	    "[--proxy-listen addr:port]... [--tls-listen addr:port]... "
	    "[--sync | --uring]\n"
	    "  -c, --config FILE     configuration file (default %s)\n"
	    "  -f, --foreground      stay in the foreground, log to stderr\n"
	    "      --sync            one blocking worker, one connection at "
	    "a time\n"
	    "      --uring           workers on io_uring (completions) "
	    "instead of libev\n"
	    "  -w, --workers N|auto  number of async or uring workers\n"
	    "  -l, --listen ADDR     listen on ADDR:PORT or [ADDR]:PORT "
	    "(repeatable)\n"
	    "      --proxy-listen ADDR  listen for connections that begin "
	    "with a\n"
	    "                        PROXY protocol header (repeatable)\n"
	    "      --tls-listen ADDR  listen for TLS connections "
	    "(repeatable)\n"
	    "  -t, --test-config     check the configuration and exit\n"
	    "  -v, --version         print the version and exit\n"
	    "  -h, --help            print this help and exit\n",
	    HELLOD_NAME, HELLOD_CONF);
}

/*
 * The daemon works in "/", and a reload or an upgrade reads the file
 * again: a relative -c path is made absolute against the directory hellod
 * was started in, not resolved through symbolic links (a link switched
 * to another file is what a reload is expected to read; nginx joins its
 * prefix the same way).  The argument itself is replaced, so that the
 * image an upgrade executes is given the same file.  Returns the new
 * argument or NULL (reported).
 */
static char *
config_path_absolute(char *arg, const char *path)
{
	char	 cwd[PATH_MAX], *abs;
	size_t	 len;
	int	 prefix = (int)(path - arg);

	if (path[0] == '/')
		return arg;
	if (getcwd(cwd, sizeof(cwd)) == NULL) {
		fprintf(stderr, "%s: -c %s: getcwd() failed: %s; give the "
		    "configuration file as an absolute path\n", HELLOD_NAME,
		    path, strerror(errno));
		return NULL;
	}
	len = (size_t)prefix + strlen(cwd) + 1 + strlen(path) + 1;
	if ((abs = malloc(len)) == NULL) {
		fprintf(stderr, "%s: malloc() failed: %s\n", HELLOD_NAME,
		    strerror(errno));
		return NULL;
	}
	snprintf(abs, len, "%.*s%s%s%s", prefix, arg, cwd,
	    strcmp(cwd, "/") == 0 ? "" : "/", path);
	return abs;
}

static int
parse_args(int argc, char *argv[], struct hd_overrides *ov, int *test)
{
	static const struct option longopts[] = {
		{ "config",	 required_argument, NULL, 'c' },
		{ "foreground",	 no_argument,	    NULL, 'f' },
		{ "sync",	 no_argument,	    NULL, 's' },
		{ "uring",	 no_argument,	    NULL, 'u' },
		{ "workers",	 required_argument, NULL, 'w' },
		{ "listen",	 required_argument, NULL, 'l' },
		{ "proxy-listen", required_argument, NULL, 'p' },
		{ "tls-listen",	 required_argument, NULL, 'T' },
		{ "test-config", no_argument,	    NULL, 't' },
		{ "version",	 no_argument,	    NULL, 'v' },
		{ "help",	 no_argument,	    NULL, 'h' },
		{ NULL,		 0,		    NULL, 0 }
	};
	char	 err[HD_ERRLEN], *arg;
	int	 ch;

	while ((ch = getopt_long(argc, argv, "c:fw:l:tvh", longopts,
	    NULL)) != -1) {
		switch (ch) {
		case 'c':
			/* optarg lies in the argument getopt just passed
			 * (-c FILE, -cFILE, --config=FILE). */
			if ((arg = config_path_absolute(argv[optind - 1],
			    optarg)) == NULL)
				return -1;
			ov->ov_config = arg + (optarg - argv[optind - 1]);
			argv[optind - 1] = arg;
			break;
		case 'f':
			ov->ov_foreground = 1;
			break;
		case 's':
			ov->ov_sync = 1;
			break;
		case 'u':
			ov->ov_uring = 1;
			break;
		case 'w':
			ov->ov_workers = optarg;
			break;
		case 'l':
		case 'p':
		case 'T':
			if (config_add_listen_arg(ov, optarg, ch == 'p' ?
			    HD_LO_PROXY : ch == 'T' ? HD_LO_TLS : HD_LO_PLAIN,
			    err, sizeof(err)) == -1) {
				fprintf(stderr, "%s: %s\n", HELLOD_NAME, err);
				return -1;
			}
			break;
		case 't':
			*test = 1;
			break;
		case 'v':
			printf("%s %s\n", HELLOD_NAME, VERSION);
			exit(0);
		case 'h':
			usage(stdout);
			exit(0);
		default:
			usage(stderr);
			return -1;
		}
	}
	if (ov->ov_sync && ov->ov_uring) {
		fprintf(stderr, "%s: --sync and --uring exclude each other\n",
		    HELLOD_NAME);
		return -1;
	}
	if (optind != argc) {
		fprintf(stderr, "%s: unexpected argument '%s'\n", HELLOD_NAME,
		    argv[optind]);
		usage(stderr);
		return -1;
	}
	return 0;
}

/*
 * Binds every listener (or takes systemd's, or those of the image this
 * one replaced) before anything detaches, so that an address in use is
 * reported where it can be seen.
 */
static int
open_listeners(const struct hd_config *cf, struct upgrade_state *us,
    struct listeners *inherited)
{
	static struct listeners	 passed;
	static int		 retired[HD_MAX_SOCKETS];
	int			 fds[HD_MAX_LISTEN], n;
	unsigned		 nretired, i;

	if (us->us_active) {
		/* Sockets the new configuration drops are closed once the
		 * old generation, which may still use them, is gone. */
		if (listeners_update(inherited, &listeners, cf,
		    config_worker_count(cf), retired, &nretired) == -1)
			return -1;
		for (i = 0; i < nretired && us->us_nretired < HD_MAX_SOCKETS;
		    i++)
			us->us_retired[us->us_nretired++] = retired[i];
		return 0;
	}
	n = notify_listen_fds(fds, HD_MAX_LISTEN);
	if (n < 0)
		return -1;
	if (n > 0) {
		log_info("using %d listener%s passed by the service manager; "
		    "[server] listen is ignored", n, plural((unsigned)n));
		if (listeners_activate(&passed, fds, (unsigned)n) == -1)
			return -1;
	} else
		listeners_init(&passed);
	return listeners_update(&passed, &listeners, cf,
	    config_worker_count(cf), retired, &nretired);
}

/* -t: which file passed, and what in it does nothing. */
static int
test_report(const struct hd_config *cf)
{
	char		 msg[8][HD_ERRLEN];
	unsigned	 i, n;

	n = config_idle_settings(cf, msg, 8);
	for (i = 0; i < n && i < 8; i++)
		fprintf(stderr, "%s: %s: warning: %s\n", HELLOD_NAME,
		    cf->cf_file, msg[i]);
	if (cf->cf_file[0] != '\0')
		printf("configuration OK: %s\n", cf->cf_file);
	else
		printf("configuration OK: built-in defaults (%s does not "
		    "exist)\n", HELLOD_CONF);
	return 0;
}

/*
 * What to do about a listener that cannot be opened, by the errno of the
 * failed call, which the caller's error line above names.
 */
static const char *
listen_advice(int e)
{
	switch (e) {
	case EADDRINUSE:
		return "another process listens there: stop it, or change the "
		    "address";
	case EACCES:
		return "a port below 1024 needs root or CAP_NET_BIND_SERVICE: "
		    "start hellod so, or change the port";
	case EADDRNOTAVAIL:
		return "no interface of this host has that address: change it";
	default:
		return "change the address";
	}
}

int
main(int argc, char *argv[])
{
	static struct upgrade_state	 us;
	static struct listeners		 inherited;
	struct hd_overrides		 ov;
	char				 err[HD_ERRLEN];
	struct tls_server		*tls;
	const char			*dest, *resumed;
	int				 test = 0, pidfd = -1, e;
	unsigned			 a;

	memset(&ov, 0, sizeof(ov));
	/* Started by an upgrade in place, every failure before the first
	 * worker hands back to the previous image (upgrade_abandon()). */
	upgrade_init(argv);
	if (parse_args(argc, argv, &ov, &test) == -1) {
		upgrade_abandon("it refused the command line");
		return 1;
	}
	/* Executed again after a failed upgrade, the image resumes with the
	 * configuration it was running: the file may be what failed. */
	if ((resumed = upgrade_resuming()) != NULL ?
	    upgrade_saved_config(&config, err, sizeof(err)) == -1 :
	    config_read(&config, &ov, err, sizeof(err)) == -1) {
		fprintf(stderr, "%s: %s\n", HELLOD_NAME, err);
		upgrade_abandon(err);
		return 1;
	}
	/* io_uring is probed before the certificates are loaded: a refused
	 * mode leaves nothing to free. */
	if (privileges_check(&config, err, sizeof(err)) == -1 ||
	    uring_refuse_tls(&config, err, sizeof(err)) == -1 ||
	    (test && uring_check(&config, err, sizeof(err)) == -1) ||
	    tls_prepare(&config, &tls, err, sizeof(err)) == -1) {
		fprintf(stderr, "%s: %s\n", HELLOD_NAME, err);
		upgrade_abandon(err);
		return 1;
	}
	if (test) {
		tls_server_free(tls);
		return test_report(&config);
	}

	dest = log_destination(config.cf_error_log, ov.ov_foreground);
	if (log_open(dest, config.cf_log_level) == -1) {
		fprintf(stderr, "%s: %s: [log] error_log: cannot open '%s': "
		    "%s\n", HELLOD_NAME, config.cf_file, dest, strerror(errno));
		upgrade_abandon("cannot open the error log");
		tls_server_free(tls);
		return 1;
	}
	log_echo_errors(1);
	/* Logged, not only printed: a service manager's journal has the
	 * reason a unit that asks for io_uring did not start. */
	if (uring_check(&config, err, sizeof(err)) == -1) {
		log_error("%s", err);
		upgrade_abandon(err);
		tls_server_free(tls);
		return 1;
	}
	if (resumed != NULL)
		log_error("upgrade failed: the new executable did not start "
		    "(%s); the previous executable runs again with its "
		    "configuration", resumed);
	if (geteuid() != 0 && (config.cf_user[0] || config.cf_group[0]))
		log_info("not started as root: [server] user and group are "
		    "ignored");
	if (privileges_defaulted(&config))
		log_info("started as root without [server] user: workers run "
		    "as %s:%s (user = root keeps root)", HD_DEFAULT_USER,
		    HD_DEFAULT_GROUP);

	if (upgrade_inherit(&us, &inherited) == -1) {
		upgrade_abandon("malformed HELLOD_UPGRADE");
		tls_server_free(tls);
		return 1;
	}
	if (us.us_active) {
		if (resumed == NULL)
			log_info("upgraded in place from generation %u",
			    us.us_generation);
		pidfd = us.us_pidfd;
		/* Tickets issued before the upgrade still resume. */
		if (us.us_ticketsfd != -1 && tls_keys_adopt(us.us_ticketsfd,
		    config.cf_tls.tc_ticket_lifetime) == -1)
			log_warnx("the session ticket keys were not handed "
			    "over: tickets issued before resume no more");
	}
	if (tls_commit(tls, &config) == -1) {
		upgrade_abandon("cannot make the session ticket keys");
		log_error("cannot make the TLS session ticket keys; exiting");
		return 1;
	}
	if (tls != NULL)
		tls_kernel_report();
	if (pidfd == -1 && config.cf_pid_file[0] != '\0' &&
	    (pidfd = pidfile_open(config.cf_pid_file)) == -1) {
		upgrade_abandon("cannot open the pid file");
		return 1;
	}
	if (open_listeners(&config, &us, &inherited) == -1) {
		e = errno;
		upgrade_abandon("cannot open the listeners");
		log_error("cannot open the listeners: %s ([server] listen, "
		    "proxy_listen, [status] listen); exiting",
		    listen_advice(e));
		goto fail;
	}
	for (a = 0; a < listeners.ls_n; a++)
		log_info("listening on %s%s", listeners.ls_list[a].li_addr.a_text,
		    listen_opts_note(listeners.ls_list[a].li_opts));
	if (!ov.ov_foreground && !us.us_active && daemonize() == -1) {
		log_error("cannot run as a daemon; exiting (--foreground "
		    "runs hellod without detaching)");
		goto fail;
	}
	if (pidfd != -1 && pidfile_write(pidfd) == -1) {
		upgrade_abandon("cannot write the pid file");
		log_error("cannot write the pid file %s; exiting",
		    config.cf_pid_file);
		goto fail;
	}
	log_echo_errors(0);
	return master_run(&config, &ov, &listeners, pidfd, &us);
fail:
	if (pidfd != -1)
		pidfile_remove(config.cf_pid_file, pidfd);
	return 1;
}
