/* SPDX-License-Identifier: GPL-3.0-or-later */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "store/maildir.h"
#include "sync/plan.h"

/* ------------------------------------------------------------------------
 * A small world: the three views of one folder, built by the tests.
 */

#define WMAX 256

struct world {
	uint32_t state_uv, uv, uidnext;
	struct fm_state_entry st[WMAX];
	size_t nst;
	struct fm_plan_local loc[WMAX];
	size_t nloc;
	struct fm_plan_remote rem[WMAX];
	size_t nrem;
	const char *away[8], *in[8];
	size_t naway, nin;
	uint32_t local_only;
	bool force;
	size_t unchanged; /* n_unchanged */
	char names[3 * WMAX][32];
	size_t nnames;
	struct fm_plan *plan;
};

static struct world *
world_new(void)
{
	struct world *w = xcalloc(1, sizeof(*w));
	w->state_uv = w->uv = 7;
	return w;
}

static void
world_free(struct world *w)
{
	fm_plan_free(&w->plan);
	free(w);
}

static const char *
name(struct world *w, const char *prefix, unsigned n)
{
	assert_true(w->nnames < FM_ARRAY_LEN(w->names));
	char *s = w->names[w->nnames++];
	snprintf(s, sizeof(w->names[0]), "%s%u", prefix, n);
	return s;
}

/* Flags from letters: DFPRST and the keyword letters a..z. */
static uint32_t
fl(const char *s)
{
	static const char std[] = "DFPRST";
	uint32_t f = 0;
	for (; s != NULL && *s != '\0'; s++) {
		const char *p = strchr(std, *s);
		if (p != NULL)
			f |= 1u << (p - std);
		else if (*s >= 'a' && *s <= 'z')
			f |= FM_MAILDIR_KEYWORD(*s);
		else
			fail_msg("bad flag letter %c", *s);
	}
	return f;
}

static void
put_flags(struct fm_buf *b, uint32_t f)
{
	static const char std[] = "DFPRST";
	if (f == 0)
		fm_buf_append_char(b, '-');
	for (int i = 0; i < 6; i++)
		if (f & (1u << i))
			fm_buf_append_char(b, std[i]);
	for (char c = 'a'; c <= 'z'; c++)
		if (f & FM_MAILDIR_KEYWORD(c))
			fm_buf_append_char(b, c);
}

static struct fm_state_entry *
st(struct world *w, uint32_t uid, const char *base, const char *flags,
   const char *kw)
{
	assert_true(w->nst < WMAX);
	struct fm_state_entry *e = &w->st[w->nst++];
	*e = (struct fm_state_entry){
	    .uid = uid, .base = base, .flags = fl(flags), .keywords = kw};
	return e;
}

static struct fm_plan_local *
loc(struct world *w, const char *base, const char *flags, const char *kw)
{
	assert_true(w->nloc < WMAX);
	struct fm_plan_local *l = &w->loc[w->nloc++];
	*l = (struct fm_plan_local){
	    .base = base, .flags = fl(flags), .keywords = kw};
	return l;
}

static struct fm_plan_remote *
rem(struct world *w, uint32_t uid, const char *flags, const char *kw)
{
	assert_true(w->nrem < WMAX);
	struct fm_plan_remote *r = &w->rem[w->nrem++];
	*r = (struct fm_plan_remote){
	    .uid = uid, .flags = fl(flags), .keywords = kw};
	return r;
}

static void
input_of(const struct world *w, struct fm_plan_input *in)
{
	*in = (struct fm_plan_input){
	    .state_uidvalidity = w->state_uv,
	    .synced = w->st,
	    .n_synced = w->nst,
	    .uidvalidity = w->uv,
	    .uidnext = w->uidnext,
	    .remote = w->rem,
	    .n_remote = w->nrem,
	    .local = w->loc,
	    .n_local = w->nloc,
	    .moved_away = w->away,
	    .n_moved_away = w->naway,
	    .moved_in = w->in,
	    .n_moved_in = w->nin,
	    .local_only_flags = w->local_only,
	    .force = w->force,
	    .n_unchanged = w->unchanged,
	};
}

/* The plan as one line: actions joined by "; ". */
static char *
describe(const struct fm_plan *plan)
{
	struct fm_buf b;
	fm_buf_init(&b, 1 << 24);
	for (size_t i = 0; i < fm_plan_count(plan); i++) {
		const struct fm_plan_action *a = fm_plan_action_at(plan, i);
		const char *op = fm_plan_op_name(a->op);
		if (a->op == FM_PLAN_LINK)
			op = a->link == FM_PLAN_LINK_TAG     ? "link-tag"
			     : a->link == FM_PLAN_LINK_MSGID ? "link-msgid"
			                                     : "link-?";
		else
			assert_int_equal(a->link, FM_PLAN_LINK_NONE);
		if (i > 0)
			fm_buf_append_str(&b, "; ");
		fm_buf_printf(&b, "%s ", op);
		if (a->uid != 0)
			fm_buf_printf(&b, "%lu ", (unsigned long)a->uid);
		else
			fm_buf_append_str(&b, "- ");
		fm_buf_printf(&b, "%s ", a->base != NULL ? a->base : "-");
		put_flags(&b, a->flags);
		if (a->op == FM_PLAN_FLAGS || a->op == FM_PLAN_LINK) {
			fm_buf_append_str(&b, " local=");
			put_flags(&b, a->local_flags);
			fm_buf_append_str(&b, " set=");
			put_flags(&b, a->remote_add);
			fm_buf_append_str(&b, " clr=");
			put_flags(&b, a->remote_del);
		} else if (a->op == FM_PLAN_UPLOAD) {
			fm_buf_append_str(&b, " set=");
			put_flags(&b, a->remote_add);
		} else {
			assert_int_equal(a->remote_add | a->remote_del, 0);
		}
		const char *kws[] = {a->keywords, a->kw_remote_add,
		                     a->kw_remote_del, a->kw_local_add,
		                     a->kw_local_del};
		const char *tags[] = {"kw", "kw+r", "kw-r", "kw+l", "kw-l"};
		for (size_t k = 0; k < FM_ARRAY_LEN(kws); k++)
			if (kws[k] != NULL)
				fm_buf_printf(&b, " %s=[%s]", tags[k], kws[k]);
		if (a->lost_change)
			fm_buf_append_str(&b, " lost");
	}
	return fm_buf_steal(&b);
}

