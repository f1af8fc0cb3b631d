/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * nmlib — libnotmuch, loaded the first time the search index is used.
 *
 * Linking libnotmuch would load some twenty more libraries (Xapian,
 * libstdc++, GLib, GMime, GPGME, ...) at every start of fulmar, about 4 ms,
 * although most runs never open the index. So src/fulmar is not linked
 * with it: fm_nm_load() dlopen()s it (by the SONAME configure found,
 * NOTMUCH_SONAME) and resolves the functions fulmar calls into one table.
 * index.c is the only user, and calls notmuch through that table alone;
 * notmuch.h stays the source of every type and constant.
 *
 * Internal to the store module.
 */
#ifndef FULMAR_STORE_NMLIB_H
#define FULMAR_STORE_NMLIB_H

#include <notmuch.h>

#include "base/base.h"

/* Every libnotmuch function fulmar calls, without the "notmuch_" prefix.
 * Add a function here before calling it through struct fm_nm. */
#define FM_NM_FUNCTIONS(X)                                                     \
	X(config_get)                                                          \
	X(config_set)                                                          \
	X(database_begin_atomic)                                               \
	X(database_create_with_config)                                         \
	X(database_destroy)                                                    \
	X(database_end_atomic)                                                 \
	X(database_find_message)                                               \
	X(database_find_message_by_filename)                                   \
	X(database_get_revision)                                               \
	X(database_index_file)                                                 \
	X(database_open_with_config)                                           \
	X(database_remove_message)                                             \
	X(database_reopen)                                                     \
	X(database_status_string)                                              \
	X(filenames_destroy)                                                   \
	X(filenames_get)                                                       \
	X(filenames_move_to_next)                                              \
	X(filenames_valid)                                                     \
	X(message_add_tag)                                                     \
	X(message_count_files)                                                 \
	X(message_destroy)                                                     \
	X(message_freeze)                                                      \
	X(message_get_date)                                                    \
	X(message_get_filename)                                                \
	X(message_get_filenames)                                               \
	X(message_get_header)                                                  \
	X(message_get_message_id)                                              \
	X(message_get_tags)                                                    \
	X(message_get_thread_id)                                               \
	X(message_maildir_flags_to_tags)                                       \
	X(message_remove_tag)                                                  \
	X(message_thaw)                                                        \
	X(messages_destroy)                                                    \
	X(messages_get)                                                        \
	X(messages_move_to_next)                                               \
	X(messages_valid)                                                      \
	X(query_add_tag_exclude)                                               \
	X(query_count_messages)                                                \
	X(query_create)                                                        \
	X(query_destroy)                                                       \
	X(query_search_messages)                                               \
	X(query_search_threads)                                                \
	X(query_set_omit_excluded)                                             \
	X(query_set_sort)                                                      \
	X(status_to_string)                                                    \
	X(tags_destroy)                                                        \
	X(tags_get)                                                            \
	X(tags_move_to_next)                                                   \
	X(tags_valid)                                                          \
	X(thread_destroy)                                                      \
	X(thread_get_authors)                                                  \
	X(thread_get_matched_messages)                                         \
	X(thread_get_newest_date)                                              \
	X(thread_get_oldest_date)                                              \
	X(thread_get_subject)                                                  \
	X(thread_get_tags)                                                     \
	X(thread_get_thread_id)                                                \
	X(thread_get_total_messages)                                           \
	X(threads_destroy)                                                     \
	X(threads_get)                                                         \
	X(threads_move_to_next)                                                \
	X(threads_valid)

/* The table: nm->database_destroy is notmuch_database_destroy, with the
 * prototype notmuch.h gives it. */
struct fm_nm {
#define FM_NM_POINTER(name) __typeof__(notmuch_##name) *name;
	FM_NM_FUNCTIONS(FM_NM_POINTER)
#undef FM_NM_POINTER
};

/* Loads libnotmuch and resolves every function of the table, once per
 * process (pthread_once); every later call returns the same table or the
 * same failure. The library stays loaded until the process ends. Any
 * thread.
 *
 * Returns the table, which is never written again, or NULL with err set:
 * FM_ERR_LOCAL, naming the package to install and what the dynamic loader
 * said (the library is missing, or lacks one of the functions). */
const struct fm_nm *fm_nm_load(struct fm_error *err);

#endif
