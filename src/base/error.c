/* SPDX-License-Identifier: GPL-3.0-or-later */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "base/base.h"

void
fm_error_clear(struct fm_error *err)
{
	if (err == NULL)
		return;
	err->cls = FM_ERR_NONE;
	err->user[0] = '\0';
	err->detail[0] = '\0';
}

int
fm_error_set(struct fm_error *err, enum fm_error_class cls, const char *fmt,
             ...)
{
	if (err == NULL)
		return -1;
	va_list ap;
	va_start(ap, fmt);
	err->cls = cls;
	vsnprintf(err->user, sizeof(err->user), fmt, ap);
	va_end(ap);
	err->detail[0] = '\0';
	return -1;
}

int
fm_error_detail(struct fm_error *err, const char *fmt, ...)
{
	if (err == NULL)
		return -1;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err->detail, sizeof(err->detail), fmt, ap);
	va_end(ap);
	return -1;
}

int
fm_error_errno(struct fm_error *err, enum fm_error_class cls, int errnum,
               const char *fmt, ...)
{
	if (err == NULL)
		return -1;
	char msg[FM_ERROR_USER_MAX];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return fm_error_set(err, cls, "%s: %s", msg, strerror(errnum));
}

static const struct {
	const char *name;
	int exit_status;
} classes[] = {
    [FM_ERR_NONE] = {"none", 0},
    [FM_ERR_TEMPORARY] = {"temporary", 75},     /* EX_TEMPFAIL */
    [FM_ERR_CREDENTIALS] = {"credentials", 77}, /* EX_NOPERM */
    [FM_ERR_TLS] = {"tls", 79},                 /* fulmar's own */
    [FM_ERR_CONFIG] = {"config", 78},           /* EX_CONFIG */
    [FM_ERR_PROTOCOL] = {"protocol", 76},       /* EX_PROTOCOL */
    [FM_ERR_PERMANENT] = {"permanent", 69},     /* EX_UNAVAILABLE */
    [FM_ERR_LOCAL] = {"local", 74},             /* EX_IOERR */
    [FM_ERR_CANCELLED] = {"cancelled", 130},    /* as if interrupted */
    [FM_ERR_USAGE] = {"usage", 64},             /* EX_USAGE */
};

const char *
fm_error_class_name(enum fm_error_class cls)
{
	if ((size_t)cls >= FM_ARRAY_LEN(classes))
		return "unknown";
	return classes[cls].name;
}

int
fm_error_exit_status(enum fm_error_class cls)
{
	if ((size_t)cls >= FM_ARRAY_LEN(classes))
		return 1;
	return classes[cls].exit_status;
}
