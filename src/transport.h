/*
 * How a connection's bytes move.  The workers and the status server read,
 * write, shut down and close a connection only through these calls, so
 * that another transport (TLS) replaces the plain socket per connection
 * without request handling knowing which one it has.
 *
 * Results: a byte count (recv: 0 at the end of input), TR_AGAIN when the
 * call would block (tr_want then says which readiness to wait for: a
 * TLS write may need to read first), or TR_ERROR (errno set; the
 * connection is unusable).
 */
#ifndef HELLOD_TRANSPORT_H
#define HELLOD_TRANSPORT_H

#include <sys/types.h>
#include <sys/uio.h>

#include <stdint.h>

#define TR_ERROR	(-1)
#define TR_AGAIN	(-2)

#define TR_WANT_READ	0x1
#define TR_WANT_WRITE	0x2

/* tr_writev flags */
#define TR_LAST		0x1	/* the connection's last bytes: the FIN
				   that follows may share their segment */

struct transport;
struct tls_conn;

struct transport_ops {
	ssize_t	(*to_recv)(struct transport *, void *, size_t);
	ssize_t	(*to_writev)(struct transport *, const struct iovec *, int,
		    int);
	int	(*to_shutdown)(struct transport *);	/* no more output */
	int	(*to_close)(struct transport *);
};

struct transport {
	const struct transport_ops *tr_ops;
	int			 tr_fd;
	int			 tr_want;	/* after TR_AGAIN */
	struct tls_conn		*tr_tls;	/* the TLS transport's */
};

void	 transport_plain(struct transport *, int);
ssize_t	 transport_discard(struct transport *);
ssize_t	 transport_peek(struct transport *, void *, size_t);
int	 transport_take(struct transport *, size_t);

static inline ssize_t
tr_recv(struct transport *t, void *buf, size_t len)
{
	return t->tr_ops->to_recv(t, buf, len);
}

static inline ssize_t
tr_writev(struct transport *t, const struct iovec *iov, int n, int flags)
{
	return t->tr_ops->to_writev(t, iov, n, flags);
}

static inline ssize_t
tr_write(struct transport *t, const void *buf, size_t len, int flags)
{
	struct iovec	 iov;

	iov.iov_base = (void *)(uintptr_t)buf;
	iov.iov_len = len;
	return tr_writev(t, &iov, 1, flags);
}

/* Input already read from the socket and not yet returned (TLS). */
int	 tls_pending(const struct transport *);

static inline int
tr_pending(const struct transport *t)
{
	return t->tr_tls != NULL && tls_pending(t);
}

static inline int
tr_shutdown(struct transport *t)
{
	return t->tr_ops->to_shutdown(t);
}

static inline int
tr_close(struct transport *t)
{
	return t->tr_ops->to_close(t);
}

/* The next close resets the connection (RST, SO_LINGER {1, 0}): nothing
 * unsent is delivered.  Returns -1 when the option could not be set. */
int	 tr_reset(struct transport *);

#endif /* HELLOD_TRANSPORT_H */
