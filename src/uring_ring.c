/*
 * The ring of a uring worker (see uring_ring.h).
 *
 * Completions reach libev through the ring's descriptor: an ev_io on it
 * (the descriptor polls readable while completions wait) instead of an
 * eventfd, which would cost a read() per wake-up.  Submissions queued
 * during a loop iteration go to the kernel in one io_uring_submit() from
 * an ev_prepare watcher, just before the loop sleeps.
 *
 * Buffers: a provided buffer is the kernel's until a completion names
 * it, then the engine's only while that completion is handled
 * (ring_buf_take() .. ring_buf_return()): between completions every
 * buffer is the kernel's, so rg_bufs_out is 0 whenever the loop sleeps.
 */
#include <sys/mman.h>

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <ev.h>
#include <liburing.h>

#include "hellod.h"
#include "uring_ring.h"

#define RING_ENTRIES	1024		/* submission queue */
#define RING_BATCH	64		/* completions handled per peek */
#define RING_ROUNDS	4		/* submit-and-reap rounds per sleep */
/* The kernel runs the work behind completions (a receive, an accept)
 * when this task next enters it, or wakes it from its sleep, instead of
 * interrupting it: one task, so no one else waits for them. */
#define RING_FLAGS	(IORING_SETUP_COOP_TASKRUN | IORING_SETUP_TASKRUN_FLAG)

struct ring {
	struct ev_loop		*rg_loop;
	struct io_uring		 rg_ring;
	ev_io			 rg_io;
	ev_prepare		 rg_prepare;
	struct io_uring_buf_ring *rg_br;
	char			*rg_bufs;
	unsigned		 rg_bufs_out;	/* taken, not yet returned */
	ring_cqe_fn		*rg_handler[RT_NTAGS];
};

static struct ring	 rg;

/*
 * A submission queue entry for p, tagged.  A full queue is submitted at
 * once to make room; only if that fails is there none, and the worker
 * cannot go on without losing track of a connection.
 */
struct io_uring_sqe *
ring_sqe(void *p, enum ring_tag tag)
{
	struct io_uring_sqe	*sqe;
	int			 rc;

	if ((sqe = io_uring_get_sqe(&rg.rg_ring)) == NULL) {
		if ((rc = io_uring_submit(&rg.rg_ring)) < 0) {
			errno = -rc;
			fatal("io_uring_submit() failed");
		}
		if ((sqe = io_uring_get_sqe(&rg.rg_ring)) == NULL)
			fatalx("io_uring_get_sqe() failed");
	}
	/* The prep helpers set every field but these. */
	io_uring_sqe_set_data64(sqe, (uint64_t)(uintptr_t)p | tag);
	return sqe;
}

/* What is queued goes now, not at the end of the iteration. */
void
ring_submit_now(void)
{
	int	 rc;

	if ((rc = io_uring_submit(&rg.rg_ring)) < 0)
		log_debug("io_uring_submit() failed: %s", strerror(-rc));
}

/* The buffer a completion names, with its id for ring_buf_return(). */
const char *
ring_buf_take(const struct io_uring_cqe *cqe, unsigned *bid)
{
	*bid = cqe->flags >> IORING_CQE_BUFFER_SHIFT;
	rg.rg_bufs_out++;
	return rg.rg_bufs + (size_t)*bid * RING_BUF_SIZE;
}

void
ring_buf_return(unsigned bid)
{
	io_uring_buf_ring_add(rg.rg_br, rg.rg_bufs + (size_t)bid *
	    RING_BUF_SIZE, RING_BUF_SIZE, (unsigned short)bid,
	    io_uring_buf_ring_mask(RING_BUFS), 0);
	io_uring_buf_ring_advance(rg.rg_br, 1);
	rg.rg_bufs_out--;
}

/* Every completion waiting, in batches. */
static unsigned
reap(void)
{
	struct io_uring_cqe	*cqes[RING_BATCH], *cqe;
	unsigned		 n, i, total = 0, tag;

	while ((n = io_uring_peek_batch_cqe(&rg.rg_ring, cqes,
	    RING_BATCH)) > 0) {
		/* Timeouts start from ev_now(): thousands of completions
		 * in one iteration must not all date from its start. */
		ev_now_update(rg.rg_loop);
		for (i = 0; i < n; i++) {
			cqe = cqes[i];
			tag = cqe->user_data & RT_MASK;
			if (tag != RT_NONE && tag < RT_NTAGS)
				rg.rg_handler[tag]((void *)(uintptr_t)
				    (cqe->user_data & ~(uint64_t)RT_MASK), cqe);
			else if (cqe->res < 0 && cqe->res != -ENOENT &&
			    cqe->res != -EALREADY && cqe->res != -ECANCELED)
				log_debug("io_uring cancel or close failed: %s",
				    strerror(-cqe->res));
		}
		io_uring_cq_advance(&rg.rg_ring, n);
		total += n;
	}
	return total;
}

