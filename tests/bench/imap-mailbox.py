#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-3.0-or-later
"""The server side of the IMAP sync benchmark (tests/bench/imap.sh).

    imap-mailbox.py seed --maildir DIR --inbox CORPUS --folders CORPUS
                         --names A,B,C --split 1000,600,400
    imap-mailbox.py change --state FILE --delta CORPUS [--inbox-share 70]
    imap-mailbox.py revert --state FILE
    imap-mailbox.py server-counts
    imap-mailbox.py local-counts DIR

seed copies a generated corpus straight into a Dovecot maildir (the
folders must exist already, made by doveadm): the INBOX corpus as it is
(cur/ and new/, names and mtimes kept), the folder corpus split over the
named folders by sorted file name, in the given proportions, round robin so
that every folder spans the whole date range. Files are owned like the
maildir. Dovecot picks them up at its next sync (doveadm force-resync).

change makes the "100 new messages and 100 flag changes" on the server
over IMAPS (imaplib): the delta corpus's messages are APPENDed without
flags (--inbox-share of them to INBOX, the rest evenly over the other
folders that hold mail), and as many messages already there change flags:
spread evenly over each folder's UIDs, every other one toggles \\Seen, the
others \\Flagged. The same server state gives the same picks. What it did
goes to --state (JSON), so that revert can undo exactly that: expunge the
appended UIDs and toggle the flags back.

server-counts prints "messages seen flagged" summed over every folder
(IMAP, read-only); local-counts prints the same for every maildir under
DIR (a directory with cur/ and new/), from the maildir file names. If a
sync tool got everything, the two lines are equal.

The server comes from the environment of tests/servers (FM_IMAPS_PORT,
FM_USER1, FM_PASS1, FM_CA_FILE). Standard library only.
"""

import argparse
import imaplib
import json
import os
import re
import shutil
import ssl
import sys


def corpus_files(corpus):
    """Sorted (subdir, name) of a maildir's messages."""
    out = []
    for sub in ("cur", "new"):
        for name in os.listdir(os.path.join(corpus, sub)):
            out.append((sub, name))
    out.sort(key=lambda x: x[1])
    return out


def copy_into(src, dst_dir, owner):
    dst = os.path.join(dst_dir, os.path.basename(src))
    shutil.copyfile(src, dst)
    st = os.stat(src)
    os.utime(dst, ns=(st.st_atime_ns, st.st_mtime_ns))
    os.chown(dst, owner.st_uid, owner.st_gid)
    os.chmod(dst, 0o600)


def cmd_seed(args):
    owner = os.stat(args.maildir)
    names = args.names.split(",")
    split = [int(x) for x in args.split.split(",")]
    if len(names) != len(split):
        sys.exit("imap-mailbox: --names and --split differ in length")
    n = 0
    for sub, name in corpus_files(args.inbox):
        copy_into(os.path.join(args.inbox, sub, name),
                  os.path.join(args.maildir, sub), owner)
        n += 1
    files = corpus_files(args.folders)
    if len(files) != sum(split):
        sys.exit("imap-mailbox: %s holds %d messages, --split sums to %d" %
                 (args.folders, len(files), sum(split)))
    # Round robin by weight: folder k gets split[k] of the files, spread
    # over the whole corpus (smooth weighted round robin).
    left = list(split)
    credit = [0] * len(split)
    total = sum(split)
    per = [0] * len(split)
    for sub, name in files:
        for k in range(len(split)):
            credit[k] += split[k] if left[k] else 0
        k = max(range(len(split)), key=lambda i: credit[i] if left[i] else -1)
        credit[k] -= total
        left[k] -= 1
        per[k] += 1
        folder = os.path.join(args.maildir, "." + names[k])
        copy_into(os.path.join(args.folders, sub, name),
                  os.path.join(folder, sub), owner)
    print("seeded INBOX %d, %s" % (n, ", ".join(
        "%s %d" % (names[k], per[k]) for k in range(len(names)))))


