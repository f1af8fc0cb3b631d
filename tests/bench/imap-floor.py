#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-3.0-or-later
"""The floor of the IMAP sync benchmark (tests/bench/imap.sh): how fast the
server can hand over a folder's messages on this TLS link, with a client
that does nothing with them.

    imap-floor.py [--all] [MAILBOX...]      (default: INBOX)

One connection over implicit TLS (certificate checked against FM_CA_FILE),
LOGIN, then per mailbox EXAMINE and one `UID FETCH 1:* BODY.PEEK[]`: the
server streams every message at once, and the client reads the literals by
their byte count and throws them away (the same as writing them to
/dev/null, without the system calls). --all does every selectable mailbox
from LIST "" *. Prints per mailbox "NAME MESSAGES BYTES SECONDS" (the
seconds from sending the FETCH to its tagged OK) and a last line "total
MESSAGES BYTES SECONDS" from TCP connect to LOGOUT.

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

    def command(self, text, on_untagged=None):
        self.tag += 1
        tag = b"f%d" % self.tag
        self.s.sendall(tag + b" " + text.encode() + b"\r\n")
        while True:
            first, sizes = self.response()
            if first.startswith(tag + b" "):
                if not first.startswith(tag + b" OK"):
                    sys.exit("imap-floor: %s: %s" % (text.split()[0],
                                                      first.decode()))
                return
            if on_untagged:
                on_untagged(first, sizes)


def quote(name):
    return '"%s"' % name.replace("\\", "\\\\").replace('"', '\\"')


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--all", action="store_true")
    ap.add_argument("mailbox", nargs="*")
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
    boxes = args.mailbox or (["INBOX"] if not args.all else [])
    if args.all:
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


if __name__ == "__main__":
    main()
