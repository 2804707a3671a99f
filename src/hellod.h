/*
 * hellod: shared declarations, grouped by the file that defines them.
 */
#ifndef HELLOD_H
#define HELLOD_H

#include <sys/types.h>
#include <sys/socket.h>

#include <limits.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#include "client.h"
#include "tls.h"

#define HELLOD_NAME		"hellod"
#define HD_MAX_LISTEN		16	/* addresses of one kind */
#define HD_MAX_WORKERS		256
#define HD_NAME_MAX		64
#define HD_DEFAULT_USER		"nobody"	/* workers, started as root */
#define HD_DEFAULT_GROUP	"nogroup"
#define HD_MAX_PADDING		(64 * 1024 * 1024)

/* Exit status of a worker that cannot start with this configuration:
 * the master stops instead of respawning it forever.  Any other failure
 * (fatal(), a crash) is respawned with backoff. */
#define HD_EXIT_FATAL		2
#define HD_EXIT_FAILURE		1

/* config.c */
enum hd_mode {
	HD_MODE_ASYNC,
	HD_MODE_SYNC,
	HD_MODE_URING
};

enum hd_access_format {
	HD_ACCESS_COMBINED,
	HD_ACCESS_JSON
};

struct hd_addr {
	struct sockaddr_storage	 a_ss;
	socklen_t		 a_len;
	char			 a_text[80];	/* as written, for messages */
};

/*
 * What a listen address serves.  A listener's kind is its options: none
 * is plain HTTP.  The values are part of the upgrade description
 * (sock=OPTS:...), so a bit keeps its value once given.
 */
enum hd_listen_opt {
	HD_LO_PROXY	= 0x1,	/* a PROXY protocol header first */
	HD_LO_STATUS	= 0x2,	/* [status] listen: not for the workers */
	HD_LO_TLS	= 0x4,	/* TLS, after the PROXY header if any */
	HD_LO_AGENT	= 0x8	/* with HD_LO_STATUS: [status] agent_listen,
				   HAProxy's agent-check */
};

#define HD_LO_PLAIN		0
#define HD_LISTEN_KINDS		5	/* plain, PROXY, status, TLS,
					   PROXY + TLS */
#define HD_MAX_LISTENERS	(HD_LISTEN_KINDS * HD_MAX_LISTEN)

/* One listen address of the configuration. */
struct hd_listen {
	struct hd_addr	 ln_addr;
	unsigned	 ln_opts;	/* HD_LO_* */
	int		 ln_line;	/* in cf_file; 0: built in or -l */
};

/* A listen address given on the command line, by its options. */
struct hd_listen_arg {
	const char	*la_text;
	unsigned	 la_opts;
};

struct hd_config {
	char		 cf_file[PATH_MAX];	/* "" when built-in defaults */

	/*
	 * [server] listen, proxy_listen and [status] listen, in the order
	 * given: at most HD_MAX_LISTEN of a kind, an address at most once
	 * over all kinds, at least one plain address.
	 */
	struct hd_listen cf_listen[HD_MAX_LISTENERS];
	unsigned	 cf_nlisten;

	/* [server] */
	enum hd_mode	 cf_mode;
	unsigned	 cf_workers;		/* 0 = auto */
	int		 cf_backlog;
	char		 cf_pid_file[PATH_MAX];	/* "" = none */
	char		 cf_user[HD_NAME_MAX];
	char		 cf_group[HD_NAME_MAX];
	int		 cf_user_line;		/* where set, for messages */
	int		 cf_group_line;
	unsigned	 cf_shutdown_timeout;	/* ms */
	int		 cf_defer_accept;	/* TCP_DEFER_ACCEPT, async */

	/* [http] */
	unsigned	 cf_keepalive_timeout;	/* ms, 0 = off */
	int		 cf_keepalive_set;	/* given explicitly */
	unsigned	 cf_header_timeout;	/* ms */
	size_t		 cf_max_header_size;
	unsigned	 cf_max_connections;
	unsigned	 cf_delay;		/* ms */
	size_t		 cf_body_padding;
	int		 cf_query_knobs;	/* ?delay= and ?pad= */
	unsigned	 cf_query_max_delay;	/* ms */
	size_t		 cf_query_max_padding;
	int		 cf_endpoints;		/* /ip, /json, negotiation */
	int		 cf_identity;		/* X-Served-By */

	/* [log] */
	char		 cf_error_log[PATH_MAX];	/* stderr | syslog | path */
	int		 cf_log_level;
	char		 cf_access_log[PATH_MAX];	/* "" = off */
	enum hd_access_format cf_access_format;

	/* [proxy] */
	struct client_trust cf_trusted;		/* empty: nobody */
	enum client_header cf_forward_header;

	/* [tls] */
	struct tls_conf	 cf_tls;

	/* [status]: listen is in cf_listen */
	unsigned	 cf_drain_notice;	/* ms */
};