static const struct fm_plan_summary *
make(struct world *w)
{
	struct fm_plan_input in;
	struct fm_error err;
	input_of(w, &in);
	fm_plan_free(&w->plan);
	if (fm_plan_make(&in, &w->plan, &err) != 0)
		fail_msg("fm_plan_make: %s", err.user);
	assert_non_null(w->plan);
	return fm_plan_summary(w->plan);
}

static void
expect_plan(struct world *w, const char *want)
{
	make(w);
	char *got = describe(w->plan);
	if (strcmp(got, want) != 0)
		print_error("want: %s\n got: %s\n", want, got);
	assert_string_equal(got, want);
	free(got);
}

/* ------------------------------------------------------------------------
 * Every combination for one flag (\Seen): in the state or not, present
 * locally or not, on the server or not, and each side's value.
 */

struct row {
	const char *b; /* state flags, or NULL: not in the state */
	const char *l; /* local flags, or NULL: no local copy */
	const char *r; /* remote flags, or NULL: not on the server */
	const char *want;
};

static const struct row matrix[] = {
    /* In the state, gone on both sides. */
    {"", NULL, NULL, "forget 1 b1 -"},
    {"S", NULL, NULL, "forget 1 b1 -"},
    /* In the state, deleted locally: expunged on the server. */
    {"", NULL, "", "expunge-remote 1 b1 -"},
    {"", NULL, "S", "expunge-remote 1 b1 S lost"},
    {"S", NULL, "S", "expunge-remote 1 b1 S"},
    {"S", NULL, "", "expunge-remote 1 b1 - lost"},
    /* In the state, expunged on the server: removed locally. */
    {"", "", NULL, "expunge-local 1 b1 -"},
    {"", "S", NULL, "expunge-local 1 b1 S lost"},
    {"S", "S", NULL, "expunge-local 1 b1 S"},
    {"S", "", NULL, "expunge-local 1 b1 - lost"},
    /* In the state, on both sides: three-way. */
    {"", "", "", ""},
    {"", "S", "", "flags 1 b1 S local=S set=S clr=-"},
    {"", "", "S", "flags 1 b1 S local=- set=- clr=-"},
    /* Both sides made the same change: only the state catches up. */
    {"", "S", "S", "flags 1 b1 S local=S set=- clr=-"},
    {"S", "S", "S", ""},
    {"S", "", "S", "flags 1 b1 - local=- set=- clr=S"},
    {"S", "S", "", "flags 1 b1 - local=S set=- clr=-"},
    {"S", "", "", "flags 1 b1 - local=- set=- clr=-"},
    /* Not in the state, no Message-ID to pair by. */
    {NULL, NULL, NULL, ""},
    {NULL, "", NULL, "upload - b1 - set=-"},
    {NULL, "S", NULL, "upload - b1 S set=S"},
    {NULL, NULL, "", "download 1 - -"},
    {NULL, NULL, "S", "download 1 - S"},
    {NULL, "", "", "download 1 - -; upload - b1 - set=-"},
    {NULL, "S", "", "download 1 - -; upload - b1 S set=S"},
    {NULL, "", "S", "download 1 - S; upload - b1 - set=-"},
    {NULL, "S", "S", "download 1 - S; upload - b1 S set=S"},
};

static void
test_matrix(void **unused)
{
	for (size_t i = 0; i < FM_ARRAY_LEN(matrix); i++) {
		const struct row *row = &matrix[i];
		struct world *w = world_new();
		if (row->b != NULL)
			st(w, 1, "b1", row->b, NULL);
		if (row->l != NULL)
			loc(w, "b1", row->l, NULL);
		if (row->r != NULL)
			rem(w, 1, row->r, NULL);
		print_message("# matrix row %zu\n", i);
		expect_plan(w, row->want);
		world_free(w);
	}
}

