/*
 * The plain transport: the connection's socket itself.  Non-blocking
 * sockets report TR_AGAIN; a blocking socket with a send timeout (the
 * sync worker) reports the timeout the same way, and its caller treats
 * it as the end.
 */
#include <sys/socket.h>

#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include "hellod.h"
#include "transport.h"

static ssize_t
plain_recv(struct transport *t, void *buf, size_t len)
{
	ssize_t	 n;

	do
		n = recv(t->tr_fd, buf, len, 0);
	while (n == -1 && errno == EINTR);
	if (n == -1 && errno == EAGAIN) {
		t->tr_want = TR_WANT_READ;
		return TR_AGAIN;
	}
	return n == -1 ? TR_ERROR : n;
}

static ssize_t
plain_writev(struct transport *t, const struct iovec *iov, int n, int flags)
{
	struct msghdr	 msg;
	ssize_t		 w;
	int		 f = MSG_NOSIGNAL;

	/* The last bytes are held back (MSG_MORE) until the close or
	 * shutdown that follows, so that the FIN rides in their segment. */
	if (flags & TR_LAST)
		f |= MSG_MORE;
	if (n == 1)
		do
			w = send(t->tr_fd, iov[0].iov_base, iov[0].iov_len,
			    f);
		while (w == -1 && errno == EINTR);
	else {
		memset(&msg, 0, sizeof(msg));
		msg.msg_iov = (struct iovec *)(uintptr_t)iov;
		msg.msg_iovlen = (size_t)n;
		do
			w = sendmsg(t->tr_fd, &msg, f);
		while (w == -1 && errno == EINTR);
	}
	if (w == -1 && errno == EAGAIN) {
		t->tr_want = TR_WANT_WRITE;
		return TR_AGAIN;
	}
	return w == -1 ? TR_ERROR : w;
}

static int
plain_shutdown(struct transport *t)
{
	return shutdown(t->tr_fd, SHUT_WR);
}

static int
plain_close(struct transport *t)
{
	int	 rc = close(t->tr_fd);

	t->tr_fd = -1;
	return rc;
}

static const struct transport_ops plain_ops = {
	plain_recv, plain_writev, plain_shutdown, plain_close
};

void
transport_plain(struct transport *t, int fd)
{
	t->tr_ops = &plain_ops;
	t->tr_fd = fd;
	t->tr_want = 0;
	t->tr_tls = NULL;
}

/*
 * A header in clear text that TLS follows (PROXY, then the handshake)
 * must be read without taking the first bytes of TLS: the bytes are
 * looked at (transport_peek()), then only the header's are taken.
 */
ssize_t
transport_peek(struct transport *t, void *buf, size_t len)
{
	ssize_t	 n;

	do
		n = recv(t->tr_fd, buf, len, MSG_PEEK);
	while (n == -1 && errno == EINTR);
	if (n == -1 && errno == EAGAIN) {
		t->tr_want = TR_WANT_READ;
		return TR_AGAIN;
	}
	return n == -1 ? TR_ERROR : n;
}

/* Takes n bytes that transport_peek() has seen. */
int
transport_take(struct transport *t, size_t n)
{
	char	 buf[512];
	ssize_t	 r;

	while (n > 0) {
		r = tr_recv(t, buf, n < sizeof(buf) ? n : sizeof(buf));
		if (r <= 0)
			return -1;
		n -= (size_t)r;
	}
	return 0;
}

/*
 * After the last answer of a connection that may still receive: what the
 * client sends is read and dropped, so that closing does not turn into a
 * RST that destroys the answer before the client reads it.  Returns
 * TR_AGAIN while the client may send more, or 0 once it is done (end of
 * input or an error): then close.
 */
ssize_t
transport_discard(struct transport *t)
{
	char	 buf[4096];
	ssize_t	 n;

	while ((n = tr_recv(t, buf, sizeof(buf))) > 0)
		;
	return n == TR_AGAIN ? TR_AGAIN : 0;
}

int
tr_reset(struct transport *t)
{
	struct linger	 l;

	l.l_onoff = 1;
	l.l_linger = 0;
	if (setsockopt(t->tr_fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l)) == -1) {
		log_warn("setsockopt(SO_LINGER) failed");
		return -1;
	}
	return 0;
}
