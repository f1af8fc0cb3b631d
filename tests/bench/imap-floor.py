#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-3.0-or-later
"""The floor of the IMAP sync benchmark (tests/bench/imap.sh): how fast the
server can hand over a folder's messages on this TLS link, with a client
that does nothing with them.

    imap-floor.py [--all] [MAILBOX...]      (default: INBOX)
    imap-floor.py --mark FILE
    imap-floor.py --changes FILE

One connection over implicit TLS (certificate checked against FM_CA_FILE),
LOGIN, then per mailbox EXAMINE and one `UID FETCH 1:* BODY.PEEK[]`: the
server streams every message at once, and the client reads the literals by
their byte count and throws them away (the same as writing them to
/dev/null, without the system calls). --all does every selectable mailbox
from LIST "" *. Prints per mailbox "NAME MESSAGES BYTES SECONDS" (the
seconds from sending the FETCH to its tagged OK) and a last line "total
MESSAGES BYTES SECONDS" from TCP connect to LOGOUT.

--mark records every selectable mailbox's UIDNEXT and HIGHESTMODSEQ
(STATUS) in FILE, as a sync client would know them from its last run.
--changes is the floor of a resync after changes made since: per mailbox
of FILE, SELECT (CONDSTORE), then at once `UID FETCH 1:U-1 (UID FLAGS)
(CHANGEDSINCE M)` and, when SELECT's UIDNEXT says new messages came,
`UID FETCH U:* (UID FLAGS RFC822.SIZE BODY.PEEK[])`, bodies dropped; no
local work. Every mailbox is selected: asking first which changed (one
LIST-STATUS, as fulmar does) measured slower here on the changes case
(Dovecot 2.3 syncs a changed maildir for STATUS and again for SELECT). It prints per mailbox "NAME CHANGED NEW BYTES" and
a last line "changes NEW BYTES SECONDS" from TCP connect to LOGOUT (the
client's own clock: Python's start, ~30 ms, would be most of it).

The server comes from the environment of tests/servers (FM_IMAPS_PORT,
FM_USER1, FM_PASS1, FM_CA_FILE). Standard library only.
"""

import argparse
import os
import re
import socket
import ssl
import sys
import time

LITERAL = re.compile(rb"\{(\d+)\}$")
LIST_RE = re.compile(rb'^\* LIST \((?P<flags>[^)]*)\) (?:"[^"]*"|NIL) '
                     rb'(?P<name>"(?:[^"\\]|\\.)*"|\S+)$')


class Link:
    def __init__(self, sock):
        self.s = sock
        self.buf = bytearray()
        self.pos = 0
        self.scratch = bytearray(1 << 18)
        self.view = memoryview(self.scratch)
        self.tag = 0

    def _fill(self):
        n = self.s.recv_into(self.scratch)
        if n == 0:
            sys.exit("imap-floor: the server closed the connection")
        if self.pos:
            del self.buf[:self.pos]
            self.pos = 0
        self.buf += self.view[:n]

    def line(self):
        while True:
            i = self.buf.find(b"\r\n", self.pos)
            if i >= 0:
                ln = bytes(self.buf[self.pos:i])
                self.pos = i + 2
                return ln
            self._fill()

    def skip(self, n):
        """Read and drop N bytes of a literal."""
        avail = len(self.buf) - self.pos
        if avail >= n:
            self.pos += n
            return
        n -= avail
        self.buf.clear()
        self.pos = 0
        while n > 0:
            k = self.s.recv_into(self.scratch)
            if k == 0:
                sys.exit("imap-floor: the server closed the connection")
            if k <= n:
                n -= k
            else:
                self.buf += self.view[n:k]
                n = 0

    def response(self):
        """One whole response: (first line, [literal sizes]), literals
        skipped."""
        first = ln = self.line()
        sizes = []
        while True:
            g = LITERAL.search(ln)
            if not g:
                return first, sizes
            n = int(g.group(1))
            self.skip(n)
            sizes.append(n)
            ln = self.line()

    def pipeline(self, texts, on_untagged=None):
        """Sends every command at once, then reads until the last one's
        tagged reply; any NO or BAD ends the run."""
        if not texts:
            return
        tags = []
        out = b""
        for text in texts:
            self.tag += 1
            tags.append(b"f%d" % self.tag)
            out += tags[-1] + b" " + text.encode() + b"\r\n"
        self.s.sendall(out)
        left = set(tags)
        while left:
            first, sizes = self.response()
            tag = first.split(b" ", 1)[0]
            if tag in left:
                if not first.startswith(tag + b" OK"):
                    sys.exit("imap-floor: %s" % first.decode())
                left.discard(tag)
            elif on_untagged:
                on_untagged(first, sizes)

    def command(self, text, on_untagged=None):
        self.pipeline([text], on_untagged)


