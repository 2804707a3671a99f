/*
 * Session-ticket keys.  The master makes them at start from the system's
 * random source, keeps them in a memfd (memory only, never a file), and
 * rotates them every session_ticket_lifetime: a new current key seals
 * new tickets, the previous one still opens tickets until the next
 * rotation (and asks for them to be renewed), older ones are gone.
 * Reloads keep the memfd; an in-place upgrade hands it to the new image.
 *
 * Workers map the keys read-only from a descriptor opened read-only, and
 * close every descriptor of it: a worker can read the keys but neither
 * write them nor make its mapping writable.  The master writes under a
 * sequence lock; a reader retries a torn read.
 */
#include <sys/mman.h>
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "hellod.h"
#include "tls.h"

#define KEYS_MAGIC	0x684b5931u	/* "hKY1" */
#define NAME_LEN	16
#define SECRET_LEN	32

struct tls_key {
	unsigned char	 tk_name[NAME_LEN];
	unsigned char	 tk_aes[SECRET_LEN];
	unsigned char	 tk_hmac[SECRET_LEN];
};

struct keys_area {
	uint32_t	 ka_magic;
	uint32_t	 ka_seq;		/* odd while being written */
	double		 ka_rotated;		/* CLOCK_REALTIME, s */
	uint32_t	 ka_n;			/* 1 or 2 */
	struct tls_key	 ka_key[2];		/* current, previous */
};

static int			 keys_fd = -1;	/* the master's */
static struct keys_area		*keys_rw;	/* the master's */
static const struct keys_area	*keys_ro;	/* everyone's */
static unsigned			 keys_lifetime;	/* s */

static double
now_real(void)
{
	struct timespec	 ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static int
new_key(struct tls_key *k)
{
	if (RAND_bytes((unsigned char *)k, sizeof(*k)) != 1) {
		log_warnx("RAND_bytes() failed");
		return -1;
	}
	return 0;
}

/* Maps fd: read-write for the master, and read-only through a descriptor
 * of its own that children inherit the mapping of, not the descriptor. */
static int
keys_map(int fd)
{
	char	 path[64];
	void	*rw, *ro;
	int	 rofd;

	rw = mmap(NULL, sizeof(struct keys_area), PROT_READ | PROT_WRITE,
	    MAP_SHARED, fd, 0);
	if (rw == MAP_FAILED) {
		log_warn("mmap() failed");
		return -1;
	}
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	if ((rofd = open(path, O_RDONLY | O_CLOEXEC)) == -1) {
		log_warn("open(%s) failed", path);
		munmap(rw, sizeof(struct keys_area));
		return -1;
	}
	ro = mmap(NULL, sizeof(struct keys_area), PROT_READ, MAP_SHARED, rofd,
	    0);
	close(rofd);
	if (ro == MAP_FAILED) {
		log_warn("mmap() failed");
		munmap(rw, sizeof(struct keys_area));
		return -1;
	}
	keys_fd = fd;
	keys_rw = rw;
	keys_ro = ro;
	return 0;
}

/* Fresh keys, rotated every lifetime_ms. */
static int
tls_keys_create(unsigned lifetime_ms)
{
	int	 fd;

	if ((fd = memfd_create("hellod-tickets", MFD_CLOEXEC |
	    MFD_ALLOW_SEALING)) == -1) {
		log_warn("memfd_create() failed");
		return -1;
	}
	if (ftruncate(fd, sizeof(struct keys_area)) == -1 ||
	    fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW |
	    F_SEAL_SEAL) == -1) {
		log_warn("sealing the ticket keys failed");
		close(fd);
		return -1;
	}
	if (keys_map(fd) == -1) {
		close(fd);
		return -1;
	}
	keys_lifetime = lifetime_ms / 1000;
	keys_rw->ka_magic = KEYS_MAGIC;
	keys_rw->ka_n = 1;
	keys_rw->ka_rotated = now_real();
	return new_key(&keys_rw->ka_key[0]);
}

