/* SPDX-License-Identifier: GPL-3.0-or-later */
#include "config.h"

#include <errno.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/base.h"

char *
fm_path_join(const char *dir, const char *name)
{
	size_t n = strlen(dir);
	while (n > 1 && dir[n - 1] == '/')
		n--;
	while (*name == '/')
		name++;
	if (n == 1 && dir[0] == '/')
		return xasprintf("/%s", name);
	return xasprintf("%.*s/%s", (int)n, dir, name);
}

static const char *
home_dir(void)
{
	const char *home = getenv("HOME");
	if (home != NULL && home[0] == '/')
		return home;
	struct passwd *pw = getpwuid(getuid());
	if (pw != NULL && pw->pw_dir != NULL && pw->pw_dir[0] == '/')
		return pw->pw_dir;
	return "/";
}

/* The XDG spec says a relative value is invalid and must be ignored. */
static char *
xdg_dir(const char *var, const char *fallback)
{
	const char *v = getenv(var);
	char *base = v != NULL && v[0] == '/'
	                 ? xstrdup(v)
	                 : fm_path_join(home_dir(), fallback);
	char *dir = fm_path_join(base, "fulmar");
	free(base);
	return dir;
}

char *
fm_path_config_dir(void)
{
	return xdg_dir("XDG_CONFIG_HOME", ".config");
}

char *
fm_path_data_dir(void)
{
	return xdg_dir("XDG_DATA_HOME", ".local/share");
}

char *
fm_path_state_dir(void)
{
	return xdg_dir("XDG_STATE_HOME", ".local/state");
}

int
fm_path_mkdirs(const char *dir, unsigned mode, struct fm_error *err)
{
	char *p = xstrdup(dir);
	int ret = 0;
	for (char *s = p + 1;; s++) {
		char c = *s;
		if (c != '/' && c != '\0')
			continue;
		*s = '\0';
		if (mkdir(p, (mode_t)mode) < 0 && errno != EEXIST) {
			ret =
			    fm_error_errno(err, FM_ERR_LOCAL, errno,
			                   _("cannot create directory %s"), p);
			break;
		}
		*s = c;
		if (c == '\0')
			break;
	}
	if (ret == 0) {
		struct stat st;
		if (stat(dir, &st) < 0 || !S_ISDIR(st.st_mode))
			ret = fm_error_set(
			    err, FM_ERR_LOCAL,
			    _("%s exists but is not a directory"), dir);
	}
	free(p);
	return ret;
}