/* The three-way rule for every one of the 32 bits, written out. */
static void
test_three_way_every_bit(void **unused)
{
	static const struct {
		int b, l, r, t;
	} rule[] = {
	    {0, 0, 0, 0}, {0, 1, 0, 1}, {0, 0, 1, 1}, {0, 1, 1, 1},
	    {1, 1, 1, 1}, {1, 0, 1, 0}, {1, 1, 0, 0}, {1, 0, 0, 0},
	};
	for (unsigned bit = 0; bit < 32; bit++) {
		uint32_t x = 1u << bit;
		/* Another flag, unchanged everywhere, must stay as it is. */
		uint32_t bg =
		    x == FM_MAILDIR_SEEN ? FM_MAILDIR_FLAGGED : FM_MAILDIR_SEEN;
		for (size_t i = 0; i < FM_ARRAY_LEN(rule); i++) {
			uint32_t t = rule[i].t ? x : 0, l = rule[i].l ? x : 0;
			uint32_t r = rule[i].r ? x : 0;
			struct world *w = world_new();
			st(w, 1, "b1", "", NULL)->flags =
			    bg | (rule[i].b ? x : 0);
			loc(w, "b1", "", NULL)->flags = bg | l;
			rem(w, 1, "", NULL)->flags = bg | r;
			make(w);
			uint32_t b = rule[i].b ? x : 0;
			if (t == l && t == r && t == b) {
				assert_int_equal(fm_plan_count(w->plan), 0);
			} else {
				assert_int_equal(fm_plan_count(w->plan), 1);
				const struct fm_plan_action *a =
				    fm_plan_action_at(w->plan, 0);
				assert_int_equal(a->op, FM_PLAN_FLAGS);
				assert_int_equal(a->flags, bg | t);
				assert_int_equal(a->local_flags, bg | l);
				assert_int_equal(a->remote_add, t & ~r);
				assert_int_equal(a->remote_del, r & ~t);
			}
			world_free(w);
		}
	}
}

/* Without a state entry: set beats clear, except \Deleted (T). */
static void
test_no_base_every_bit(void **unused)
{
	for (unsigned bit = 0; bit < 32; bit++) {
		uint32_t x = 1u << bit;
		bool trash = x == FM_MAILDIR_TRASHED;
		for (int l = 0; l < 2; l++) {
			for (int r = 0; r < 2; r++) {
				struct world *w = world_new();
				struct fm_plan_local *lo =
				    loc(w, "b1", "", NULL);
				struct fm_plan_remote *re = rem(w, 9, "", NULL);
				lo->flags = l ? x : 0;
				re->flags = r ? x : 0;
				lo->msgid = re->msgid = "<m@x>";
				lo->size = re->size = 100;
				make(w);
				assert_int_equal(fm_plan_count(w->plan), 1);
				const struct fm_plan_action *a =
				    fm_plan_action_at(w->plan, 0);
				assert_int_equal(a->op, FM_PLAN_LINK);
				assert_int_equal(a->link, FM_PLAN_LINK_MSGID);
				int t = trash ? (l && r) : (l || r);
				assert_int_equal(a->flags, t ? x : 0);
				assert_int_equal(a->remote_add,
				                 t && !r ? x : 0);
				assert_int_equal(a->remote_del,
				                 !t && r ? x : 0);
				world_free(w);
			}
		}
	}
}

/* Different flags changed on different sides: one action does both. */
static void
test_both_sides_different_flags(void **unused)
{
	struct world *w = world_new();
	st(w, 1, "b1", "R", NULL);
	loc(w, "b1", "RS", NULL); /* local: set S */
	rem(w, 1, "F", NULL);     /* remote: set F, clear R */
	st(w, 2, "b2", "ST", NULL);
	loc(w, "b2", "S", NULL); /* local: \Deleted cleared explicitly */
	rem(w, 2, "FST", NULL);  /* remote: set F */
	expect_plan(w, "flags 1 b1 FS local=RS set=S clr=-; "
	               "flags 2 b2 FS local=S set=- clr=T");
	world_free(w);

	/* An explicit local \Deleted travels like any flag. */
	w = world_new();
	st(w, 3, "b3", "S", NULL);
	loc(w, "b3", "ST", NULL);
	rem(w, 3, "S", NULL);
	expect_plan(w, "flags 3 b3 ST local=ST set=T clr=-");
	world_free(w);
}

/* A pass killed between a STORE and the save of its state leaves the state
 * behind two sides that agree: only the state changes, so that a listing
 * that takes the state for the server (CONDSTORE) does not read the stale
 * entry as a change made here. */
static void
test_state_catches_up(void **unused)
{
	struct world *w = world_new();
	st(w, 1, "b1", "S", NULL);
	loc(w, "b1", "RS", NULL);
	rem(w, 1, "RS", NULL);
	st(w, 2, "b2", "F", "a");
	loc(w, "b2", "F", "a b");
	rem(w, 2, "F", "B A");
	st(w, 3, "b3", "R", NULL); /* all three agree: nothing */
	loc(w, "b3", "R", NULL);
	rem(w, 3, "R", NULL);
	expect_plan(w, "flags 1 b1 RS local=RS set=- clr=-; "
	               "flags 2 b2 F local=F set=- clr=- kw=[A B]");
	assert_int_equal(fm_plan_summary(w->plan)->flag_changes, 2);
	world_free(w);
}