# ------------------------------------------------------------------ IMAP --

def connect():
    ctx = ssl.create_default_context(cafile=os.environ["FM_CA_FILE"])
    m = imaplib.IMAP4_SSL("127.0.0.1", int(os.environ["FM_IMAPS_PORT"]),
                          ssl_context=ctx)
    m.login(os.environ["FM_USER1"], os.environ["FM_PASS1"])
    return m


def ok(typ, data, what):
    if typ != "OK":
        sys.exit("imap-mailbox: %s: %s %r" % (what, typ, data))
    return data


LIST_RE = re.compile(rb'\((?P<flags>[^)]*)\) (?P<sep>"[^"]*"|NIL) '
                     rb'(?P<name>"(?:[^"\\]|\\.)*"|\S+)$')


def folders(m):
    out = []
    for line in ok(*m.list('""', "*"), "LIST"):
        g = LIST_RE.match(line)
        if not g:
            sys.exit("imap-mailbox: cannot parse LIST line %r" % line)
        if b"\\Noselect" in g.group("flags") or \
                b"\\NonExistent" in g.group("flags"):
            continue
        name = g.group("name").decode()
        if name.startswith('"'):
            name = name[1:-1].replace('\\"', '"').replace("\\\\", "\\")
        out.append(name)
    out.sort(key=lambda f: (f != "INBOX", f))
    return out


def quote(name):
    return '"%s"' % name.replace("\\", "\\\\").replace('"', '\\"')


def search(m, crit):
    data = ok(*m.uid("SEARCH", crit), "UID SEARCH " + crit)
    return [int(x) for x in b" ".join(d for d in data if d).split()]


def cmd_server_counts(args):
    m = connect()
    tot = [0, 0, 0]
    for f in folders(m):
        ok(*m.select(quote(f), readonly=True), "EXAMINE " + f)
        c = [len(search(m, "ALL")), len(search(m, "SEEN")),
             len(search(m, "FLAGGED"))]
        if args.verbose:
            print("  %-10s %6d %6d %6d" % (f, *c), file=sys.stderr)
        tot = [a + b for a, b in zip(tot, c)]
    m.logout()
    print("%d %d %d" % tuple(tot))


def cmd_local_counts(args):
    tot = [0, 0, 0]
    for root, dirs, _ in os.walk(args.dir):
        if "cur" not in dirs or "new" not in dirs:
            continue
        for sub in ("cur", "new"):
            with os.scandir(os.path.join(root, sub)) as it:
                for e in it:
                    if not e.is_file():
                        continue
                    tot[0] += 1
                    info = e.name.rpartition(":2,")[2] \
                        if ":2," in e.name else ""
                    tot[1] += "S" in info
                    tot[2] += "F" in info
    print("%d %d %d" % tuple(tot))


