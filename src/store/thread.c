/* SPDX-License-Identifier: GPL-3.0-or-later */
/* Conversation threading, a simplification of the JWZ algorithm that mail
 * readers use: parents come from References (last present id first) and
 * In-Reply-To; no subject grouping (it joins unrelated "Re: hi"s). Linear
 * in the number of messages and references, iterative (a 10,000-deep chain
 * must not exhaust the stack). */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "store/thread.h"

#define NONE SIZE_MAX

/* Message-ID -> first message with it; open addressing. */
struct idmap {
	size_t *slots; /* message index + 1; 0 empty */
	size_t mask;
	const struct fm_thread_msg *msgs;
};

static uint64_t
hash_id(const char *s, size_t len)
{
	return fm_hash_mem(s, len);
}

static bool
id_eq(const char *id, const char *s, size_t len)
{
	return strncmp(id, s, len) == 0 && id[len] == '\0';
}

static size_t
idmap_find(const struct idmap *m, const char *s, size_t len)
{
	if (len == 0)
		return NONE;
	for (size_t i = hash_id(s, len) & m->mask;; i = (i + 1) & m->mask) {
		size_t v = m->slots[i];
		if (v == 0)
			return NONE;
		if (id_eq(m->msgs[v - 1].message_id, s, len))
			return v - 1;
	}
}

static void
idmap_init(struct idmap *m, const struct fm_thread_msg *msgs, size_t n)
{
	size_t cap = 16;
	while (cap < 2 * n)
		cap *= 2;
	m->slots = xcalloc(cap, sizeof(*m->slots));
	m->mask = cap - 1;
	m->msgs = msgs;
	for (size_t k = 0; k < n; k++) {
		const char *id = msgs[k].message_id;
		if (id == NULL || id[0] == '\0')
			continue;
		size_t len = strlen(id);
		size_t i = hash_id(id, len) & m->mask;
		bool dup = false;
		for (; m->slots[i] != 0; i = (i + 1) & m->mask) {
			if (strcmp(msgs[m->slots[i] - 1].message_id, id) == 0) {
				dup = true; /* the first one keeps the id */
				break;
			}
		}
		if (!dup)
			m->slots[i] = k + 1;
	}
}

/* The last id in text (ids separated by spaces or commas) that some other
 * message has, or NONE: the last reference is the direct parent. */
static size_t
last_present(const struct idmap *m, const char *text, size_t self)
{
	if (text == NULL)
		return NONE;
	/* Walk ids from the end: the last reference is the direct parent. */
	const char *end = text + strlen(text);
	while (end > text) {
		while (end > text &&
		       (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\n' ||
		        end[-1] == '\r' || end[-1] == ','))
			end--;
		const char *start = end;
		while (start > text && start[-1] != ' ' && start[-1] != '\t' &&
		       start[-1] != '\n' && start[-1] != '\r' &&
		       start[-1] != ',')
			start--;
		if (start == end)
			break;
		size_t k = idmap_find(m, start, (size_t)(end - start));
		if (k != NONE && k != self)
			return k;
		end = start;
	}
	return NONE;
}

/* Hostile or broken headers can make parent pointers loop; a walk that
 * colours the path it is on finds each loop once and cuts it, making the
 * message where it closes a conversation start. Linear. */
static void
break_loops(size_t *parent, size_t n)
{
	unsigned char *colour = xcalloc(n, 1); /* 0 new, 1 on path, 2 done */
	size_t *path = xmalloc(n * sizeof(*path));
	for (size_t k = 0; k < n; k++) {
		size_t len = 0, x = k;
		while (x != NONE && colour[x] == 0) {
			colour[x] = 1;
			path[len++] = x;
			x = parent[x];
		}
		if (x != NONE && colour[x] == 1)
			parent[x] = NONE;
		for (size_t i = 0; i < len; i++)
			colour[path[i]] = 2;
	}
	free(path);
	free(colour);
}