/* Values given on the command line; they win over the file. */
struct hd_overrides {
	const char	*ov_config;
	int		 ov_sync;
	int		 ov_uring;
	const char	*ov_workers;
	/* -l, --proxy-listen: each replaces the file's addresses of its
	 * kind */
	struct hd_listen_arg ov_listen[HD_MAX_LISTENERS];
	unsigned	 ov_nlisten;
	int		 ov_foreground;	/* -f: stays attached to stderr */
};

#define HD_ERRLEN	512

void	 config_defaults(struct hd_config *);
int	 config_load(struct hd_config *, const char *, char *, size_t);
int	 config_apply_overrides(struct hd_config *,
	    const struct hd_overrides *, char *, size_t);
int	 config_read(struct hd_config *, const struct hd_overrides *,
	    char *, size_t);
unsigned config_worker_count(const struct hd_config *);
unsigned config_listen_count(const struct hd_config *, unsigned);
const char *config_listen_key(unsigned);
int	 config_add_listen_arg(struct hd_overrides *, const char *, unsigned,
	    char *, size_t);
int	 config_listen_line(struct hd_config *, const char *, const char *,
	    const char *, int, unsigned *, char *, size_t);
int	 config_listen_apply(struct hd_config *, const struct hd_overrides *,
	    char *, size_t);
unsigned config_idle_settings(const struct hd_config *, char (*)[HD_ERRLEN],
	    unsigned);
const char *config_mode_name(const struct hd_config *);
int	 config_parse_duration(const char *, unsigned *);
int	 config_parse_size(const char *, size_t *);

/* listen.c */
/* A listen address and its sockets: one per worker slot, or one in
 * li_fd[0] (li_shared) when the service manager passed it or it is a
 * status listener.  li_opts is a combination listen_opts_valid() knows. */
struct listener {
	struct hd_addr		 li_addr;
	unsigned		 li_opts;	/* HD_LO_*, as configured */
	int			 li_tls;	/* its number among the TLS
						   listeners; -1: plain */
	int			 li_shared;
	int			 li_passed;	/* by the service manager */
	int			 li_fd[HD_MAX_WORKERS];	/* -1: none */
};

struct listeners {
	struct listener		 ls_list[HD_MAX_LISTENERS];
	unsigned		 ls_n;
	unsigned		 ls_nslots;	/* may exceed the worker count */
	int			 ls_activated;	/* some passed by systemd */
};

/* One socket a worker accepts on, and the listener it belongs to. */
struct hd_socket {
	int			 so_fd;
	const struct listener	*so_listener;
};

#define HD_MAX_SOCKETS	(HD_MAX_LISTENERS * HD_MAX_WORKERS)

/* What a worker does after a failed accept4() (listen_accept_error). */
enum hd_accept_verdict {
	HD_ACCEPT_RETRY,	/* try the next connection now */
	HD_ACCEPT_DONE,		/* the queue is empty */
	HD_ACCEPT_PAUSE		/* out of descriptors or memory: wait */
};

#define HD_ACCEPT_PAUSE_TIME	0.1	/* s, after HD_ACCEPT_PAUSE */

int	 listen_opts_valid(unsigned);
const char *listen_opts_name(unsigned);
const char *listen_opts_note(unsigned);
int	 listen_parse_addr(const char *, struct hd_addr *, char *, size_t);
int	 listen_open(const struct hd_addr *, int);
int	 listen_same_addr(const struct hd_addr *, const struct hd_addr *);
void	 listen_addr_text(struct hd_addr *);
enum hd_accept_verdict listen_accept_error(int, int *);
void	 listen_accept_ok(int *);
void	 listeners_init(struct listeners *);
int	 listeners_activate(struct listeners *, const int *, unsigned);
int	 listeners_update(const struct listeners *, struct listeners *,
	    const struct hd_config *, unsigned, int *, unsigned *);
int	 listeners_has_fd(const struct listeners *, int);
unsigned listeners_slot_sockets(const struct listeners *, unsigned, unsigned,
	    struct hd_socket *);
void	 listeners_close_others(const struct listeners *,
	    const struct hd_socket *, unsigned);
void	 listeners_close(const struct listeners *);
unsigned listeners_status_sockets(const struct listeners *,
	    struct hd_socket *);

/* log.c */
enum {
	LOG_LEVEL_ERROR,
	LOG_LEVEL_WARN,
	LOG_LEVEL_INFO,
	LOG_LEVEL_DEBUG
};

int	 log_level_parse(const char *);
const char *log_destination(const char *, int);
int	 log_open(const char *, int);
int	 log_reopen(void);
void	 log_set_ident(const char *);
void	 log_echo_errors(int);
const char *plural(unsigned long);
void	 log_error(const char *, ...) __attribute__((format(printf, 1, 2)));
void	 log_errno(const char *, ...) __attribute__((format(printf, 1, 2)));
void	 log_warn(const char *, ...) __attribute__((format(printf, 1, 2)));
void	 log_warnx(const char *, ...) __attribute__((format(printf, 1, 2)));
void	 log_info(const char *, ...) __attribute__((format(printf, 1, 2)));
void	 log_debug(const char *, ...) __attribute__((format(printf, 1, 2)));
void	 fatal(const char *, ...)
	    __attribute__((format(printf, 1, 2), noreturn));