static void
test_keywords(void **unused)
{
	/* Three-way per keyword; the server's spelling wins. */
	struct world *w = world_new();
	st(w, 1, "b1", "", "old work");
	loc(w, "b1", "", "old work $Junk");
	rem(w, 1, "", "WORK");
	expect_plan(w, "flags 1 b1 - local=- set=- clr=- kw=[$Junk WORK] "
	               "kw+r=[$Junk] kw-l=[old]");
	world_free(w);

	/* Same sets in other spellings, orders or spacing: nothing. */
	w = world_new();
	st(w, 1, "b1", "S", "Work a");
	loc(w, "b1", "S", "a  work");
	rem(w, 1, "S", "WORK a a");
	st(w, 2, "b2", "", NULL);
	loc(w, "b2", "", "x");
	rem(w, 2, "", "X"); /* both added it: only the state changes */
	expect_plan(w, "flags 2 b2 - local=- set=- clr=- kw=[X]");
	world_free(w);

	/* A flag change carries the keywords to record. */
	w = world_new();
	st(w, 1, "b1", "", "b a");
	loc(w, "b1", "S", "b a");
	rem(w, 1, "", "a b");
	expect_plan(w, "flags 1 b1 S local=S set=S clr=- kw=[a b]");
	world_free(w);

	/* Without a base the union wins; downloads and uploads carry their
	 * own, normalised. */
	w = world_new();
	struct fm_plan_local *l = loc(w, "b1", "", "c a");
	struct fm_plan_remote *r = rem(w, 5, "", "b");
	l->msgid = r->msgid = "<k@x>";
	l->size = r->size = 9;
	rem(w, 6, "", "z y y");
	loc(w, "b2", "", "q");
	expect_plan(w, "link-msgid 5 b1 - local=- set=- clr=- kw=[a b c] "
	               "kw+r=[a c] kw+l=[b]; "
	               "download 6 - - kw=[y z]; upload - b2 - set=- kw=[q]");
	world_free(w);

	/* A keyword change counts as a change the deletion drops. */
	w = world_new();
	st(w, 1, "b1", "", "a");
	loc(w, "b1", "", "a b");
	st(w, 2, "b2", "", "a");
	rem(w, 2, "", NULL);
	st(w, 3, "b3", "", "a");
	loc(w, "b3", "", "A");
	expect_plan(w, "expunge-local 1 b1 - lost; expunge-local 3 b3 -; "
	               "expunge-remote 2 b2 - lost");
	world_free(w);
}

/* Flags the server cannot keep stay local: never pushed, never pulled. */
static void
test_local_only_flags(void **unused)
{
	struct world *w = world_new();
	w->local_only = fl("a");
	st(w, 1, "b1", "S", NULL);
	loc(w, "b1", "Sa", NULL); /* set locally: stays local */
	rem(w, 1, "S", NULL);
	st(w, 2, "b2", "Sa", NULL);
	loc(w, "b2", "Sa", NULL);
	rem(w, 2, "", NULL); /* the server never had it: only S was cleared */
	st(w, 3, "b3", "", NULL);
	loc(w, "b3", "", NULL);
	rem(w, 3, "a", NULL); /* a server value for it is noise */
	loc(w, "b4", "Fa", NULL);
	rem(w, 5, "Sa", NULL);
	expect_plan(w, "flags 2 b2 a local=Sa set=- clr=-; download 5 - S; "
	               "upload - b4 Fa set=F");
	world_free(w);
}

/* A state entry without a local copy by design is only ever forgotten. */
static void
test_null_base(void **unused)
{
	struct world *w = world_new();
	st(w, 1, NULL, "S", NULL);
	rem(w, 1, "", NULL);
	st(w, 2, NULL, "S", NULL);
	expect_plan(w, "forget 2 - -");
	world_free(w);
}

static void
test_moves(void **unused)
{
	struct world *w = world_new();
	/* Moved away, not replayed yet: no delete, no download. */
	st(w, 1, "gone", "S", NULL);
	rem(w, 1, "S", NULL);
	w->away[w->naway++] = "gone";
	/* Moved away after the server lost it too: still the move's. */
	st(w, 2, "gone2", "", NULL);
	w->away[w->naway++] = "gone2";
	/* Moved away but still here (a crash mid-move): left alone. */
	loc(w, "gone3", "", NULL);
	w->away[w->naway++] = "gone3";
	w->away[w->naway++] = NULL;
	/* Moved in: never uploaded ... */
	loc(w, "came", "S", NULL);
	w->in[w->nin++] = "came";
	/* ... but paired with the server's copy of the move. */
	struct fm_plan_local *l = loc(w, "came2", "S", NULL);
	struct fm_plan_remote *r = rem(w, 40, "S", NULL);
	l->msgid = r->msgid = "<mv@x>";
	l->size = r->size = 77;
	w->in[w->nin++] = "came2";
	expect_plan(w, "link-msgid 40 came2 S local=S set=- clr=-");
	world_free(w);
}

static void
test_tags(void **unused)
{
	struct world *w = world_new();
	st(w, 1, "b1", "", NULL);
	loc(w, "b1", "", NULL);
	rem(w, 1, "", NULL);
	loc(w, "t2", "S", NULL)->uid_hint = 2; /* downloaded, not recorded */
	rem(w, 2, "F", NULL);
	loc(w, "t3", "", NULL)->uid_hint = 3; /* ... then expunged */
	loc(w, "t4", "", NULL)->uid_hint = 1; /* a UID the state has */
	loc(w, "t5", "", NULL)->uid_hint = 2; /* already taken by t2 */
	expect_plan(w, "expunge-local 3 t3 -; "
	               "link-tag 2 t2 FS local=S set=S clr=-; "
	               "upload - t4 - set=-; upload - t5 - set=-");
	world_free(w);

	/* Tags mean nothing across a UIDVALIDITY change or with no state. */
	for (int i = 0; i < 2; i++) {
		w = world_new();
		w->state_uv = i == 0 ? 3 : 0;
		loc(w, "t2", "", NULL)->uid_hint = 2;
		loc(w, "t3", "", NULL)->uid_hint = 3;
		rem(w, 2, "", NULL);
		expect_plan(w, "download 2 - -; upload - t2 - set=-; "
		               "upload - t3 - set=-");
		world_free(w);
	}
}