/* qsort_r comparators over message indexes. */
static int
cmp_date_asc(const void *a, const void *b, void *ctx)
{
	const struct fm_thread_msg *msgs = ctx;
	size_t x = *(const size_t *)a, y = *(const size_t *)b;
	int64_t dx = msgs[x].date, dy = msgs[y].date;
	if (dx != dy)
		return dx < dy ? -1 : 1;
	return x < y ? -1 : x > y;
}

static int
cmp_newest_desc(const void *a, const void *b, void *ctx)
{
	const int64_t *newest = ctx;
	size_t x = *(const size_t *)a, y = *(const size_t *)b;
	int64_t dx = newest[x], dy = newest[y];
	if (dx != dy)
		return dx > dy ? -1 : 1;
	return x < y ? -1 : x > y;
}

void
fm_thread_build(const struct fm_thread_msg *msgs, size_t n,
                struct fm_thread_row **rows_r)
{
	struct fm_thread_row *rows = xcalloc(n ? n : 1, sizeof(*rows));
	*rows_r = rows;
	if (n == 0)
		return;
	struct idmap m;
	idmap_init(&m, msgs, n);
	size_t *parent = xmalloc(n * sizeof(*parent));
	for (size_t k = 0; k < n; k++)
		parent[k] = NONE;
	for (size_t k = 0; k < n; k++) {
		size_t p = last_present(&m, msgs[k].references, k);
		if (p == NONE)
			p = last_present(&m, msgs[k].in_reply_to, k);
		parent[k] = p;
	}
	break_loops(parent, n);

	/* Children lists as index ranges: count, prefix sums, fill. */
	size_t *first = xcalloc(n + 1, sizeof(*first));
	for (size_t k = 0; k < n; k++)
		if (parent[k] != NONE)
			first[parent[k] + 1]++;
	for (size_t k = 0; k < n; k++)
		first[k + 1] += first[k];
	size_t *children = xmalloc(n * sizeof(*children));
	size_t *fill = xmalloc(n * sizeof(*fill));
	memcpy(fill, first, n * sizeof(*fill));
	size_t *roots = xmalloc(n * sizeof(*roots));
	size_t n_roots = 0;
	for (size_t k = 0; k < n; k++) {
		if (parent[k] == NONE)
			roots[n_roots++] = k;
		else
			children[fill[parent[k]]++] = k;
	}
	for (size_t k = 0; k < n; k++)
		if (first[k + 1] > first[k] + 1)
			qsort_r(children + first[k], first[k + 1] - first[k],
			        sizeof(*children), cmp_date_asc, (void *)msgs);

	/* Each root's newest date: children come after parents in a
	 * depth-first walk, so walk each tree once. */
	int64_t *newest = xmalloc(n * sizeof(*newest));
	size_t *stack = xmalloc(n * sizeof(*stack));
	unsigned *depth = xmalloc(n * sizeof(*depth));
	for (size_t r = 0; r < n_roots; r++) {
		int64_t best = msgs[roots[r]].date;
		size_t sp = 0;
		stack[sp++] = roots[r];
		while (sp > 0) {
			size_t k = stack[--sp];
			if (msgs[k].date > best)
				best = msgs[k].date;
			for (size_t c = first[k]; c < first[k + 1]; c++)
				stack[sp++] = children[c];
		}
		newest[roots[r]] = best;
	}
	qsort_r(roots, n_roots, sizeof(*roots), cmp_newest_desc, newest);

	/* Emit depth-first, children oldest first (pushed in reverse). */
	size_t out = 0;
	for (size_t r = 0; r < n_roots; r++) {
		size_t sp = 0;
		stack[sp] = roots[r];
		depth[sp++] = 0;
		while (sp > 0) {
			sp--;
			size_t k = stack[sp];
			unsigned d = depth[sp];
			rows[out].msg = k;
			rows[out].depth = d;
			rows[out].thread = r;
			out++;
			for (size_t c = first[k + 1]; c > first[k]; c--) {
				stack[sp] = children[c - 1];
				depth[sp++] = d + 1;
			}
		}
	}
	free(newest);
	free(stack);
	free(depth);
	free(roots);
	free(fill);
	free(children);
	free(first);
	free(parent);
	free(m.slots);
}