void	 fatalx(const char *, ...)
	    __attribute__((format(printf, 1, 2), noreturn));

/* access.c */
struct http_request;
int	 access_open(const struct hd_config *);
int	 access_reopen(void);
void	 access_close(void);
int	 access_enabled(void);
void	 access_log(const char *, const char *, const struct http_request *,
	    int, size_t, int64_t, const struct tls_info *);

/* worker.c (async) and sync.c */
struct hd_worker_ctx {
	const struct hd_config	*wc_config;
	int			 wc_slot;
	unsigned		 wc_generation;
	struct hd_socket	 wc_socks[HD_MAX_SOCKETS];
	unsigned		 wc_nsocks;
};

void	 worker_main(const struct hd_worker_ctx *) __attribute__((noreturn));
void	 sync_main(const struct hd_worker_ctx *) __attribute__((noreturn));
void	 uring_main(const struct hd_worker_ctx *) __attribute__((noreturn));


/* upgrade.c: what an image replaced in place hands to the next */
#define UPGRADE_MAX_OLD	(4 * HD_MAX_WORKERS + 1)
#define UPGRADE_MAX_FD	(1 << 20)	/* descriptors are below (nr_open) */
#define UPGRADE_MAX_PID	(1 << 22)	/* PID_MAX_LIMIT */
#define UPGRADE_MAX_FDS	(2 * HD_MAX_SOCKETS + 4)	/* all of a desc */

/* One inherited listening socket: sock=OPTS:SLOT:PASSED:FD. */
struct upgrade_sock {
	unsigned		 uk_opts;	/* listen_opts_valid() */
	unsigned		 uk_slot;	/* < HD_MAX_WORKERS */
	int			 uk_passed;	/* 0 or 1 */
	int			 uk_fd;
};

/*
 * The HELLOD_UPGRADE value, as upgrade_parse() accepts it and
 * upgrade_format() writes it.  Invariants of a parsed one: every
 * descriptor is in 0..UPGRADE_MAX_FD-1, or -1 (none) for pidfd, stats,
 * conf and exe, and no descriptor is named twice; every pid is in
 * 1..UPGRADE_MAX_PID; every count is within its array.
 */
struct upgrade_desc {
	unsigned		 ud_generation;
	int			 ud_pidfd;	/* the pid file's, locked */
	int			 ud_statsfd;	/* the counters' memfd */
	int			 ud_ticketsfd;	/* TLS session-ticket keys */
	pid_t			 ud_old[UPGRADE_MAX_OLD];	/* children */
	unsigned		 ud_nold;
	int			 ud_retired[HD_MAX_SOCKETS];	/* to close */
	unsigned		 ud_nretired;
	struct upgrade_sock	 ud_socks[HD_MAX_SOCKETS];
	unsigned		 ud_nsocks;
	int			 ud_conf;	/* the way back: saved config */
	int			 ud_exe;	/* and executable */
};

struct upgrade_state {
	int			 us_active;	/* started by an upgrade */
	unsigned		 us_generation;	/* the old image's */
	int			 us_pidfd;
	int			 us_statsfd;	/* the counters' memfd */
	int			 us_ticketsfd;	/* TLS session-ticket keys */
	pid_t			 us_old[UPGRADE_MAX_OLD];	/* children */
	unsigned		 us_nold;
	int			 us_retired[HD_MAX_SOCKETS];	/* to close */
	unsigned		 us_nretired;
	const struct listeners	*us_listeners;
	const struct hd_config	*us_cf;		/* the running configuration */
};

int	 upgrade_parse(const char *, struct upgrade_desc *, char *, size_t);
int	 upgrade_format(const struct upgrade_desc *, char *, size_t);
unsigned upgrade_desc_fds(const struct upgrade_desc *, int *);
void	 upgrade_init(char **);
const char *upgrade_resuming(void);
int	 upgrade_saved_config(struct hd_config *, char *, size_t);
void	 upgrade_exec(const struct upgrade_state *);
int	 upgrade_inherit(struct upgrade_state *, struct listeners *);
void	 upgrade_abandon(const char *);
void	 upgrade_started(void);

/* master.c */
int	 master_run(struct hd_config *, const struct hd_overrides *,
	    struct listeners *, int, const struct upgrade_state *);

/* children.c */
double	 master_respawn_delay(unsigned);

/* clock.c */
double	 now_mono(void);

/* daemon.c */
int	 daemonize(void);
int	 pidfile_open(const char *);
int	 pidfile_write(int);
void	 pidfile_remove(const char *, int);
int	 privileges_drop(const struct hd_config *);
int	 privileges_check(const struct hd_config *, char *, size_t);
int	 privileges_defaulted(const struct hd_config *);
void	 privileges_chown_logs(const struct hd_config *);

/* notify.c: systemd readiness protocol and socket activation */
int	 notify_send(const char *, ...) __attribute__((format(printf, 1, 2)));
int	 notify_listen_fds(int *, unsigned);

#endif /* HELLOD_H */