/* ------------------------------------------------------------------------
 * The mass-deletion guard.
 */

/* n messages in agreement; del_local of them deleted locally (EXPUNGE_
 * REMOTE), del_remote others expunged on the server (EXPUNGE_LOCAL). */
static struct world *
guard_world(unsigned n, unsigned del_local, unsigned del_remote, bool force)
{
	struct world *w = world_new();
	w->force = force;
	for (unsigned i = 1; i <= n; i++) {
		const char *b = name(w, "b", i);
		st(w, i, b, "S", NULL);
		if (i > del_local)
			loc(w, b, "S", NULL);
		if (i <= del_local || i > del_local + del_remote)
			rem(w, i, "S", NULL);
	}
	make(w);
	return w;
}

static void
test_guard(void **unused)
{
	static const struct {
		unsigned n, del_local, del_remote;
		bool force, confirm, forced;
	} rows[] = {
	    {100, 24, 0, false, false, false}, /* 24% passes */
	    {100, 25, 0, false, false, false}, /* 25% is not more than */
	    {100, 26, 0, false, true, false},  /* 26% asks */
	    {100, 26, 0, true, false, true},   /* --force */
	    {100, 0, 24, false, false, false}, /* the server's side */
	    {100, 0, 26, false, true, false},
	    {100, 0, 26, true, false, true},
	    {100, 20, 20, false, false, false}, /* 20 of 80 a side: 25% */
	    {8, 5, 0, false, false, false},     /* 62%, but only 5 */
	    {8, 6, 0, false, true, false},      /* 6 is past the minimum */
	    {8, 0, 5, false, false, false},
	    {5, 5, 0, false, false, false},    /* a whole small folder */
	    {200, 200, 0, false, true, false}, /* a wiped maildir */
	    {200, 0, 200, false, true, false}, /* an emptied mailbox */
	};
	for (size_t i = 0; i < FM_ARRAY_LEN(rows); i++) {
		struct world *w =
		    guard_world(rows[i].n, rows[i].del_local,
		                rows[i].del_remote, rows[i].force);
		const struct fm_plan_summary *s = fm_plan_summary(w->plan);
		print_message("# guard row %zu\n", i);
		assert_int_equal(s->remote_deletes, rows[i].del_local);
		assert_int_equal(s->local_deletes, rows[i].del_remote);
		assert_int_equal(s->local_total, rows[i].n - rows[i].del_local);
		assert_int_equal(s->remote_total,
		                 rows[i].n - rows[i].del_remote);
		assert_int_equal(s->needs_confirmation, rows[i].confirm);
		assert_int_equal(s->forced, rows[i].forced);
		assert_int_equal(fm_plan_count(w->plan),
		                 rows[i].del_local + rows[i].del_remote);
		world_free(w);
	}
}

/* A quick run leaves out the messages on which all three sides agree and
 * counts them in n_unchanged: the same plan, the same totals, the same
 * guard as with every message listed. */
static void
test_unchanged_left_out(void **unused)
{
	(void)unused;
	static const struct {
		unsigned n, del_remote;
		bool confirm;
	} rows[] = {
	    {100, 26, true},
	    {100, 24, false},
	    {8, 6, true},
	    {8, 5, false},
	};
	for (size_t i = 0; i < FM_ARRAY_LEN(rows); i++) {
		print_message("# unchanged row %zu\n", i);
		struct world *full =
		    guard_world(rows[i].n, 0, rows[i].del_remote, false);
		/* Only what the server expunged, and one flag change. */
		struct world *w = world_new();
		for (unsigned u = 1; u <= rows[i].del_remote; u++) {
			const char *b = name(w, "b", u);
			st(w, u, b, "S", NULL);
			loc(w, b, "S", NULL);
		}
		unsigned f = rows[i].del_remote + 1;
		const char *b = name(w, "b", f);
		st(w, f, b, "S", NULL);
		loc(w, b, "S", NULL);
		rem(w, f, "FS", NULL);
		w->unchanged = rows[i].n - rows[i].del_remote - 1;
		const struct fm_plan_summary *s = make(w);
		const struct fm_plan_summary *fs = fm_plan_summary(full->plan);
		assert_int_equal(s->local_total, fs->local_total);
		assert_int_equal(s->remote_total, fs->remote_total);
		assert_int_equal(s->local_deletes, rows[i].del_remote);
		assert_int_equal(s->needs_confirmation, rows[i].confirm);
		assert_int_equal(fs->needs_confirmation, rows[i].confirm);
		/* The one change the full world lacks. */
		assert_int_equal(s->flag_changes, 1);
		assert_int_equal(fs->flag_changes, 0);
		world_free(w);
		world_free(full);
	}
}

/* ------------------------------------------------------------------------
 * UIDVALIDITY changes.
 */

