/*
 * The master's state, kept by master.c (the loop, reloads, stops,
 * upgrades) and handed to children.c (forking, signalling and reaping
 * children), which never calls back into master.c.
 */
#ifndef HELLOD_MASTER_H
#define HELLOD_MASTER_H

#include <sys/types.h>

#include "hellod.h"

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
	pid_t			 m_pid;		/* the master's, for children */
	const int		*m_signals;	/* the master handles; a */
	unsigned		 m_nsignals;	/* child sets them back */
	int			 m_announce;	/* READY=1 due once all serve */
	unsigned		 m_prev_serving;	/* the old generation's */
	enum master_state	 m_state;
	double			 m_stop_at;	/* or the notice's end */
	pid_t			 m_status_pid;	/* the status server; 0: none */
	int			 m_status_stop_sent;
	double			 m_status_respawn_at;	/* 0: none pending */
	int			 m_status;
};

/* reap() */
#define REAP_OK		0
#define REAP_FATAL	1	/* a worker cannot start: stop */

/* children.c */
int	 spawn(struct master *, unsigned);
void	 status_spawn(struct master *);
void	 signal_pid(pid_t, int);
void	 signal_all(struct master *, int);
unsigned serving_update(const struct master *);
void	 serving_adopt(struct master *, unsigned);
int	 workers_left(const struct master *);
int	 children_left(const struct master *);
void	 retire(struct master *, pid_t, int, double);
void	 retired_close(struct master *);
int	 reap(struct master *);
int	 read_ready(struct master *);

#endif /* HELLOD_MASTER_H */
