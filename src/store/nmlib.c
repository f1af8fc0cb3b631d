/* SPDX-License-Identifier: GPL-3.0-or-later */
#include "config.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdbool.h>

#include "store/nmlib.h"

/* Written once, by load() under pthread_once(), and only read after it:
 * pthread_once() orders that write before every caller's reads. */
static pthread_once_t load_once = PTHREAD_ONCE_INIT;
static struct fm_nm table;
static bool loaded;
static char failure[256]; /* what the dynamic loader said */

static void
note_failure(void)
{
	const char *why = dlerror();
	fm_strlcpy(failure, why != NULL ? why : "unknown error",
	           sizeof(failure));
}

/*
 * RTLD_NOW resolves the library's own symbols at once, so a broken
 * installation fails here rather than in the middle of a search;
 * RTLD_LOCAL keeps Xapian's and GLib's symbols out of the global scope.
 * The library is never unloaded: its C++ and GLib parts do not expect it,
 * and a failed load leaves nothing half-resolved in the table behind.
 */
static void
load(void)
{
	void *lib = dlopen(NOTMUCH_SONAME, RTLD_NOW | RTLD_LOCAL);
	if (lib == NULL) {
		note_failure();
		return;
	}
	struct fm_nm t;
	(void)dlerror();
#define FM_NM_RESOLVE(name)                                                    \
	t.name = (__typeof__(t.name))dlsym(lib, "notmuch_" #name);             \
	if (t.name == NULL) {                                                  \
		note_failure();                                                \
		return;                                                        \
	}
	FM_NM_FUNCTIONS(FM_NM_RESOLVE)
#undef FM_NM_RESOLVE
	table = t;
	loaded = true;
}

const struct fm_nm *
fm_nm_load(struct fm_error *err)
{
	pthread_once(&load_once, load);
	if (loaded)
		return &table;
	fm_error_set(err, FM_ERR_LOCAL,
	             _("The search index needs %s (apt-get install %s): %s."),
	             NOTMUCH_PACKAGE, NOTMUCH_PACKAGE, failure);
	fm_error_detail(err, "loading %s failed", NOTMUCH_SONAME);
	return NULL;
}