static void
test_uidvalidity_all_matched(void **unused)
{
	struct world *w = world_new();
	w->state_uv = 1;
	w->uv = 2;
	for (unsigned i = 1; i <= 100; i++) {
		const char *b = name(w, "b", i);
		const char *m = name(w, "<m", i);
		st(w, i, b, "S", NULL);
		struct fm_plan_local *l = loc(w, b, "S", NULL);
		struct fm_plan_remote *r = rem(w, 1000 + i, "S", NULL);
		l->msgid = r->msgid = m;
		l->size = r->size = 5000 + i;
		l->uid_hint = i; /* tags of the old UIDs: ignored */
	}
	const struct fm_plan_summary *s = make(w);
	assert_true(s->uidvalidity_reset);
	assert_int_equal(s->uidvalidity, 2);
	assert_int_equal(s->links, 100);
	assert_int_equal(s->downloads, 0);
	assert_int_equal(s->uploads, 0);
	assert_int_equal(s->local_deletes + s->remote_deletes + s->forgets, 0);
	for (size_t i = 0; i < fm_plan_count(w->plan); i++) {
		const struct fm_plan_action *a = fm_plan_action_at(w->plan, i);
		assert_int_equal(a->op, FM_PLAN_LINK);
		assert_int_equal(a->uid, 1001 + i);
	}
	world_free(w);
}

static void
test_uidvalidity_some_new(void **unused)
{
	struct world *w = world_new();
	w->state_uv = 1;
	w->uv = 2;
	const char *ids[] = {"<a>", "<b>", "<c>", "<d>", "<e>", "<f>", "<g>"};
	/* a, b: on both sides; b's differ (no base: union, T cleared). */
	st(w, 1, "la", "S", NULL);
	st(w, 2, "lb", "S", NULL);
	struct fm_plan_local *l = loc(w, "la", "S", NULL);
	l->msgid = ids[0], l->size = 10;
	l = loc(w, "lb", "ST", NULL);
	l->msgid = ids[1], l->size = 20;
	struct fm_plan_remote *r = rem(w, 501, "S", NULL);
	r->msgid = ids[0], r->size = 10;
	r = rem(w, 502, "F", NULL);
	r->msgid = ids[1], r->size = 20;
	/* c, d: new on the server. */
	r = rem(w, 503, "", NULL);
	r->msgid = ids[2], r->size = 30;
	r = rem(w, 504, "", NULL);
	r->msgid = ids[3], r->size = 40;
	/* e: in the old state, not on the server now: uploaded. */
	st(w, 3, "le", "F", NULL);
	l = loc(w, "le", "F", NULL);
	l->msgid = ids[4], l->size = 50;
	/* f: new locally: uploaded. */
	l = loc(w, "lf", "D", NULL);
	l->msgid = ids[5], l->size = 60;
	/* g: deleted here, still there: downloaded again (see plan.h). */
	st(w, 4, "lg", "", NULL);
	r = rem(w, 507, "", NULL);
	r->msgid = ids[6], r->size = 70;
	/* Without a Message-ID nothing pairs. */
	st(w, 5, "lh", "", NULL);
	loc(w, "lh", "", NULL)->size = 80;
	rem(w, 508, "", NULL)->size = 80;
	expect_plan(w, "link-msgid 501 la S local=S set=- clr=-; "
	               "link-msgid 502 lb FS local=ST set=S clr=-; "
	               "download 503 - -; download 504 - -; "
	               "download 507 - -; download 508 - -; "
	               "upload - le F set=F; upload - lf D set=D; "
	               "upload - lh - set=-");
	assert_true(fm_plan_summary(w->plan)->uidvalidity_reset);
	world_free(w);
}

static void
test_uidvalidity_duplicates(void **unused)
{
	struct world *w = world_new();
	w->state_uv = 1;
	w->uv = 2;
	/* X: two sizes on the server, one here: the equal size pairs. */
	struct fm_plan_remote *r = rem(w, 10, "", NULL);
	r->msgid = "<X>", r->size = 100;
	r = rem(w, 11, "", NULL);
	r->msgid = "<X>", r->size = 200;
	struct fm_plan_local *l = loc(w, "x200", "", NULL);
	l->msgid = "<X>", l->size = 200;
	/* Y: the same message twice on the server, once here: the lower UID
	 * pairs. */
	r = rem(w, 21, "", NULL);
	r->msgid = "<Y>", r->size = 5;
	r = rem(w, 20, "", NULL);
	r->msgid = "<Y>", r->size = 5;
	l = loc(w, "y", "", NULL);
	l->msgid = "<Y>", l->size = 5;
	/* Z: twice here, once there: the first base pairs. */
	l = loc(w, "z2", "", NULL);
	l->msgid = "<Z>", l->size = 7;
	l = loc(w, "z1", "", NULL);
	l->msgid = "<Z>", l->size = 7;
	r = rem(w, 30, "", NULL);
	r->msgid = "<Z>", r->size = 7;
	expect_plan(w, "link-msgid 11 x200 - local=- set=- clr=-; "
	               "link-msgid 20 y - local=- set=- clr=-; "
	               "link-msgid 30 z1 - local=- set=- clr=-; "
	               "download 10 - -; download 21 - -; "
	               "upload - z2 - set=-");
	world_free(w);
}

/* A lost state file: the same pairing, and no reset is reported. */
static void
test_empty_state(void **unused)
{
	struct world *w = world_new();
	w->state_uv = 0;
	struct fm_plan_local *l = loc(w, "b1", "S", NULL);
	struct fm_plan_remote *r = rem(w, 3, "", NULL);
	l->msgid = r->msgid = "<q>";
	l->size = r->size = 4;
	w->uidnext = 2;
	const struct fm_plan_summary *s = make(w);
	assert_false(s->uidvalidity_reset);
	assert_int_equal(s->uidnext, 4); /* past the highest UID seen */
	char *got = describe(w->plan);
	assert_string_equal(got, "link-msgid 3 b1 S local=S set=S clr=-");
	free(got);
	world_free(w);
}