def quote(name):
    return '"%s"' % name.replace("\\", "\\\\").replace('"', '\\"')


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--all", action="store_true")
    ap.add_argument("mailbox", nargs="*")
    ap.add_argument("--mark", metavar="FILE")
    ap.add_argument("--changes", metavar="FILE")
    args = ap.parse_args()

    t0 = time.monotonic()
    ctx = ssl.create_default_context(cafile=os.environ["FM_CA_FILE"])
    raw = socket.create_connection(("127.0.0.1",
                                    int(os.environ["FM_IMAPS_PORT"])))
    link = Link(ctx.wrap_socket(raw, server_hostname="127.0.0.1"))
    greeting, _ = link.response()
    if not greeting.startswith(b"* OK"):
        sys.exit("imap-floor: greeting %r" % greeting)
    link.command("LOGIN %s %s" % (quote(os.environ["FM_USER1"]),
                                  quote(os.environ["FM_PASS1"])))
    if args.changes:
        changes(link, args.changes, t0)
        return
    every = args.all or args.mark
    boxes = args.mailbox or (["INBOX"] if not every else [])
    if every:
        found = []

        def on_list(first, sizes):
            g = LIST_RE.match(first)
            if g and b"\\Noselect" not in g.group("flags"):
                name = g.group("name").decode()
                if name.startswith('"'):
                    name = name[1:-1].replace('\\"', '"') \
                        .replace("\\\\", "\\")
                found.append(name)
        link.command('LIST "" "*"', on_list)
        boxes += sorted(found, key=lambda f: (f != "INBOX", f))

    if args.mark:
        mark(link, boxes, args.mark)
        return
    total_n = total_b = 0
    for box in boxes:
        link.command("EXAMINE " + quote(box))
        got = [0, 0]

        def on_fetch(first, sizes):
            if b" FETCH " in first and sizes:
                got[0] += 1
                got[1] += sum(sizes)
        t = time.monotonic()
        link.command("UID FETCH 1:* BODY.PEEK[]", on_fetch)
        print("%s %d %d %.3f" % (box, got[0], got[1], time.monotonic() - t))
        total_n += got[0]
        total_b += got[1]
    link.command("LOGOUT")
    print("total %d %d %.3f" % (total_n, total_b, time.monotonic() - t0))


STATUS_RE = re.compile(rb"\b(UIDNEXT|HIGHESTMODSEQ) (\d+)")


def mark(link, boxes, path):
    lines = []
    for box in boxes:
        got = {}

        def on_status(first, sizes):
            got.update((k.decode(), int(v))
                       for k, v in STATUS_RE.findall(first))
        link.command("STATUS %s (UIDNEXT HIGHESTMODSEQ)" % quote(box),
                     on_status)
        lines.append("%d %d %s\n" % (got["UIDNEXT"], got["HIGHESTMODSEQ"],
                                     box))
    link.command("LOGOUT")
    with open(path, "w") as fh:
        fh.writelines(lines)


def changes(link, path, t0):
    with open(path) as fh:
        marks = [ln.rstrip("\n").split(" ", 2) for ln in fh if ln.strip()]
    total_n = total_b = 0
    for uidnext, modseq, box in marks:
        uidnext, modseq = int(uidnext), int(modseq)
        now = [0]

        def on_select(first, sizes):
            g = re.search(rb"\[UIDNEXT (\d+)\]", first)
            if g:
                now[0] = int(g.group(1))
        link.command("SELECT %s (CONDSTORE)" % quote(box), on_select)
        cmds = []
        if uidnext > 1:
            cmds.append("UID FETCH 1:%d (UID FLAGS) (CHANGEDSINCE %d)" %
                        (uidnext - 1, modseq))
        if now[0] > uidnext:
            cmds.append("UID FETCH %d:* (UID FLAGS RFC822.SIZE "
                        "BODY.PEEK[])" % uidnext)
        got = [0, 0, 0]

        def on_fetch(first, sizes):
            if b" FETCH " not in first:
                return
            if sizes:
                got[1] += 1
                got[2] += sum(sizes)
            else:
                got[0] += 1
        link.pipeline(cmds, on_fetch)
        print("%s %d %d %d" % (box, got[0], got[1], got[2]))
        total_n += got[1]
        total_b += got[2]
    link.command("LOGOUT")
    print("changes %d %d %.3f" % (total_n, total_b, time.monotonic() - t0))


if __name__ == "__main__":
    main()
