/*
 * An event-loop child: one libev loop, its signals and a connection
 * engine on the sockets it was given: conn.c for the async workers and
 * the status server, uring.c for the uring workers.  The service says
 * how they answer.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>

#include <ev.h>

#include "hellod.h"
#include "answer.h"
#include "conn.h"
#include "uring.h"
#include "worker.h"

const struct worker_engine worker_readiness = {
	engine_init, engine_drain, NULL
};

static const struct worker_engine worker_completions = {
	uring_init, uring_drain, uring_exit
};

/* The greeting workers of both engines. */
static const struct service greeting = {
	.sv_decide = answer_decide,
	.sv_reclaim = CS_BIT(CS_IDLE),
	.sv_drain = CS_BIT(CS_IDLE),
};

static ev_signal		 sig_term, sig_quit, sig_usr1;
static const struct worker_engine *engine;

static void
sig_cb(struct ev_loop *loop, ev_signal *s, int revents)
{
	(void)loop;
	(void)revents;
	switch (s->signum) {
	case SIGTERM:
		engine->we_drain();
		break;
	case SIGQUIT:
		_exit(0);
	case SIGUSR1:
		log_reopen();
		access_reopen();
		break;
	}
}

void
worker_run(const struct hd_config *cf, const struct hd_socket *socks,
    unsigned nsocks, const struct service *sv, const struct worker_engine *we,
    const char *who)
{
	struct ev_loop	*loop;
	sigset_t	 mask;

	if ((loop = ev_default_loop(EVFLAG_AUTO)) == NULL)
		fatalx("ev_default_loop() failed");
	engine = we;
	we->we_init(loop, cf, socks, nsocks, sv);

	ev_signal_init(&sig_term, sig_cb, SIGTERM);
	ev_signal_init(&sig_quit, sig_cb, SIGQUIT);
	ev_signal_init(&sig_usr1, sig_cb, SIGUSR1);
	ev_signal_start(loop, &sig_term);
	ev_signal_start(loop, &sig_quit);
	ev_signal_start(loop, &sig_usr1);
	sigemptyset(&mask);
	if (sigprocmask(SIG_SETMASK, &mask, NULL) == -1)
		fatal("sigprocmask() failed");

	ev_run(loop, 0);
	if (we->we_exit != NULL)
		we->we_exit();
	log_debug("%s exiting", who);
	exit(0);
}

static void __attribute__((noreturn))
worker_serve(const struct hd_worker_ctx *ctx, const struct worker_engine *we,
    const char *mode)
{
	char	 who[32];

	snprintf(who, sizeof(who), "worker %d", ctx->wc_slot);
	answer_self_set(ctx->wc_slot, ctx->wc_generation, mode);
	log_info("worker %d serving (generation %u, %s, %u listener%s)",
	    ctx->wc_slot, ctx->wc_generation, mode, ctx->wc_nsocks,
	    ctx->wc_nsocks == 1 ? "" : "s");
	worker_run(ctx->wc_config, ctx->wc_socks, ctx->wc_nsocks, &greeting,
	    we, who);
}

void
worker_main(const struct hd_worker_ctx *ctx)
{
	worker_serve(ctx, &worker_readiness, "async");
}

void
uring_main(const struct hd_worker_ctx *ctx)
{
	worker_serve(ctx, &worker_completions, "uring");
}
