/* Configuration files for the unit tests (conf_text.c). */
#ifndef HELLOD_CONF_TEXT_H
#define HELLOD_CONF_TEXT_H

#include <limits.h>
#include <stddef.h>

struct hd_config;

void	 write_temp_bytes(const char *, size_t, char [PATH_MAX]);
void	 write_temp(const char *, char [PATH_MAX]);
int	 load_text(const char *, struct hd_config *, char [HD_ERRLEN],
	    char [PATH_MAX]);
void	 load_ok(const char *, struct hd_config *);
void	 load_fails(const char *, const char *);

#endif /* HELLOD_CONF_TEXT_H */