/* ------------------------------------------------------------------------
 * Order, summary, refusals.
 */

static void
test_order_and_summary(void **unused)
{
	struct world *w = world_new();
	w->uidnext = 100;
	rem(w, 9, "", NULL);      /* download */
	loc(w, "n1", "", NULL);   /* upload */
	st(w, 8, "f8", "", NULL); /* flags */
	loc(w, "f8", "S", NULL);
	rem(w, 8, "", NULL);
	st(w, 7, "e7", "", NULL); /* expunge remote */
	rem(w, 7, "", NULL);
	st(w, 6, "e6", "", NULL); /* expunge local */
	loc(w, "e6", "", NULL);
	st(w, 5, "g5", "", NULL);             /* forget */
	loc(w, "t4", "", NULL)->uid_hint = 4; /* link */
	rem(w, 4, "", NULL);
	rem(w, 3, "", NULL); /* download, listed out of order */
	const struct fm_plan_summary *s = make(w);
	char *got = describe(w->plan);
	assert_string_equal(got, "forget 5 g5 -; expunge-local 6 e6 -; "
	                         "expunge-remote 7 e7 -; "
	                         "link-tag 4 t4 - local=- set=- clr=-; "
	                         "flags 8 f8 S local=S set=S clr=-; "
	                         "download 3 - -; download 9 - -; "
	                         "upload - n1 - set=-");
	free(got);
	assert_int_equal(s->forgets, 1);
	assert_int_equal(s->local_deletes, 1);
	assert_int_equal(s->remote_deletes, 1);
	assert_int_equal(s->links, 1);
	assert_int_equal(s->flag_changes, 1);
	assert_int_equal(s->downloads, 2);
	assert_int_equal(s->uploads, 1);
	assert_int_equal(s->local_total, 4);
	assert_int_equal(s->remote_total, 5);
	assert_int_equal(s->uidvalidity, 7);
	assert_int_equal(s->uidnext, 100);
	assert_false(s->needs_confirmation || s->uidvalidity_reset);
	assert_string_equal(fm_plan_op_name((enum fm_plan_op)99), "?");
	assert_null(fm_plan_action_at(w->plan, fm_plan_count(w->plan)));
	world_free(w);
}

static void
test_refusals(void **unused)
{
	/* What is added to a sound world: 'v' UIDVALIDITY 0, 'r' a remote
	 * UID, 'l' a local base, 's' a state entry. */
	static const struct {
		char what;
		uint32_t uid;
		const char *base;
		enum fm_error_class cls;
	} rows[] = {
	    {'v', 0, NULL, FM_ERR_PROTOCOL}, {'r', 0, NULL, FM_ERR_PROTOCOL},
	    {'r', 2, NULL, FM_ERR_PROTOCOL}, {'l', 0, NULL, FM_ERR_LOCAL},
	    {'l', 0, "b1", FM_ERR_LOCAL},    {'s', 0, "b0", FM_ERR_LOCAL},
	    {'s', 2, "b3", FM_ERR_LOCAL},    {'s', 3, "b2", FM_ERR_LOCAL},
	    {'s', 3, "b1", FM_ERR_LOCAL}, /* a base here, twice */
	};
	for (size_t i = 0; i < FM_ARRAY_LEN(rows); i++) {
		struct world *w = world_new();
		st(w, 1, "b1", "", NULL);
		st(w, 2, "b2", "", NULL);
		loc(w, "b1", "", NULL);
		rem(w, 1, "", NULL);
		rem(w, 2, "", NULL);
		if (rows[i].what == 'v')
			w->uv = w->state_uv = 0;
		else if (rows[i].what == 'r')
			rem(w, rows[i].uid, "S", NULL);
		else if (rows[i].what == 'l')
			loc(w, rows[i].base, "S", NULL);
		else
			st(w, rows[i].uid, rows[i].base, "", NULL);
		struct fm_plan_input in;
		struct fm_error err;
		struct fm_plan *plan = (struct fm_plan *)&err; /* not NULL */
		fm_error_clear(&err);
		input_of(w, &in);
		print_message("# refusal %zu\n", i);
		assert_int_equal(fm_plan_make(&in, &plan, &err), -1);
		assert_null(plan);
		assert_int_equal(err.cls, rows[i].cls);
		assert_true(err.user[0] != '\0');
		world_free(w);
	}
}

/* ------------------------------------------------------------------------
 * 100,000 messages on each side.
 */

#define BIG 100000

struct big {
	struct fm_state_entry *st;
	struct fm_plan_local *loc;
	struct fm_plan_remote *rem;
	char **names, **ids;
	size_t nst, nloc, nrem;
};

static void
big_init(struct big *g)
{
	memset(g, 0, sizeof(*g));
	g->st = xcalloc(BIG + 1, sizeof(*g->st));
	g->loc = xcalloc(BIG + 1, sizeof(*g->loc));
	g->rem = xcalloc(BIG + 1, sizeof(*g->rem));
	g->names = xcalloc(BIG + 1, sizeof(*g->names));
	g->ids = xcalloc(BIG + 1, sizeof(*g->ids));
	for (size_t i = 0; i < BIG; i++) {
		g->names[i] = xasprintf("1700000000.M%zuP42.host", i);
		g->ids[i] = xasprintf("<%zu.%zu@example.org>", i * 7919, i);
	}
}

static void
big_free(struct big *g)
{
	for (size_t i = 0; i < BIG; i++) {
		free(g->names[i]);
		free(g->ids[i]);
	}
	free(g->names);
	free(g->ids);
	free(g->st);
	free(g->loc);
	free(g->rem);
}

