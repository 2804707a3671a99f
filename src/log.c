/*
 * Error log: stderr, syslog or a file opened O_APPEND.  Each line is
 * written with one write(2) so lines of several processes never mix:
 *
 *   2026/11/24 20:10:00 [error] 1234#worker 0: message
 *
 * log_warn() and log_errno() append the errno text; log_warnx() and
 * log_error() do not.  What makes hellod exit, or a reload or upgrade
 * fail, is an error; what it goes on after is a warning.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "hellod.h"

enum log_dest { DEST_STDERR, DEST_SYSLOG, DEST_FILE };

static enum log_dest	 log_dest = DEST_STDERR;
static int		 log_fd = STDERR_FILENO;
static int		 log_lvl = LOG_LEVEL_INFO;
static char		 log_path[PATH_MAX];
static char		 log_ident[32] = "master";
static int		 log_echo;	/* errors to stderr too */

static const char *const level_names[] = { "error", "warn", "info", "debug" };
static const int syslog_prio[] = { LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG };

int
log_level_parse(const char *s)
{
	int	 i;

	for (i = 0; i <= LOG_LEVEL_DEBUG; i++)
		if (strcmp(s, level_names[i]) == 0)
			return i;
	return -1;
}

/* Detached, stderr leads nowhere: syslog stands in for it. */
const char *
log_destination(const char *configured, int foreground)
{
	if (!foreground && strcmp(configured, "stderr") == 0)
		return "syslog";
	return configured;
}

/* Switches the destination; on failure the previous one stays. */
int
log_open(const char *dest, int level)
{
	int	 fd;

	if (strcmp(dest, "stderr") == 0) {
		fd = STDERR_FILENO;
		if (log_dest == DEST_SYSLOG)
			closelog();
		if (log_dest == DEST_FILE)
			close(log_fd);
		log_dest = DEST_STDERR;
	} else if (strcmp(dest, "syslog") == 0) {
		if (log_dest == DEST_FILE)
			close(log_fd);
		openlog(HELLOD_NAME, LOG_PID | LOG_NDELAY, LOG_DAEMON);
		fd = -1;
		log_dest = DEST_SYSLOG;
	} else {
		fd = open(dest, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
		if (fd == -1)
			return -1;
		if (log_dest == DEST_FILE)
			close(log_fd);
		if (log_dest == DEST_SYSLOG)
			closelog();
		log_dest = DEST_FILE;
		snprintf(log_path, sizeof(log_path), "%s", dest);
	}
	log_fd = fd;
	log_lvl = level;
	return 0;
}

/* For logrotate: a file destination is opened again by name. */
int
log_reopen(void)
{
	int	 fd;

	if (log_dest != DEST_FILE)
		return 0;
	fd = open(log_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
	if (fd == -1) {
		log_warn("open(\"%s\") failed", log_path);
		return -1;
	}
	if (dup3(fd, log_fd, O_CLOEXEC) == -1) {
		log_warn("dup3() failed");
		close(fd);
		return -1;
	}
	close(fd);
	return 0;
}

/*
 * While hellod starts, the one who started it learns why it stops: with
 * echo on, errors also go to stderr when the log goes elsewhere (as
 * nginx's emergencies do before it detaches).
 */
void
log_echo_errors(int on)
{
	log_echo = on;
}

void
log_set_ident(const char *ident)
{
	snprintf(log_ident, sizeof(log_ident), "%s", ident);
}

static void vlog(int, int, const char *, va_list)
    __attribute__((format(printf, 3, 0)));

static void
vlog(int level, int with_errno, const char *fmt, va_list ap)
{
	char		 line[2048], echo[2048];
	int		 saved = errno, n, m, body;
	struct tm	 tm;
	time_t		 now;
	size_t		 len;

	if (level > log_lvl)
		return;
	n = 0;
	if (log_dest != DEST_SYSLOG) {
		now = time(NULL);
		localtime_r(&now, &tm);
		n = (int)strftime(line, sizeof(line), "%Y/%m/%d %H:%M:%S ",
		    &tm);
		m = snprintf(line + n, sizeof(line) - (size_t)n, "[%s] %d#%s: ",
		    level_names[level], (int)getpid(), log_ident);
		n += m;
	} else {
		m = snprintf(line, sizeof(line), "%s: ", log_ident);
		n += m;
	}
	body = n;
	m = vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
	if (m > 0)
		n = n + m < (int)sizeof(line) ? n + m : (int)sizeof(line) - 1;
	if (with_errno && n < (int)sizeof(line) - 1) {
		m = snprintf(line + n, sizeof(line) - (size_t)n, " (%d: %s)",
		    saved, strerror(saved));
		if (m > 0)
			n = n + m < (int)sizeof(line) ? n + m :
			    (int)sizeof(line) - 1;
	}
	len = (size_t)n;
	if (log_dest == DEST_SYSLOG) {
		syslog(syslog_prio[level], "%.*s", (int)len, line);
	} else {
		if (len >= sizeof(line) - 1)
			len = sizeof(line) - 2;
		line[len++] = '\n';
		/* A failed log write has nowhere to be reported. */
		if (write(log_fd, line, len) == -1)
			(void)0;
	}
	if (log_echo && level == LOG_LEVEL_ERROR && log_dest != DEST_STDERR) {
		m = snprintf(echo, sizeof(echo), "%s: [error] %.*s\n",
		    HELLOD_NAME, n - body, line + body);
		len = m < (int)sizeof(echo) ? (size_t)m : sizeof(echo) - 1;
		if (m > 0 && write(STDERR_FILENO, echo, len) == -1)
			(void)0;
	}
	errno = saved;
}

#define LOGFN(name, level, with_errno)				\
void								\
name(const char *fmt, ...)					\
{								\
	va_list	 ap;						\
								\
	va_start(ap, fmt);					\
	vlog(level, with_errno, fmt, ap);			\
	va_end(ap);						\
}

LOGFN(log_error, LOG_LEVEL_ERROR, 0)
LOGFN(log_errno, LOG_LEVEL_ERROR, 1)
LOGFN(log_warn, LOG_LEVEL_WARN, 1)
LOGFN(log_warnx, LOG_LEVEL_WARN, 0)
LOGFN(log_info, LOG_LEVEL_INFO, 0)
LOGFN(log_debug, LOG_LEVEL_DEBUG, 0)

/* For a count in a message: "%u worker%s", n, plural(n). */
const char *
plural(unsigned long n)
{
	return n == 1 ? "" : "s";
}

void
fatal(const char *fmt, ...)
{
	va_list	 ap;

	va_start(ap, fmt);
	vlog(LOG_LEVEL_ERROR, 1, fmt, ap);
	va_end(ap);
	exit(HD_EXIT_FAILURE);
}

void
fatalx(const char *fmt, ...)
{
	va_list	 ap;

	va_start(ap, fmt);
	vlog(LOG_LEVEL_ERROR, 0, fmt, ap);
	va_end(ap);
	exit(HD_EXIT_FAILURE);
}
