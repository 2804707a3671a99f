/*
 * The ring of a uring worker (uring_ring.c): one io_uring, its ring of
 * provided buffers, and the hand-off of completions to the libev loop.
 * The engine (uring.c) queues submissions with ring_sqe(); they reach the
 * kernel together, once per loop iteration.  Each completion goes to the
 * handler of the tag in its user_data's low bits, with the pointer in
 * the rest.
 */
#ifndef HELLOD_URING_RING_H
#define HELLOD_URING_RING_H

#include <stdint.h>

#include <ev.h>
#include <liburing.h>

#define RING_BUFS	512		/* provided buffers: a power of 2 */
#define RING_BUF_SIZE	4096
#define RING_BGID	0

enum ring_tag {
	RT_NONE,	/* a cancel or a close: only failures are reported */
	RT_ACCEPT,
	RT_RECV,
	RT_SEND,
	RT_NTAGS
};
#define RT_MASK		0x7	/* tagged pointers are 8-byte aligned */

typedef void ring_cqe_fn(void *, const struct io_uring_cqe *);

int	 ring_init(struct ev_loop *, ring_cqe_fn *const [RT_NTAGS]);
struct io_uring_sqe *ring_sqe(void *, enum ring_tag);
void	 ring_submit_now(void);
const char *ring_buf_take(const struct io_uring_cqe *, unsigned *);
void	 ring_buf_return(unsigned);
void	 ring_exit(void);

#endif /* HELLOD_URING_RING_H */
