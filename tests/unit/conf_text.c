/*
 * Configuration files for the unit tests: text written to a temporary
 * file and loaded over the defaults, as the daemon loads its file.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "hellod.h"
#include "conf_text.h"

/* Writes len bytes to a new temporary file; path receives its name. */
void
write_temp_bytes(const char *text, size_t len, char path[PATH_MAX])
{
	const char	*dir = getenv("TMPDIR");
	int		 fd;

	snprintf(path, PATH_MAX, "%s/hellod-unit-XXXXXX",
	    dir != NULL && *dir != '\0' ? dir : "/tmp");
	fd = mkstemp(path);
	assert_true(fd != -1);
	assert_int_equal(write(fd, text, len), (ssize_t)len);
	assert_int_equal(close(fd), 0);
}

void
write_temp(const char *text, char path[PATH_MAX])
{
	write_temp_bytes(text, strlen(text), path);
}


/*
 * Defaults, then text loaded as a file.  Returns config_load()'s result;
 * err gets the message (empty on success), path the file's name (the
 * file is already removed).
 */
int
load_text(const char *text, struct hd_config *cf, char err[HD_ERRLEN],
    char path[PATH_MAX])
{
	int	 rc;

	write_temp(text, path);
	config_defaults(cf);
	err[0] = '\0';
	rc = config_load(cf, path, err, HD_ERRLEN);
	unlink(path);
	if (rc == 0)
		assert_string_equal(err, "");
	return rc;
}

/* The file must load; on failure, say why. */
void
load_ok(const char *text, struct hd_config *cf)
{
	char	 err[HD_ERRLEN], path[PATH_MAX];

	if (load_text(text, cf, err, path) != 0)
		fail_msg("config did not load: %s\n--- file ---\n%s", err, text);
	assert_string_equal(cf->cf_file, path);
}

/* The file must fail with exactly "<path><suffix>". */
void
load_fails(const char *text, const char *suffix)
{
	struct hd_config	 cf;
	char			 err[HD_ERRLEN], path[PATH_MAX];
	char			 want[HD_ERRLEN + PATH_MAX];

	if (load_text(text, &cf, err, path) != -1)
		fail_msg("config loaded, expected \"%s\"\n--- file ---\n%s",
		    suffix, text);
	snprintf(want, sizeof(want), "%s%s", path, suffix);
	assert_string_equal(err, want);
}