def spread(uids, k):
    """K UIDs spread evenly over UIDS (sorted), deterministic."""
    if k <= 0 or not uids:
        return []
    k = min(k, len(uids))
    return [uids[(2 * i + 1) * len(uids) // (2 * k)] for i in range(k)]


def cmd_change(args):
    if os.path.exists(args.state):
        sys.exit("imap-mailbox: %s exists: revert first" % args.state)
    delta = [os.path.join(args.delta, sub, name)
             for sub, name in corpus_files(args.delta)]
    m = connect()
    fl = folders(m)
    counts = {}
    for f in fl:
        ok(*m.select(quote(f), readonly=True), "EXAMINE " + f)
        counts[f] = len(search(m, "ALL"))
    others = [f for f in fl if f != "INBOX" and counts[f] > 0]
    n = len(delta)
    n_inbox = min(n, round(n * args.inbox_share / 100.0))
    # Per folder: how many to append and how many to change.
    share = {"INBOX": n_inbox}
    for i, f in enumerate(others):
        share[f] = (n - n_inbox) // len(others) + \
            (1 if i < (n - n_inbox) % len(others) else 0)
    state = {"appended": [], "toggled": []}
    # Write the state as we go: a failure half-way can still be reverted.

    def save():
        tmp = args.state + ".tmp"
        with open(tmp, "w") as fp:
            json.dump(state, fp)
        os.replace(tmp, args.state)

    # Flags first, on the messages already there, then the appends.
    for f, k in share.items():
        ok(*m.select(quote(f)), "SELECT " + f)
        uids = search(m, "ALL")
        seen = set(search(m, "SEEN"))
        flagged = set(search(m, "FLAGGED"))
        for i, uid in enumerate(spread(uids, k)):
            flag, have = ("\\Seen", seen) if i % 2 == 0 else \
                ("\\Flagged", flagged)
            was = uid in have
            ok(*m.uid("STORE", str(uid), "-FLAGS.SILENT" if was else
                      "+FLAGS.SILENT", "(%s)" % flag), "UID STORE")
            state["toggled"].append([f, uid, flag, was])
        save()
    it = iter(delta)
    for f, k in share.items():
        for _ in range(k):
            path = next(it)
            with open(path, "rb") as fp:
                msg = fp.read()
            typ, data = m.append(quote(f), "", None, msg)
            ok(typ, data, "APPEND to " + f)
            g = re.search(rb"\[APPENDUID \d+ (\d+)\]", data[0] or b"")
            if not g:
                sys.exit("imap-mailbox: no APPENDUID in %r" % data)
            state["appended"].append([f, int(g.group(1))])
        save()
    m.logout()
    print("changed: %d appended, %d flags toggled, over %s" % (
        len(state["appended"]), len(state["toggled"]),
        ", ".join("%s %d" % kv for kv in share.items())))


def cmd_revert(args):
    with open(args.state) as fp:
        state = json.load(fp)
    m = connect()
    by_folder = {}
    for f, uid in state["appended"]:
        by_folder.setdefault(f, []).append(uid)
    for f, uid, flag, was in state["toggled"]:
        by_folder.setdefault(f, [])
    for f, uids in by_folder.items():
        ok(*m.select(quote(f)), "SELECT " + f)
        for f2, uid, flag, was in state["toggled"]:
            if f2 == f:
                ok(*m.uid("STORE", str(uid), "+FLAGS.SILENT" if was else
                          "-FLAGS.SILENT", "(%s)" % flag), "UID STORE")
        if uids:
            s = ",".join(str(u) for u in uids)
            ok(*m.uid("STORE", s, "+FLAGS.SILENT", "(\\Deleted)"),
               "UID STORE \\Deleted")
            ok(*m.uid("EXPUNGE", s), "UID EXPUNGE")
    m.logout()
    os.unlink(args.state)
    print("reverted: %d expunged, %d flags toggled back" % (
        len(state["appended"]), len(state["toggled"])))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sp = ap.add_subparsers(dest="cmd", required=True)
    p = sp.add_parser("seed")
    p.add_argument("--maildir", required=True)
    p.add_argument("--inbox", required=True)
    p.add_argument("--folders", required=True)
    p.add_argument("--names", required=True)
    p.add_argument("--split", required=True)
    p = sp.add_parser("change")
    p.add_argument("--state", required=True)
    p.add_argument("--delta", required=True)
    p.add_argument("--inbox-share", type=int, default=70)
    p = sp.add_parser("revert")
    p.add_argument("--state", required=True)
    p = sp.add_parser("server-counts")
    p.add_argument("-v", "--verbose", action="store_true")
    p = sp.add_parser("local-counts")
    p.add_argument("dir")
    args = ap.parse_args()
    {"seed": cmd_seed, "change": cmd_change, "revert": cmd_revert,
     "server-counts": cmd_server_counts,
     "local-counts": cmd_local_counts}[args.cmd](args)


if __name__ == "__main__":
    main()
