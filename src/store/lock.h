/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * The per-account lock: one process at a time writes an account's maildirs,
 * state and journal. A lock file holds the owner's PID so a second fulmar
 * can say who holds it; the lock itself is an flock(2), so it vanishes with
 * its process, even after kill -9, and a stale PID file never blocks
 * anybody.
 */
#ifndef FULMAR_STORE_LOCK_H
#define FULMAR_STORE_LOCK_H

#include <stdbool.h>
#include <sys/types.h>

#include "base/base.h"

struct fm_lock;

/* Takes the lock at path (created, mode 0600, parent must exist). With
 * wait, blocks until the holder lets go, calling on_wait(ctx, pid) once
 * first so the caller can say "waiting for fulmar (pid N)"; without wait,
 * fails at once with FM_ERR_TEMPORARY naming the holder's PID. *lock_r is
 * the held lock. Any thread; the lock belongs to the process. */
int fm_lock_take(const char *path, bool wait,
                 void (*on_wait)(void *ctx, pid_t holder), void *ctx,
                 struct fm_lock **lock_r, struct fm_error *err);
/* Lets go (the file stays; its PID is cleared). NULL-safe; sets *lock to
 * NULL. */
void fm_lock_release(struct fm_lock **lock);
/* The PID recorded in the lock file at path if a live process holds the
 * lock, else 0. For "who is writing this account?". */
pid_t fm_lock_holder(const char *path);

#endif