/*
 * Completions wait in the queue, or the kernel has some to post once
 * this task enters it (IORING_SQ_TASKRUN: io_uring_peek_batch_cqe()
 * then fetches them); no system call to find out.
 */
static int
ring_ready(void)
{
	return io_uring_cq_ready(&rg.rg_ring) > 0 ||
	    (IO_URING_READ_ONCE(*rg.rg_ring.sq.kflags) & IORING_SQ_TASKRUN);
}

static void
ring_cb(struct ev_loop *loop, ev_io *io, int revents)
{
	(void)loop;
	(void)io;
	(void)revents;
	(void)reap();
}

/*
 * Just before the loop sleeps: what this iteration queued goes to the
 * kernel in one submission.  Completions that wait, or that the kernel
 * posts on the way back from it, are handled here too (a few rounds),
 * saving the loop a wake-up; nothing queued is left for the next
 * wake-up: a round that queues more submits it in the next one, and the
 * last round ends with a submission or with nothing queued.
 */
static void
prepare_cb(struct ev_loop *loop, ev_prepare *p, int revents)
{
	int	 rc, round;

	(void)loop;
	(void)p;
	(void)revents;
	for (round = 1;; round++) {
		if (io_uring_sq_ready(&rg.rg_ring) > 0) {
			if ((rc = io_uring_submit(&rg.rg_ring)) < 0 &&
			    rc != -EINTR && rc != -EAGAIN && rc != -EBUSY) {
				errno = -rc;
				fatal("io_uring_submit() failed");
			}
		} else if (!ring_ready())
			break;
		if (round == RING_ROUNDS ||
		    (reap() == 0 && io_uring_sq_ready(&rg.rg_ring) == 0))
			break;
	}
}

/* The provided buffers: every one of them the kernel's to start with. */
static int
bufs_init(void)
{
	struct io_uring_buf_reg	 reg;
	size_t			 size = RING_BUFS * sizeof(struct io_uring_buf);
	unsigned		 i;
	int			 rc;
	void			*p;

	p = mmap(NULL, size, PROT_READ | PROT_WRITE,
	    MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
	if (p == MAP_FAILED) {
		log_warn("mmap() failed");
		return -1;
	}
	rg.rg_br = p;
	if ((rg.rg_bufs = malloc((size_t)RING_BUFS * RING_BUF_SIZE)) == NULL) {
		log_warn("malloc() failed");
		return -1;
	}
	memset(&reg, 0, sizeof(reg));
	reg.ring_addr = (uint64_t)(uintptr_t)rg.rg_br;
	reg.ring_entries = RING_BUFS;
	reg.bgid = RING_BGID;
	if ((rc = io_uring_register_buf_ring(&rg.rg_ring, &reg, 0)) < 0) {
		errno = -rc;
		log_warn("io_uring_register_buf_ring() failed");
		return -1;
	}
	io_uring_buf_ring_init(rg.rg_br);
	for (i = 0; i < RING_BUFS; i++)
		io_uring_buf_ring_add(rg.rg_br, rg.rg_bufs +
		    (size_t)i * RING_BUF_SIZE, RING_BUF_SIZE, (unsigned short)i,
		    io_uring_buf_ring_mask(RING_BUFS), (int)i);
	io_uring_buf_ring_advance(rg.rg_br, RING_BUFS);
	return 0;
}

int
ring_init(struct ev_loop *loop, ring_cqe_fn *const handler[RT_NTAGS])
{
	struct io_uring_params	 par;
	int			 rc;

	rg.rg_loop = loop;
	memcpy(rg.rg_handler, handler, sizeof(rg.rg_handler));
	/* The master probed the kernel (uring_probe()): a failure here is
	 * a lack of memory, not of io_uring. */
	memset(&par, 0, sizeof(par));
	par.flags = RING_FLAGS;
	rc = io_uring_queue_init_params(RING_ENTRIES, &rg.rg_ring, &par);
	if (rc == -EINVAL) {	/* a kernel older than 5.19 */
		memset(&par, 0, sizeof(par));
		rc = io_uring_queue_init_params(RING_ENTRIES, &rg.rg_ring,
		    &par);
	}
	if (rc < 0) {
		errno = -rc;
		log_warn("io_uring_queue_init() failed");
		return -1;
	}
	if (bufs_init() == -1)
		return -1;
	ev_io_init(&rg.rg_io, ring_cb, rg.rg_ring.ring_fd, EV_READ);
	ev_io_start(loop, &rg.rg_io);
	ev_prepare_init(&rg.rg_prepare, prepare_cb);
	ev_prepare_start(loop, &rg.rg_prepare);
	return 0;
}

/* After the loop: every provided buffer must be back in the ring. */
void
ring_exit(void)
{
	if (rg.rg_bufs_out != 0)
		log_warnx("%u provided buffer%s not returned",
		    rg.rg_bufs_out, rg.rg_bufs_out == 1 ? " was" : "s were");
	io_uring_queue_exit(&rg.rg_ring);
}