static struct fm_plan *
big_run(const char *what, const struct fm_plan_input *in)
{
	struct fm_plan *plan = NULL;
	struct fm_error err;
	uint64_t t0 = fm_now_ms();
	assert_int_equal(fm_plan_make(in, &plan, &err), 0);
	print_message("# %s: %zu actions in %llu ms\n", what,
	              fm_plan_count(plan),
	              (unsigned long long)(fm_now_ms() - t0));
	return plan;
}

static void
test_100k(void **unused)
{
	struct big g;
	big_init(&g);
	/* Shuffled input order: UIDs descending, bases in a stride. */
	for (size_t k = 0; k < BIG; k++) {
		size_t i = (k * 7) % BIG; /* 7 and 100000 are coprime */
		uint32_t uid = (uint32_t)(i + 1);
		g.st[k] = (struct fm_state_entry){
		    .uid = uid, .base = g.names[i], .flags = FM_MAILDIR_SEEN};
		struct fm_plan_local *l = &g.loc[g.nloc++];
		*l = (struct fm_plan_local){.base = g.names[i],
		                            .flags = FM_MAILDIR_SEEN};
		struct fm_plan_remote *r = &g.rem[BIG - 1 - k];
		*r = (struct fm_plan_remote){.uid = uid,
		                             .flags = FM_MAILDIR_SEEN};
		if (i % 100 == 1) /* flagged locally */
			l->flags |= FM_MAILDIR_FLAGGED;
		if (i % 100 == 2) /* read elsewhere: unread remotely */
			r->flags = 0;
		if (i % 100 == 3) /* expunged remotely */
			r->uid = (uint32_t)(BIG + 1 + i);
	}
	g.nst = g.nrem = BIG;
	struct fm_plan_input in = {
	    .state_uidvalidity = 1,
	    .synced = g.st,
	    .n_synced = g.nst,
	    .uidvalidity = 1,
	    .uidnext = BIG + 1,
	    .remote = g.rem,
	    .n_remote = g.nrem,
	    .local = g.loc,
	    .n_local = g.nloc,
	};
	struct fm_plan *plan = big_run("resync, 4% changed", &in);
	const struct fm_plan_summary *s = fm_plan_summary(plan);
	assert_int_equal(s->flag_changes, 2000);
	assert_int_equal(s->local_deletes, 1000);
	assert_int_equal(s->downloads, 1000); /* the new UIDs of i%100==3 */
	assert_int_equal(s->remote_deletes + s->uploads + s->links, 0);
	assert_false(s->needs_confirmation);
	const struct fm_plan_action *a = fm_plan_action_at(plan, 0);
	assert_int_equal(a->op, FM_PLAN_EXPUNGE_LOCAL);
	assert_int_equal(a->uid, 4);
	assert_string_equal(a->base, g.names[3]);
	fm_plan_free(&plan);

	/* Nothing changed: an empty plan. */
	for (size_t k = 0; k < BIG; k++) {
		g.loc[k].flags = FM_MAILDIR_SEEN;
		g.rem[k].flags = FM_MAILDIR_SEEN;
		g.rem[k].uid = g.st[k].uid;
	}
	plan = big_run("resync, nothing changed", &in);
	assert_int_equal(fm_plan_count(plan), 0);
	fm_plan_free(&plan);

	/* A new UIDVALIDITY: every message paired by Message-ID. */
	for (size_t k = 0; k < BIG; k++) {
		size_t i = (k * 7) % BIG;
		g.loc[k].msgid = g.ids[i];
		g.loc[k].size = 1000 + i % 5000;
		g.rem[BIG - 1 - k].msgid = g.ids[i];
		g.rem[BIG - 1 - k].size = 1000 + i % 5000;
		g.rem[BIG - 1 - k].uid = (uint32_t)(500000 + i);
	}
	in.uidvalidity = 2;
	plan = big_run("UIDVALIDITY recovery", &in);
	s = fm_plan_summary(plan);
	assert_int_equal(s->links, BIG);
	assert_int_equal(s->downloads + s->uploads, 0);
	fm_plan_free(&plan);

	/* A first sync into an empty cache. */
	in.n_local = 0;
	in.state_uidvalidity = 0;
	plan = big_run("initial sync", &in);
	assert_int_equal(fm_plan_summary(plan)->downloads, BIG);
	fm_plan_free(&plan);
	big_free(&g);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_matrix),
	    cmocka_unit_test(test_three_way_every_bit),
	    cmocka_unit_test(test_no_base_every_bit),
	    cmocka_unit_test(test_both_sides_different_flags),
	    cmocka_unit_test(test_state_catches_up),
	    cmocka_unit_test(test_keywords),
	    cmocka_unit_test(test_local_only_flags),
	    cmocka_unit_test(test_null_base),
	    cmocka_unit_test(test_moves),
	    cmocka_unit_test(test_tags),
	    cmocka_unit_test(test_guard),
	    cmocka_unit_test(test_unchanged_left_out),
	    cmocka_unit_test(test_uidvalidity_all_matched),
	    cmocka_unit_test(test_uidvalidity_some_new),
	    cmocka_unit_test(test_uidvalidity_duplicates),
	    cmocka_unit_test(test_empty_state),
	    cmocka_unit_test(test_order_and_summary),
	    cmocka_unit_test(test_refusals),
	    cmocka_unit_test(test_100k),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
