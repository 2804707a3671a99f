/*
 * A main() for the fuzz targets without libFuzzer: feeds each file named
 * on the command line, and each regular file inside a directory named
 * there (not recursively, in name order), to LLVMFuzzerTestOneInput().
 *
 *	replay_http tests/fuzz/corpus/http
 *	replay_config crash-1234abcd
 *
 * An invariant violated in a target aborts; the name of the input being
 * replayed is printed first.  Exits 0 when every input passed, 1 when an
 * input could not be read or none was found.
 */
#include <sys/stat.h>

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fuzz.h"

static const char	*current;	/* the input being replayed */

static void
on_fatal(int sig)
{
	static const char	 msg[] = "replay: died while replaying ";

	if (current != NULL) {
		(void)!write(STDERR_FILENO, msg, sizeof(msg) - 1);
		(void)!write(STDERR_FILENO, current, strlen(current));
		(void)!write(STDERR_FILENO, "\n", 1);
	}
	signal(sig, SIG_DFL);
	raise(sig);
}

static int
replay_file(const char *path, unsigned long *count)
{
	FILE		*fp;
	uint8_t		*data = NULL, *p;
	size_t		 len = 0, cap = 0, n;

	if ((fp = fopen(path, "rb")) == NULL) {
		fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
		return -1;
	}
	for (;;) {
		if (len == cap) {
			cap = cap == 0 ? 4096 : cap * 2;
			if ((p = realloc(data, cap)) == NULL) {
				fprintf(stderr, "replay: %s: out of memory\n",
				    path);
				free(data);
				fclose(fp);
				return -1;
			}
			data = p;
		}
		n = fread(data + len, 1, cap - len, fp);
		len += n;
		if (n == 0)
			break;
	}
	if (ferror(fp)) {
		fprintf(stderr, "replay: %s: read error\n", path);
		free(data);
		fclose(fp);
		return -1;
	}
	fclose(fp);

	/* An exact-size copy, so that AddressSanitizer (when built with it)
	 * sees a read past the end, as under libFuzzer. */
	if ((p = malloc(len > 0 ? len : 1)) == NULL) {
		free(data);
		return -1;
	}
	memcpy(p, data, len);
	free(data);
	current = path;
	LLVMFuzzerTestOneInput(p, len);
	current = NULL;
	free(p);
	(*count)++;
	return 0;
}

static int
by_name(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int
replay_dir(const char *dir, unsigned long *count)
{
	DIR		*d;
	struct dirent	*de;
	struct stat	 sb;
	char		**names = NULL, **np, *path;
	size_t		 n = 0, cap = 0, i;
	int		 rc = 0;

	if ((d = opendir(dir)) == NULL) {
		fprintf(stderr, "replay: %s: %s\n", dir, strerror(errno));
		return -1;
	}
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		if (n == cap) {
			cap = cap == 0 ? 64 : cap * 2;
			if ((np = realloc(names, cap * sizeof(*names))) ==
			    NULL) {
				rc = -1;
				break;
			}
			names = np;
		}
		if ((names[n] = strdup(de->d_name)) == NULL) {
			rc = -1;
			break;
		}
		n++;
	}
	closedir(d);
	if (rc == -1)
		fprintf(stderr, "replay: %s: out of memory\n", dir);
	else if (n > 0)
		qsort(names, n, sizeof(*names), by_name);
	for (i = 0; i < n; i++) {
		if (rc == 0) {
			if ((path = malloc(strlen(dir) + strlen(names[i]) +
			    2)) == NULL) {
				rc = -1;
			} else {
				sprintf(path, "%s/%s", dir, names[i]);
				if (stat(path, &sb) == 0 && S_ISREG(sb.st_mode) &&
				    replay_file(path, count) == -1)
					rc = -1;
				free(path);
			}
		}
		free(names[i]);
	}
	free(names);
	return rc;
}

int
main(int argc, char *argv[])
{
	struct stat	 sb;
	unsigned long	 count = 0;
	int		 i, rc = 0;

	if (argc < 2) {
		fprintf(stderr, "usage: %s FILE|DIR ...\n", argv[0]);
		return 2;
	}
	signal(SIGABRT, on_fatal);
	signal(SIGSEGV, on_fatal);
	signal(SIGBUS, on_fatal);
	signal(SIGILL, on_fatal);
	signal(SIGFPE, on_fatal);
	for (i = 1; i < argc; i++) {
		if (stat(argv[i], &sb) == -1) {
			fprintf(stderr, "replay: %s: %s\n", argv[i],
			    strerror(errno));
			rc = 1;
		} else if (S_ISDIR(sb.st_mode)) {
			if (replay_dir(argv[i], &count) == -1)
				rc = 1;
		} else if (replay_file(argv[i], &count) == -1)
			rc = 1;
	}
	if (count == 0) {
		fprintf(stderr, "replay: no inputs found\n");
		rc = 1;
	}
	printf("replay: %lu input%s replayed%s\n", count, count == 1 ? "" : "s",
	    rc == 0 ? ", all passed" : ", with errors");
	return rc;
}