/* The master after an in-place upgrade: the keys the old image had. */
int
tls_keys_adopt(int fd, unsigned lifetime_ms)
{
	struct stat	 st;

	if (fstat(fd, &st) == -1 ||
	    st.st_size != (off_t)sizeof(struct keys_area)) {
		log_warnx("the ticket keys handed over do not fit: new ones");
		close(fd);
		return tls_keys_create(lifetime_ms);
	}
	if (keys_map(fd) == -1) {
		close(fd);
		return -1;
	}
	keys_lifetime = lifetime_ms / 1000;
	if (keys_rw->ka_magic != KEYS_MAGIC || keys_rw->ka_n < 1 ||
	    keys_rw->ka_n > 2) {
		log_warnx("the ticket keys handed over are not readable: new "
		    "ones");
		keys_rw->ka_magic = KEYS_MAGIC;
		keys_rw->ka_n = 1;
		keys_rw->ka_rotated = now_real();
		return new_key(&keys_rw->ka_key[0]);
	}
	return 0;
}

/* The master, when a configuration uses tickets: the keys it has (now
 * rotated every lifetime_ms), or new ones. */
int
tls_keys_need(unsigned lifetime_ms)
{
	keys_lifetime = lifetime_ms / 1000;
	return keys_rw != NULL ? 0 : tls_keys_create(lifetime_ms);
}

int
tls_keys_fd(void)
{
	return keys_fd;
}

/* Seconds until the next rotation (0: due), < 0 without keys. */
double
tls_keys_due(void)
{
	double	 left;

	if (keys_rw == NULL)
		return -1;
	left = keys_rw->ka_rotated + keys_lifetime - now_real();
	return left > 0 ? left : 0;
}

/*
 * The master, from its loop: a new current key once the current one is
 * a lifetime old; the current one becomes the previous one.
 */
void
tls_keys_rotate(void)
{
	struct keys_area	*k = keys_rw;

	if (tls_keys_due() != 0)
		return;
	__atomic_store_n(&k->ka_seq, k->ka_seq + 1, __ATOMIC_RELAXED);
	__atomic_thread_fence(__ATOMIC_RELEASE);
	k->ka_key[1] = k->ka_key[0];
	if (new_key(&k->ka_key[0]) == -1)
		k->ka_key[0] = k->ka_key[1];	/* keep the old one */
	k->ka_n = 2;
	k->ka_rotated = now_real();
	__atomic_thread_fence(__ATOMIC_RELEASE);
	__atomic_store_n(&k->ka_seq, k->ka_seq + 1, __ATOMIC_RELAXED);
	log_debug("session ticket keys rotated");
}

/* In a child: only the read-only mapping stays. */
void
tls_keys_child(void)
{
	if (keys_rw != NULL)
		munmap(keys_rw, sizeof(struct keys_area));
	keys_rw = NULL;
	if (keys_fd != -1)
		close(keys_fd);
	keys_fd = -1;
}

/*
 * The key to seal a new ticket with (name NULL: the current one, whose
 * name is copied to out_name), or the key whose name is `name`.  *renew
 * says the key is the previous one: the ticket should be replaced.
 */
int
tls_keys_get(const unsigned char *name, unsigned char *out_name,
    unsigned char *aes, unsigned char *hmac, int *renew)
{
	const struct keys_area	*k = keys_ro;
	struct tls_key		 key;
	uint32_t		 seq, n, i;
	int			 found;

	if (k == NULL)
		return -1;
	do {
		seq = __atomic_load_n(&k->ka_seq, __ATOMIC_ACQUIRE);
		n = k->ka_n > 2 ? 2 : k->ka_n;
		found = -1;
		for (i = 0; i < n && found == -1; i++)
			if (name == NULL ||
			    CRYPTO_memcmp(k->ka_key[i].tk_name, name,
			    NAME_LEN) == 0) {
				key = k->ka_key[i];
				found = (int)i;
			}
		__atomic_thread_fence(__ATOMIC_ACQUIRE);
	} while ((seq & 1) || seq != __atomic_load_n(&k->ka_seq,
	    __ATOMIC_RELAXED));
	if (found == -1)
		return -1;
	if (out_name != NULL)
		memcpy(out_name, key.tk_name, NAME_LEN);
	memcpy(aes, key.tk_aes, SECRET_LEN);
	memcpy(hmac, key.tk_hmac, SECRET_LEN);
	*renew = found == 1;
	OPENSSL_cleanse(&key, sizeof(key));
	return 0;
}
