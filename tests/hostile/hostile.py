#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-3.0-or-later
"""Scripted hostile IMAP/POP3/SMTP servers for fulmar's tests.

One process serves one scenario on 127.0.0.1: it does what a real server
will not (drop STARTTLS, inject bytes before the TLS handshake, send
endless lines, garbage or nothing at all) and records every byte the
client sends, so that a test can check what the client did in reply.

    hostile.py --scenario NAME --port-file FILE --record FILE
               [--cert CRT --key KEY] [--implicit] [--connections N]
               [--lifetime SECONDS] [--state FILE [--messages MBOX]]

--state and --messages are for the pop3-* maildrop scenarios alone
(pop3-uidl-reuse, pop3-no-uidl...: a maildrop that persists across
connections).

The record holds the client's bytes: as sent before TLS, decrypted after.
Marker lines, always at the start of a line, separate them:
    === connection N ===     the bytes that follow come from connection N
                             (repeated whenever another connection writes)
    === TLS ===              the TLS handshake of this connection completed
    === TLS failed: WHY ===  the handshake failed (for instance the client
                             refused the certificate)
    === credentials in clear: CMD ===   the client sent a password or token
    === credentials over TLS: CMD ===   (LOGIN, PASS, AUTH data...), whether
                             right or wrong; catches base64 forms that a
                             grep for the password would miss
A marker that would follow a partial line gets a newline before it.

Standard library only. See tests/hostile/README for the scenarios.
"""

import argparse
import base64
import json
import os
import re
import signal
import socket
import ssl
import sys
import threading
import time

USER = "alice@fulmar.test"
PASSWORD = "alice-pw-1"
BEARER = "tok-123"

MAX_LINE = 1 << 20  # bounds what a (possibly buggy) client can make us hold
HANDSHAKE_TIMEOUT = 10
CHUNK = 64 * 1024
ENDLESS_LIMIT = 200 * 1024 * 1024
TRICKLE_TOTAL = 1024 * 1024
TRICKLE_PAUSE = 0.05  # between 64 KiB chunks: 1 MiB takes ~0.8 s

T0 = time.monotonic()


def log(msg):
    """One line to stderr; lib_hostile.sh keeps it as the server's log."""
    sys.stderr.write("hostile %7.3f %s\n" % (time.monotonic() - T0, msg))
    sys.stderr.flush()


class Closed(Exception):
    """The connection is over (client left, or the scenario ended it)."""


# ------------------------------------------------------------- record ----


class Recorder:
    """Appends client bytes and marker lines to the record file.

    Unbuffered and under a lock: the file is complete at any moment, even
    if the process is killed, and connections never split each other's
    writes.
    """

    def __init__(self, path):
        self.f = open(path, "ab", buffering=0)
        self.lock = threading.Lock()
        self.last_conn = None
        self.at_line_start = True

    def _marker(self, text):
        if not self.at_line_start:
            self.f.write(b"\n")
        self.f.write(text.encode("utf-8", "replace") + b"\n")
        self.at_line_start = True

    def _switch(self, conn_no):
        if self.last_conn != conn_no:
            self._marker("=== connection %d ===" % conn_no)
            self.last_conn = conn_no

    def data(self, conn_no, data):
        with self.lock:
            self._switch(conn_no)
            self.f.write(data)
            self.at_line_start = data.endswith(b"\n")

    def mark(self, conn_no, text):
        with self.lock:
            self._switch(conn_no)
            self._marker(text)


# --------------------------------------------------------- connection ----


class Conn:
    """A client connection: buffered reads that record, TLS upgrade."""

    def __init__(self, sock, no, rec, tls_ctx):
        self.sock = sock
        self.no = no
        self.rec = rec
        self.tls_ctx = tls_ctx
        self.buf = bytearray()
        self.tls = False

    def log(self, msg):
        log("conn %d: %s" % (self.no, msg))

    def _fill(self):
        data = self.sock.recv(CHUNK)
        if not data:
            raise Closed("client closed the connection")
        self.rec.data(self.no, data)
        self.buf += data

    def readline(self):
        """One line including its CRLF (or LF)."""
        while True:
            i = self.buf.find(b"\n")
            if i >= 0:
                line = bytes(self.buf[: i + 1])
                del self.buf[: i + 1]
                return line
            if len(self.buf) > MAX_LINE:
                raise Closed("client line longer than %d bytes" % MAX_LINE)
            self._fill()

    def read_exact(self, n):
        while len(self.buf) < n:
            self._fill()
        data = bytes(self.buf[:n])
        del self.buf[:n]
        return data

    def send(self, data):
        """Everything in ONE sendall(): on loopback a small write leaves
        as one TCP segment, which the injection scenarios rely on."""
        if isinstance(data, str):
            data = data.encode("utf-8")
        self.sock.sendall(data)

    def drain(self):
        """Record whatever the client still sends until it closes."""
        self.buf.clear()
        while True:
            self._fill()
            self.buf.clear()

    def close_after(self, data):
        """Send DATA, then FIN, then read until the client closes too.
        Closing with unread bytes would send RST, and the client might
        then lose DATA; a short drain avoids that."""
        self.send(data)
        self.sock.shutdown(socket.SHUT_WR)
        self.sock.settimeout(2)
        try:
            self.drain()
        except (socket.timeout, Closed):
            pass
        raise Closed("closed by the scenario")

    def credentials(self, what):
        """Note in the record that a password or token just arrived."""
        where = "over TLS" if self.tls else "in clear"
        self.rec.mark(self.no, "=== credentials %s: %s ===" % (where, what))
        self.log("credentials %s: %s" % (where, what))

    def start_tls(self):
        """Server side of a TLS handshake on this connection.

        Bytes the client pipelined after STARTTLS (already recorded as
        plaintext) are dropped, as a fixed server would. If the client goes
        on in plaintext instead of a ClientHello, its bytes are recorded
        (OpenSSL would swallow them) and the connection ends.
        """
        if self.tls_ctx is None:
            self.log("no --cert: recording what follows instead of TLS")
            self.drain()
        if self.buf:
            self.log("%d plaintext bytes pipelined before TLS, dropped" % len(self.buf))
            self.buf.clear()
        first = self.sock.recv(1, socket.MSG_PEEK)
        if not first:
            raise Closed("client closed instead of starting TLS")
        if first[0] != 0x16:  # not a TLS handshake record
            self.log("client went on in plaintext instead of TLS")
            self.drain()
        tls = self.tls_ctx.wrap_socket(
            self.sock, server_side=True, do_handshake_on_connect=False
        )
        tls.settimeout(HANDSHAKE_TIMEOUT)
        try:
            tls.do_handshake()
        except (ssl.SSLError, OSError) as e:
            why = getattr(e, "reason", None) or str(e)
            self.rec.mark(self.no, "=== TLS failed: %s ===" % why)
            raise Closed("TLS handshake failed: %s" % why)
        tls.settimeout(None)
        self.sock = tls
        self.tls = True
        self.rec.mark(self.no, "=== TLS ===")
        self.log("TLS established (%s)" % tls.version())


def b64decode(text):
    try:
        return base64.b64decode(text, validate=True)
    except ValueError:
        return None


def plain_ok(ir):
    """SASL PLAIN response (base64) carries alice's name and password."""
    raw = b64decode(ir)
    if raw is None:
        return False
    parts = raw.split(b"\0")
    return (
        len(parts) == 3
        and parts[0] in (b"", USER.encode())
        and parts[1] == USER.encode()
        and parts[2] == PASSWORD.encode()
    )


def oauth_ok(mech, ir):
    """XOAUTH2 or OAUTHBEARER (RFC 7628) response with alice's token.
    OAUTHBEARER's host and port pairs may hold anything."""
    raw = b64decode(ir)
    if raw is None:
        return False
    if mech == "XOAUTH2":
        return raw == ("user=%s\x01auth=Bearer %s\x01\x01" % (USER, BEARER)).encode()
    if not raw.endswith(b"\x01\x01"):
        return False
    fields = raw[:-2].split(b"\x01")
    return (
        fields[0] == ("n,a=%s," % USER).encode()
        and ("auth=Bearer %s" % BEARER).encode() in fields[1:]
    )


# --------------------------------------------------------------- IMAP ----

CAPS_TLS = "IMAP4rev1 SASL-IR AUTH=PLAIN"

# starttls: what STARTTLS gets. "bad" / "no": refused; "ok": upgrade;
# "inject": OK plus an injected line in the same segment, then upgrade.
IMAP = {
    "imap-no-starttls": dict(caps="IMAP4rev1 AUTH=PLAIN", starttls="bad"),
    "imap-starttls-refused": dict(caps="IMAP4rev1 STARTTLS AUTH=PLAIN", starttls="no"),
    "imap-starttls-inject": dict(caps="IMAP4rev1 STARTTLS AUTH=PLAIN", starttls="inject"),
    "imap-preauth": dict(caps="IMAP4rev1 STARTTLS", starttls="bad", preauth=True),
    "imap-logindisabled": dict(
        caps="IMAP4rev1 STARTTLS LOGINDISABLED",
        caps_tls="IMAP4rev1 LOGINDISABLED",
        starttls="ok",
        needs_cert=True,
    ),
    "imap-starttls-ok": dict(
        caps="IMAP4rev1 STARTTLS LOGINDISABLED", starttls="ok", needs_cert=True
    ),
    "imaps-ok": dict(caps=CAPS_TLS, starttls="bad", implicit=True, needs_cert=True),
    # A server that names its capabilities only when asked: not in its
    # greeting, not with its login answer, and more after login.
    "imaps-quiet": dict(
        caps=CAPS_TLS, caps_authed=CAPS_TLS + " X-AFTER-LOGIN", starttls="bad",
        implicit=True, needs_cert=True, greeting_caps=False, login_caps=False,
    ),
    # Push (`fulmar watch`): implicit TLS, the normal server, plus IDLE and
    # NOTIFY as the scenario says (see imap_push below).
    "imap-notify-garbage": dict(
        caps=CAPS_TLS + " IDLE NOTIFY", caps_tls=CAPS_TLS + " IDLE NOTIFY",
        starttls="bad", implicit=True,
        needs_cert=True, push="garbage",
    ),
    "imap-notify-refused": dict(
        caps=CAPS_TLS + " IDLE NOTIFY", caps_tls=CAPS_TLS + " IDLE NOTIFY",
        starttls="bad", implicit=True,
        needs_cert=True, push="refused",
    ),
    "imap-notify-overflow": dict(
        caps=CAPS_TLS + " IDLE NOTIFY", caps_tls=CAPS_TLS + " IDLE NOTIFY",
        starttls="bad", implicit=True, needs_cert=True, push="overflow",
    ),
    "imap-idle-early": dict(
        caps=CAPS_TLS + " IDLE", caps_tls=CAPS_TLS + " IDLE",
        starttls="bad", implicit=True,
        needs_cert=True, push="early",
    ),
    "imap-no-idle": dict(
        caps=CAPS_TLS, starttls="bad", implicit=True, needs_cert=True,
        push="none",
    ),
}

MAILBOXES = {"INBOX": "", "Sent": "\\Sent", "Archive": "\\Archive"}
STATUS_VALUES = {
    "MESSAGES": 2,
    "RECENT": 0,
    "UIDNEXT": 3,
    "UIDVALIDITY": 1,
    "UNSEEN": 1,
    "SIZE": 320,
}

IMAP_TOKEN = re.compile(rb'\s*(?:"((?:[^"\\]|\\.)*)"|([()])|([^\s()"]+))')
IMAP_LITERAL = re.compile(rb"\{(\d+)(\+?)\}\r?\n?$")


def imap_tokens(data):
    """Atoms, quoted strings and parentheses of one line (enough for the
    commands a client sends while logging in and looking around)."""
    out = []
    pos = 0
    while pos < len(data):
        m = IMAP_TOKEN.match(data, pos)
        if not m or m.end() == pos:
            break
        pos = m.end()
        if m.group(1) is not None:
            out.append(re.sub(rb"\\(.)", rb"\1", m.group(1)))
        elif m.group(2) is not None:
            out.append(m.group(2))
        elif m.group(3) is not None:
            out.append(m.group(3))
    return out


def imap_read_command(c):
    """Tag, command name and arguments (bytes); literals are read whole."""
    tokens = []
    while True:
        line = c.readline()
        m = IMAP_LITERAL.search(line)
        tokens += imap_tokens(line[: m.start()] if m else line.rstrip(b"\r\n"))
        if not m:
            break
        n = int(m.group(1))
        if n > MAX_LINE:
            raise Closed("client literal of %d bytes" % n)
        if not m.group(2):
            c.send("+ go ahead\r\n")
        tokens.append(c.read_exact(n))
    text = [t.decode("utf-8", "replace") for t in tokens]
    if len(text) < 2:
        return (text[0] if text else "*"), "", []
    return text[0], text[1].upper(), text[2:]


def imap_session(c, cfg):
    state = dict(authed=bool(cfg.get("preauth")))

    def caps():
        if state["authed"] and "caps_authed" in cfg:
            return cfg["caps_authed"]
        if c.tls:
            return cfg.get("caps_tls", CAPS_TLS)
        return cfg["caps"]

    if cfg.get("implicit"):
        c.start_tls()
    code = "[CAPABILITY %s] " % caps() if cfg.get("greeting_caps", True) else ""
    if state["authed"]:
        c.send("* PREAUTH %swelcome\r\n" % code)
    else:
        c.send("* OK %shi\r\n" % code)

    while True:
        tag, cmd, args = imap_read_command(c)
        if cmd == "CAPABILITY":
            c.send("* CAPABILITY %s\r\n%s OK CAPABILITY completed\r\n" % (caps(), tag))
        elif cmd == "NOOP":
            c.send("%s OK NOOP completed\r\n" % tag)
        elif cmd == "LOGOUT":
            c.send("* BYE logging out\r\n%s OK LOGOUT completed\r\n" % tag)
            raise Closed("LOGOUT")
        elif cmd == "STARTTLS":
            imap_starttls(c, cfg, state, tag)
        elif cmd in ("LOGIN", "AUTHENTICATE"):
            if state["authed"]:
                c.send("%s BAD already authenticated\r\n" % tag)
                continue
            if cmd == "LOGIN":
                imap_login(c, caps(), state, tag, args)
            else:
                imap_authenticate(c, caps(), state, tag, args)
            if state["authed"]:
                # The login's answer names the capabilities after login.
                said = cfg.get("login_caps", True)
                c.send("%s OK %sLogged in\r\n"
                       % (tag, "[CAPABILITY %s] " % caps() if said else ""))
        elif cmd in ("ID", "ENABLE", "NAMESPACE"):
            untagged = {
                "ID": '* ID ("name" "hostile")\r\n',
                "ENABLE": "",
                "NAMESPACE": '* NAMESPACE (("" "/")) NIL NIL\r\n',
            }[cmd]
            c.send("%s%s OK %s completed\r\n" % (untagged, tag, cmd))
        elif cmd in ("LIST", "STATUS", "SELECT", "EXAMINE"):
            if not state["authed"]:
                c.send("%s BAD %s needs authentication\r\n" % (tag, cmd))
            else:
                imap_mailbox_command(c, tag, cmd, args)
        elif cmd in ("NOTIFY", "IDLE") and cfg.get("push") and state["authed"]:
            imap_push(c, cfg, tag, cmd)
        else:
            c.send("%s BAD unknown command\r\n" % tag)


def imap_starttls(c, cfg, state, tag):
    how = cfg["starttls"]
    if c.tls or state["authed"] or how == "bad":
        c.send("%s BAD STARTTLS not available now\r\n" % tag)
    elif how == "no":
        c.send("%s NO STARTTLS unavailable\r\n" % tag)
    elif how == "inject":
        c.send(
            "%s OK Begin TLS\r\n"
            "* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN LOGIN] injected\r\n" % tag
        )
        c.start_tls()
    else:
        c.send("%s OK Begin TLS negotiation now\r\n" % tag)
        c.start_tls()


def imap_login(c, caps, state, tag, args):
    c.credentials("LOGIN")
    if "LOGINDISABLED" in caps.split() and not c.tls:
        c.send("%s NO [PRIVACYREQUIRED] LOGIN needs TLS\r\n" % tag)
    elif "LOGINDISABLED" in caps.split():
        c.send("%s NO [UNAVAILABLE] LOGIN is disabled on this server\r\n" % tag)
    elif args[:2] == [USER, PASSWORD]:
        state["authed"] = True  # imap_session answers
    else:
        c.send("%s NO [AUTHENTICATIONFAILED] Authentication failed\r\n" % tag)


def imap_authenticate(c, caps, state, tag, args):
    mech = args[0].upper() if args else ""
    offered = "AUTH=%s" % mech in caps.split()
    if len(args) > 1:  # SASL-IR: the credentials came with the command
        ir = args[1]
    elif offered:
        c.send("+ \r\n")
        ir = c.readline().decode("utf-8", "replace").strip()
    else:
        ir = "*"
    if ir != "*":
        c.credentials("AUTHENTICATE " + mech)
    if not offered:
        c.send("%s NO [CANNOT] mechanism not offered\r\n" % tag)
    elif ir == "*":
        c.send("%s BAD AUTHENTICATE cancelled\r\n" % tag)
    elif mech == "PLAIN" and plain_ok(ir):
        state["authed"] = True  # imap_session answers
    else:
        c.send("%s NO [AUTHENTICATIONFAILED] Authentication failed\r\n" % tag)


def imap_mailbox_command(c, tag, cmd, args):
    box = args[0] if args else ""
    if box.upper() == "INBOX":
        box = "INBOX"
    if cmd == "LIST":
        out = "".join(
            '* LIST (%s) "/" %s\r\n' % (" ".join(["\\HasNoChildren", f]).strip(), name)
            for name, f in MAILBOXES.items()
        )
        c.send("%s%s OK LIST completed\r\n" % (out, tag))
    elif box not in MAILBOXES:
        c.send("%s NO [NONEXISTENT] Mailbox doesn't exist: %s\r\n" % (tag, box))
    elif cmd == "STATUS":
        items = [a.upper() for a in args[1:] if a not in ("(", ")")]
        got = " ".join(
            "%s %d" % (i, STATUS_VALUES[i]) for i in items if i in STATUS_VALUES
        )
        c.send("* STATUS %s (%s)\r\n%s OK STATUS completed\r\n" % (box, got, tag))
    else:
        mode = "READ-WRITE" if cmd == "SELECT" else "READ-ONLY"
        c.send(
            "* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)\r\n"
            "* 2 EXISTS\r\n* 0 RECENT\r\n"
            "* OK [UIDVALIDITY 1] UIDs valid\r\n* OK [UIDNEXT 3] next UID\r\n"
            "%s OK [%s] %s completed\r\n" % (tag, mode, cmd)
        )


# --------------------------------------------------------- IMAP push ----
# NOTIFY SET is accepted, or refused with imap-notify-refused. IDLE:
#   imap-notify-garbage  the first IDLE of the first connection that
#       asks gets "+ idling", then NOTIFY_GARBAGE (responses that must not
#       crash a client, end its session or make it hold much memory), then
#       one good "* STATUS Lists", then, half a second later, a response
#       with 17 literals (more than a client need accept: it may hang up).
#       Later IDLEs are quiet.
#   imap-notify-overflow  on a connection that set NOTIFY, "+ idling" and
#       "* OK [NOTIFICATIONOVERFLOW]" (as NOTIFY NONE: the server stopped
#       telling); other IDLEs are quiet.
#   imap-idle-early  "* 3 EXISTS" in the same segment before "+ idling"
#       (what libetpan 1.9.4's mailimap_idle loses), on every IDLE.
# Either way the IDLE then waits for DONE.

PUSH_LOCK = threading.Lock()
PUSH_STATE = {"garbage_sent": False}

_FAKE_BYE = b"x\r\n* BYE fake, inside a literal\r\n"
NOTIFY_GARBAGE = [
    b"* STATUS\r\n",
    b"* STATUS \r\n",
    b'* STATUS "unterminated (MESSAGES 1)\r\n',
    b"* STATUS Lists (MESSAGES 99999999999999999999999 UIDNEXT -1)\r\n",
    b"* STATUS Lists " + b"(" * 5000 + b"\r\n",
    b"* STATUS \x00\x01\x02 (MESSAGES 1)\r\n",
    b"* STATUS {%d}\r\n%s (MESSAGES 1)\r\n" % (len(_FAKE_BYE), _FAKE_BYE),
    b"* STATUS " + b"y" * 300000 + b" (MESSAGES 1)\r\n",
    b"* STATUS {0}\r\n (MESSAGES 1)\r\n",
    b"* 1 FETCH (BODY[] {%d}\r\n" % (64 << 20),
    None,  # 64 MiB of literal, sent in chunks
    b")\r\n",
    b"\xff\xfe a line that is no response\r\n",
    b"+ another continuation\r\n",
    b"* 4294967296 EXISTS\r\n",
    b"* OK Still here\r\n",
    b"* STATUS Lists (MESSAGES 3 UIDNEXT 4)\r\n",
]


def imap_push(c, cfg, tag, cmd):
    how = cfg["push"]
    if cmd == "NOTIFY":
        if how == "refused":
            c.send("%s NO [CANNOT] NOTIFY is broken here\r\n" % tag)
        else:
            c.notified = True
            c.send("%s OK NOTIFY completed\r\n" % tag)
        return
    if how == "overflow" and getattr(c, "notified", False):
        c.send("+ idling\r\n* OK [NOTIFICATIONOVERFLOW] gave up\r\n")
    if how == "early":
        c.send("* 3 EXISTS\r\n+ idling\r\n")
    else:
        c.send("+ idling\r\n")
    if how == "garbage":
        with PUSH_LOCK:
            first = not PUSH_STATE["garbage_sent"]
            PUSH_STATE["garbage_sent"] = True
        if first:
            chunk = b"z" * CHUNK
            for item in NOTIFY_GARBAGE:
                if item is None:
                    for _ in range((64 << 20) // CHUNK):
                        c.send(chunk)
                else:
                    c.send(item)
            c.log("garbage sent")
            time.sleep(0.5)
            lits = b"".join(b" {1}\r\nq" for _ in range(17))
            c.send(b"* STATUS Lists (MESSAGES 1)" + lits + b"\r\n")
            c.log("17 literals sent")
    line = c.readline()
    if line.strip().upper() == b"DONE":
        c.send("%s OK Idle completed\r\n" % tag)
    else:
        c.send("%s BAD expected DONE\r\n" % tag)


# ------------------------------------------- IMAP resource tricks ----
# These greet without capabilities, so that any client sends a command;
# the trick comes in reply to the first one. With --implicit they do it
# inside TLS.

GREETING = "* OK hostile IMAP ready\r\n"


def trick_endless_line(c):
    c.send(GREETING)
    c.readline()
    c.send("* OK ")
    chunk = b"x" * CHUNK
    sent = 0
    while sent < ENDLESS_LIMIT:
        c.send(chunk)
        sent += len(chunk)
    c.log("200 MB sent without a line end; waiting")
    c.drain()


def trick_huge_literal(c):
    c.send(GREETING)
    c.readline()
    c.send("* 1 FETCH (BODY[] {4294967296}\r\n")
    line = b"y" * 78 + b"\r\n"
    body = (line * (TRICKLE_TOTAL // len(line) + 1))[:TRICKLE_TOTAL]
    for i in range(0, TRICKLE_TOTAL, CHUNK):
        c.send(body[i : i + CHUNK])
        time.sleep(TRICKLE_PAUSE)
    c.log("%d bytes of the 4 GiB literal sent; waiting" % TRICKLE_TOTAL)
    c.drain()


def trick_close_midway(c):
    c.send(GREETING)
    c.readline()
    c.close_after("* CAPABILITY IMAP4re")


def trick_garbage(c):
    junk = bytearray(os.urandom(4096))
    for i, b in enumerate(junk):
        if b in (0x0A, 0x0D):  # no line structure at all
            junk[i] = 0
    junk[0] = junk[2047] = 0  # NUL guaranteed, whatever urandom gave
    c.close_after(bytes(junk))


def trick_silent(c):
    c.drain()


TRICKS = {
    "imap-endless-line": trick_endless_line,
    "imap-huge-literal": trick_huge_literal,
    "imap-close-midway": trick_close_midway,
    "imap-garbage": trick_garbage,
    "imap-silent": trick_silent,
}


# --------------------------------------------------------------- POP3 ----

CAPA_TLS = ["USER", "SASL PLAIN", "UIDL"]

POP3 = {
    "pop3-no-stls": dict(capa=["USER", "SASL PLAIN", "UIDL"], stls="err"),
    "pop3-stls-inject": dict(capa=["STLS", "USER", "SASL PLAIN", "UIDL"], stls="inject"),
    "pop3-ok-implicit": dict(capa=CAPA_TLS, stls="err", implicit=True, needs_cert=True),
    "pop3-xoauth2": dict(
        capa=["STLS", "UIDL"],
        capa_tls=["SASL XOAUTH2 OAUTHBEARER", "UIDL"],
        stls="ok",
        needs_cert=True,
    ),
}

# What a failed OAuth exchange gets as its last challenge.
OAUTH_ERROR = {
    "XOAUTH2": "eyJzdGF0dXMiOiI0MDEifQ==",  # {"status":"401"}
    "OAUTHBEARER": base64.b64encode(
        b'{"status":"invalid_token","schemes":"bearer","scope":""}'
    ).decode(),
}


def pop3_session(c, cfg):
    state = dict(authed=False, user=None)

    def capa():
        return cfg.get("capa_tls", CAPA_TLS) if c.tls else cfg["capa"]

    def mechs():
        for line in capa():
            if line.startswith("SASL "):
                return line.split()[1:]
        return []

    if cfg.get("implicit"):
        c.start_tls()
    c.send("+OK hostile POP3 ready\r\n")
    while True:
        words = c.readline().decode("utf-8", "replace").rstrip("\r\n").split(" ")
        cmd, args = words[0].upper(), words[1:]
        if cmd == "CAPA":
            c.send("+OK\r\n%s\r\n.\r\n" % "\r\n".join(capa()))
        elif cmd == "QUIT":
            c.send("+OK bye\r\n")
            raise Closed("QUIT")
        elif cmd == "NOOP":
            c.send("+OK\r\n")
        elif cmd == "STLS":
            if c.tls or state["authed"] or cfg["stls"] == "err":
                c.send("-ERR STLS not available\r\n")
            elif cfg["stls"] == "inject":
                c.send("+OK Begin TLS\r\n+OK injected\r\n")
                c.start_tls()
            else:
                c.send("+OK Begin TLS negotiation\r\n")
                c.start_tls()
        elif state["authed"]:
            if cmd == "STAT":
                c.send("+OK 2 320\r\n")
            else:
                c.send("-ERR unknown command\r\n")
        elif cmd == "USER" and "USER" in capa():
            state["user"] = " ".join(args)
            c.send("+OK\r\n")
        elif cmd in ("PASS", "APOP"):
            c.credentials(cmd)
            if cmd == "PASS" and state["user"] == USER and " ".join(args) == PASSWORD:
                state["authed"] = True
                c.send("+OK logged in\r\n")
            else:
                c.send("-ERR [AUTH] invalid login\r\n")
            state["user"] = None
        elif cmd == "AUTH" and not args:
            c.send("+OK\r\n" + "".join(m + "\r\n" for m in mechs()) + ".\r\n")
        elif cmd == "AUTH":
            pop3_auth(c, state, mechs(), args)
        else:
            c.send("-ERR unknown command or wrong state\r\n")


def pop3_auth(c, state, mechs, args):
    mech = args[0].upper()
    if mech not in mechs:
        if len(args) > 1:
            c.credentials("AUTH " + mech)
        c.send("-ERR mechanism not offered\r\n")
        return
    if len(args) > 1:  # RFC 5034 initial response; "=" means empty
        ir = "" if args[1] == "=" else args[1]
    else:
        c.send("+ \r\n")
        ir = c.readline().decode("utf-8", "replace").strip()
    if ir == "*":
        c.send("-ERR AUTH cancelled\r\n")
        return
    c.credentials("AUTH " + mech)
    ok = plain_ok(ir) if mech == "PLAIN" else oauth_ok(mech, ir)
    if ok:
        state["authed"] = True
        c.send("+OK logged in\r\n")
    elif mech == "PLAIN":
        c.send("-ERR [AUTH] authentication failed\r\n")
    else:
        # OAuth failure: an error challenge, answered by an empty line.
        c.send("+ %s\r\n" % OAUTH_ERROR[mech])
        c.readline()
        c.send("-ERR auth failed\r\n")


# ------------------------------------------------ POP3 with a maildrop ----
# pop3-uidl-reuse: a POP3 server that works (implicit TLS, USER/PASS, AUTH
# PLAIN, STAT, LIST, UIDL, TOP, RETR, DELE, RSET, QUIT) over a maildrop kept
# in a JSON state file (--state), so that it persists across connections
# and a test can change it between them: make "u1" name a different
# message, as a broken server that reuses UIDLs does.
#
# State file: {"messages": [{"uidl": "u1", "data": "<the message>"}, ...]}
# The server reads it when a client logs in (the POP3 maildrop snapshot)
# and rewrites it (temporary file, fsync, rename) only at QUIT after DELE,
# removing exactly the messages deleted (same uidl and data), so that a
# change the test made meanwhile survives. A link dropped before QUIT
# deletes nothing. Line ends are sent as CRLF whatever the file holds;
# sizes (STAT, LIST) count the CRLF form.

POP3_MAILDROP = {
    "pop3-uidl-reuse": dict(
        capa=["TOP", "UIDL", "USER", "SASL PLAIN"], implicit=True, needs_cert=True
    ),
    # A server without UIDL (RFC 1939 only), with PIPELINING: UIDL gets
    # -ERR. fulmar refuses it unless pop3_no_uidl = message-id.
    "pop3-no-uidl": dict(
        capa=["TOP", "USER", "PIPELINING", "SASL PLAIN"],
        uidl=False,
        implicit=True,
        needs_cert=True,
    ),
    # Neither UIDL nor TOP: nothing to tell messages apart by.
    "pop3-no-uidl-no-top": dict(
        capa=["USER", "SASL PLAIN"], uidl=False, top=False, implicit=True, needs_cert=True
    ),
    # RETR answered by lines that never end in the terminating dot: 200 MB
    # of well-formed 1 KB lines (the body bound must stop the client).
    "pop3-endless-retr": dict(
        capa=["TOP", "UIDL", "USER", "PIPELINING", "SASL PLAIN"],
        retr="endless",
        implicit=True,
        needs_cert=True,
    ),
    # RETR answered by one line without an end: 200 MB without CRLF (the
    # line bound must stop the client).
    "pop3-endless-retr-line": dict(
        capa=["TOP", "UIDL", "USER", "PIPELINING", "SASL PLAIN"],
        retr="endless-line",
        implicit=True,
        needs_cert=True,
    ),
}

MAILDROP_A = (
    "From: Carol Example <carol@fulmar.test>\r\n"
    "To: alice@fulmar.test\r\n"
    "Subject: message A\r\n"
    "Date: Mon, 02 Jan 2023 10:00:00 +0000\r\n"
    "Message-ID: <a.uidl-reuse@hostile.fulmar.test>\r\n"
    "\r\n"
    "This is message A.\r\n"
)
MAILDROP_B = (
    "From: Dave Example <dave@fulmar.test>\r\n"
    "To: alice@fulmar.test\r\n"
    "Subject: message B\r\n"
    "Date: Tue, 03 Jan 2023 11:00:00 +0000\r\n"
    "Message-ID: <b.uidl-reuse@hostile.fulmar.test>\r\n"
    "\r\n"
    "This is message B, line 1.\r\n"
    ".A line that starts with a dot (dot-stuffed on the wire).\r\n"
    "Line 3.\r\n"
)
# Not in the default maildrop: what a test puts under "u1" to play reuse.
MAILDROP_C = (
    "From: Erin Example <erin@fulmar.test>\r\n"
    "To: alice@fulmar.test\r\n"
    "Subject: message C, a different message under an old UIDL\r\n"
    "Date: Wed, 04 Jan 2023 12:00:00 +0000\r\n"
    "Message-ID: <c.uidl-reuse@hostile.fulmar.test>\r\n"
    "\r\n"
    "This is message C. It is longer than A, so its size differs too.\r\n"
)
MAILDROP_DEFAULT = [("u1", MAILDROP_A), ("u2", MAILDROP_B)]

# One maildrop per process: the state file and who holds it.
maildrop_lock = threading.Lock()
maildrop_holder = [None]  # connection number of the session holding it


def maildrop_wire(text):
    """A message as POP3 counts and sends it: CRLF line ends, no dots
    stuffed yet, ending in CRLF."""
    data = text.encode("utf-8", "surrogateescape")
    lines = re.split(rb"\r?\n", data)
    if lines[-1] == b"":
        lines.pop()
    return b"".join(line + b"\r\n" for line in lines)


def maildrop_valid_uidl(u):
    # RFC 1939: 1 to 70 characters from 0x21 to 0x7E.
    return isinstance(u, str) and 1 <= len(u) <= 70 and all("!" <= ch <= "~" for ch in u)


def maildrop_load(path):
    """[(uidl, data str)] from the state file; ValueError if malformed."""
    with open(path, encoding="utf-8") as f:
        state = json.load(f)
    out = []
    for m in state.get("messages", []):
        if not (maildrop_valid_uidl(m.get("uidl")) and isinstance(m.get("data"), str)):
            raise ValueError(("bad entry in %s: %r" % (path, m))[:200])
        out.append((m["uidl"], m["data"]))
    return out


def maildrop_save(path, msgs):
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump({"messages": [{"uidl": u, "data": d} for u, d in msgs]}, f, indent=1)
        f.write("\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def mbox_messages(path):
    """The messages of an mbox file (mboxrd: '>From ' lines unquoted)."""
    with open(path, encoding="utf-8", errors="surrogateescape", newline="") as f:
        lines = re.split(r"\r?\n", f.read())
    if lines[-1] == "":
        lines.pop()
    msgs, cur, prev_blank = [], None, True
    for line in lines:
        if line.startswith("From ") and prev_blank:
            if cur is not None:
                msgs.append(cur)
            cur = []
        elif cur is not None:
            cur.append(re.sub(r"^>(>*From )", r"\1", line))
        prev_blank = line == ""
    if cur is not None:
        msgs.append(cur)
    out = []
    for m in msgs:
        if m and m[-1] == "":  # the blank line before the next From_
            m = m[:-1]
        out.append("".join(line + "\r\n" for line in m))
    return out


def maildrop_init(args):
    """Create the state file unless it exists: from --messages (UIDLs u1,
    u2, ... in file order) or with messages A (u1) and B (u2)."""
    if os.path.exists(args.state) and os.path.getsize(args.state) > 0:
        maildrop_load(args.state)  # fail now, not at the first login
        log("maildrop: using %s as it is" % args.state)
        return
    if args.messages:
        msgs = [("u%d" % (i + 1), m) for i, m in enumerate(mbox_messages(args.messages))]
    else:
        msgs = MAILDROP_DEFAULT
    maildrop_save(args.state, msgs)
    log("maildrop: %s created with %d messages" % (args.state, len(msgs)))


def pop3_maildrop_session(c, cfg, args):
    st = dict(user=None, msgs=None, deleted=set())
    try:
        if cfg.get("implicit"):
            c.start_tls()
        c.send("+OK hostile POP3 ready\r\n")
        while True:
            words = c.readline().decode("utf-8", "replace").rstrip("\r\n").split(" ")
            cmd, rest = words[0].upper(), words[1:]
            if cmd == "CAPA":
                c.send("+OK\r\n%s\r\n.\r\n" % "\r\n".join(cfg["capa"]))
            elif cmd == "QUIT":
                c.send(maildrop_quit(c, st, args))
                raise Closed("QUIT")
            elif cmd == "NOOP":
                c.send("+OK\r\n")
            elif st["msgs"] is None:
                maildrop_auth_state(c, st, args, cmd, rest)
            else:
                maildrop_transaction(c, cfg, st, cmd, rest)
    finally:
        if st["msgs"] is not None:
            if st["deleted"]:
                c.log("no QUIT: %d deletion(s) not applied" % len(st["deleted"]))
            with maildrop_lock:
                maildrop_holder[0] = None


def maildrop_login(c, st, args):
    """Lock the maildrop and take its snapshot, or say why not."""
    with maildrop_lock:
        if maildrop_holder[0] is not None:
            return "-ERR [IN-USE] maildrop locked by another session\r\n"
        try:
            msgs = maildrop_load(args.state)
        except (OSError, ValueError) as e:
            c.log("maildrop: %s" % e)
            return "-ERR [SYS/TEMP] cannot read the maildrop\r\n"
        maildrop_holder[0] = c.no
    st["msgs"] = [(u, d, maildrop_wire(d)) for u, d in msgs]
    c.log("logged in; maildrop: %s" % " ".join(u for u, _, _ in st["msgs"]))
    return "+OK logged in, %d messages\r\n" % len(msgs)


def maildrop_auth_state(c, st, args, cmd, rest):
    if cmd == "USER":
        st["user"] = " ".join(rest)
        c.send("+OK\r\n")
    elif cmd == "PASS":
        c.credentials(cmd)
        if st["user"] == USER and " ".join(rest) == PASSWORD:
            c.send(maildrop_login(c, st, args))
        else:
            c.send("-ERR [AUTH] invalid login\r\n")
        st["user"] = None
    elif cmd == "AUTH" and not rest:
        c.send("+OK\r\nPLAIN\r\n.\r\n")
    elif cmd == "AUTH":
        if rest[0].upper() != "PLAIN":
            if len(rest) > 1:
                c.credentials("AUTH " + rest[0].upper())
            c.send("-ERR mechanism not offered\r\n")
            return
        if len(rest) > 1:
            ir = "" if rest[1] == "=" else rest[1]
        else:
            c.send("+ \r\n")
            ir = c.readline().decode("utf-8", "replace").strip()
        if ir == "*":
            c.send("-ERR AUTH cancelled\r\n")
            return
        c.credentials("AUTH PLAIN")
        if plain_ok(ir):
            c.send(maildrop_login(c, st, args))
        else:
            c.send("-ERR [AUTH] authentication failed\r\n")
    else:
        c.send("-ERR unknown command or wrong state\r\n")


def maildrop_msg(st, arg):
    """Index of message number ARG (1-based), or None if there is no such
    undeleted message."""
    if not arg.isdigit():
        return None
    i = int(arg) - 1
    if 0 <= i < len(st["msgs"]) and i not in st["deleted"]:
        return i
    return None


def maildrop_dot_stuff(data):
    return re.sub(rb"(?m)^\.", b"..", data)


def maildrop_endless(c, retr):
    """An answer to RETR that never ends (see pop3-endless-retr*)."""
    c.send(b"+OK here it comes\r\n")
    if retr == "endless":
        chunk = (b"X" * 1022 + b"\r\n") * 64
    else:
        chunk = b"Y" * CHUNK
    sent = 0
    while sent < ENDLESS_LIMIT:
        c.send(chunk)
        sent += len(chunk)
    c.log("200 MB of RETR sent without its end; waiting")
    c.drain()


def maildrop_transaction(c, cfg, st, cmd, rest):
    msgs, deleted = st["msgs"], st["deleted"]
    live = [i for i in range(len(msgs)) if i not in deleted]
    if (cmd == "UIDL" and not cfg.get("uidl", True)) or (
        cmd == "TOP" and not cfg.get("top", True)
    ):
        c.log("%s refused: not supported" % cmd)
        c.send("-ERR unknown command\r\n")
    elif cmd == "RETR" and cfg.get("retr") and maildrop_msg(st, (rest or [""])[0]) is not None:
        c.log("RETR %s: answering without end" % rest[0])
        maildrop_endless(c, cfg["retr"])
    elif cmd == "STAT":
        c.send("+OK %d %d\r\n" % (len(live), sum(len(msgs[i][2]) for i in live)))
    elif cmd in ("LIST", "UIDL") and not rest:

        def item(i):
            return len(msgs[i][2]) if cmd == "LIST" else msgs[i][0]

        body = "".join("%d %s\r\n" % (i + 1, item(i)) for i in live)
        c.send("+OK %d messages\r\n%s.\r\n" % (len(live), body))
    elif cmd in ("LIST", "UIDL", "RETR", "TOP", "DELE"):
        i = maildrop_msg(st, rest[0])
        if i is None:
            c.send("-ERR no such message\r\n")
            return
        uidl, _, wire = msgs[i]
        c.log("%s %s (%s, %d octets)" % (cmd, " ".join(rest), uidl, len(wire)))
        if cmd == "LIST":
            c.send("+OK %d %d\r\n" % (i + 1, len(wire)))
        elif cmd == "UIDL":
            c.send("+OK %d %s\r\n" % (i + 1, uidl))
        elif cmd == "RETR":
            c.send(b"+OK %d octets\r\n" % len(wire) + maildrop_dot_stuff(wire) + b".\r\n")
        elif cmd == "DELE":
            deleted.add(i)
            c.send("+OK message %d deleted\r\n" % (i + 1))
        elif len(rest) < 2 or not rest[1].isdigit():
            c.send("-ERR usage: TOP msg n\r\n")
        else:
            head, sep, body = wire.partition(b"\r\n\r\n")
            lines = body.split(b"\r\n")[:-1] if sep else []
            part = head + b"\r\n" + sep[2:] + b"".join(
                line + b"\r\n" for line in lines[: int(rest[1])]
            )
            c.send(b"+OK\r\n" + maildrop_dot_stuff(part) + b".\r\n")
    elif cmd == "RSET":
        deleted.clear()
        c.send("+OK %d messages\r\n" % len(msgs))
    else:
        c.send("-ERR unknown command or wrong state\r\n")


def maildrop_quit(c, st, args):
    """QUIT: in the transaction state, apply the deletions (UPDATE)."""
    if st["msgs"] is None or not st["deleted"]:
        return "+OK bye\r\n"
    gone = [(st["msgs"][i][0], st["msgs"][i][1]) for i in sorted(st["deleted"])]
    with maildrop_lock:
        try:
            now = maildrop_load(args.state)
            for m in gone:
                if m in now:
                    now.remove(m)
            maildrop_save(args.state, now)
        except (OSError, ValueError) as e:
            c.log("maildrop: %s" % e)
            return "-ERR [SYS/TEMP] deletions not applied\r\n"
    c.log("QUIT: deleted %s" % " ".join(u for u, _ in gone))
    st["deleted"].clear()
    return "+OK bye, %d deleted\r\n" % len(gone)


# --------------------------------------------------------------- SMTP ----

EHLO_TLS = ["AUTH PLAIN LOGIN", "8BITMIME"]

SMTP = {
    "smtp-no-starttls": dict(ehlo=["AUTH PLAIN LOGIN", "8BITMIME"], starttls="err"),
    "smtp-starttls-inject": dict(
        ehlo=["STARTTLS", "AUTH PLAIN LOGIN", "8BITMIME"], starttls="inject"
    ),
    # A well-behaved control case, like Postfix with smtpd_tls_auth_only.
    "smtp-starttls-ok": dict(ehlo=["STARTTLS", "8BITMIME"], starttls="ok", needs_cert=True),
}

# Sending: a normal server (STARTTLS, then AUTH) whose answers to the
# transaction are scripted, for the replies the real Postfix of the suite
# will not give. "mail", "data" and "end" (after the final dot) replace
# the 250/354/250; "rcpt" maps a recipient address (lower case) to its
# reply; "end": None closes the connection after the data instead of
# answering; "ehlo_tls" replaces the extensions after TLS.
SENDING = {
    "smtp-mail-530-starttls": dict(mail="530 5.7.0 Must issue a STARTTLS command first"),
    "smtp-mail-530-auth": dict(mail="530 5.7.0 Authentication required"),
    "smtp-rcpt-550": dict(
        rcpt={
            "nobody@fulmar.test": "550 5.1.1 <nobody@fulmar.test>: Recipient address "
            "rejected: User unknown in virtual mailbox table",
            "ghost@fulmar.test": "550 5.1.1 <ghost@fulmar.test>: Recipient address "
            "rejected: User unknown in virtual mailbox table",
        }
    ),
    "smtp-rcpt-451": dict(rcpt={"*": "451 4.3.0 <x>: Temporary lookup failure"}),
    "smtp-size-552": dict(
        ehlo_tls=EHLO_TLS + ["SIZE 2000"],
        mail_size_over=(2000, "552 5.3.4 Message size exceeds fixed limit"),
    ),
    "smtp-data-523": dict(end="523 5.3.4 Message too big for system"),
    "smtp-sendas-554": dict(
        end="554 5.2.0 STOREDRV.Submission.Exception:SendAsDeniedException."
        "MapiExceptionSendAsDenied; Failed to process message due to a permanent "
        "exception with message Cannot submit message."
    ),
    "smtp-data-drop": dict(end=None),
}
for _cfg in SENDING.values():
    _cfg.update(ehlo=["STARTTLS", "8BITMIME"], starttls="ok", needs_cert=True)
SMTP.update(SENDING)


def smtp_session(c, cfg):
    state = dict(authed=False)

    def ehlo():
        return cfg.get("ehlo_tls", EHLO_TLS) if c.tls else cfg["ehlo"]

    c.send("220 hostile.fulmar.test ESMTP hostile\r\n")
    while True:
        line = c.readline().decode("utf-8", "replace").rstrip("\r\n")
        words = line.split(" ")
        cmd, args = words[0].upper(), words[1:]
        if cmd == "EHLO":
            ext = ["hostile.fulmar.test"] + ehlo()
            c.send("".join("250-%s\r\n" % e for e in ext[:-1]) + "250 %s\r\n" % ext[-1])
        elif cmd == "HELO":
            c.send("250 hostile.fulmar.test\r\n")
        elif cmd == "QUIT":
            c.send("221 2.0.0 bye\r\n")
            raise Closed("QUIT")
        elif cmd == "STARTTLS":
            if c.tls or cfg["starttls"] == "err":
                c.send("502 5.5.1 STARTTLS not available\r\n")
            elif cfg["starttls"] == "inject":
                c.send("220 go ahead\r\n250 injected\r\n")
                c.start_tls()
                state["authed"] = False
            else:
                c.send("220 2.0.0 Ready to start TLS\r\n")
                c.start_tls()
                state["authed"] = False
        elif cmd == "AUTH":
            smtp_auth(c, state, ehlo(), args)
        elif cmd == "MAIL" and "mail" in cfg:
            c.send(cfg["mail"] + "\r\n")
        elif cmd == "MAIL" and "mail_size_over" in cfg:
            limit, reply = cfg["mail_size_over"]
            m = re.search(r"SIZE=(\d+)", line, re.I)
            c.send((reply if m and int(m.group(1)) > limit else "250 2.1.0 ok") + "\r\n")
        elif cmd == "RCPT" and "rcpt" in cfg:
            m = re.search(r"<([^>]*)>", line)
            addr = m.group(1).lower() if m else ""
            reply = cfg["rcpt"].get(addr, cfg["rcpt"].get("*", "250 2.1.5 ok"))
            c.send(reply + "\r\n")
        elif cmd in ("MAIL", "RCPT", "RSET", "NOOP"):
            c.send("250 2.0.0 ok\r\n")
        elif cmd == "DATA":
            c.send("354 end with <CRLF>.<CRLF>\r\n")
            while c.readline().rstrip(b"\r\n") != b".":
                pass
            if "end" in cfg and cfg["end"] is None:
                c.log("closing after the data, without a reply")
                raise Closed("dropped after the data")
            c.send(cfg.get("end", "250 2.0.0 queued as HOSTILE") + "\r\n")
        else:
            c.send("500 5.5.2 unknown command\r\n")


def smtp_auth(c, state, ehlo, args):
    offered = [m for e in ehlo if e.startswith("AUTH ") for m in e.split()[1:]]
    mech = args[0].upper() if args else ""
    if state["authed"]:
        c.send("503 5.5.1 already authenticated\r\n")
        return
    if mech not in offered:
        if len(args) > 1:
            c.credentials("AUTH " + mech)
        c.send("504 5.5.4 mechanism not offered\r\n")
        return

    def ask(prompt):
        c.send("334 %s\r\n" % prompt)
        return c.readline().decode("utf-8", "replace").strip()

    if mech == "PLAIN":
        ir = args[1] if len(args) > 1 else ask("")
        cancelled = ir == "*"
        ok = not cancelled and plain_ok("" if ir == "=" else ir)
    else:  # LOGIN, the user name may come as an initial response
        user = args[1] if len(args) > 1 else ask("VXNlcm5hbWU6")  # Username:
        cancelled = user == "*"
        if not cancelled:
            pw = ask("UGFzc3dvcmQ6")  # Password:
            cancelled = pw == "*"
        ok = (
            not cancelled
            and b64decode(user) == USER.encode()
            and b64decode(pw) == PASSWORD.encode()
        )
    if not cancelled:
        c.credentials("AUTH " + mech)
    if cancelled:
        c.send("501 5.7.0 AUTH cancelled\r\n")
    elif ok:
        state["authed"] = True
        c.send("235 2.7.0 Authentication successful\r\n")
    else:
        c.send("535 5.7.8 Authentication credentials invalid\r\n")


# --------------------------------------------------------------- main ----

SCENARIOS = sorted(
    list(IMAP) + list(TRICKS) + list(POP3) + list(SMTP) + list(POP3_MAILDROP) + ["smtp-blackhole"]
)


def handle(sock, no, args, rec, tls_ctx):
    """Thread body: one client, one scenario. Never lets an error escape."""
    c = Conn(sock, no, rec, tls_ctx)
    name = args.scenario
    try:
        if name in TRICKS:
            if args.implicit:
                c.start_tls()
            TRICKS[name](c)
        elif name in IMAP:
            imap_session(c, IMAP[name])
        elif name in POP3:
            pop3_session(c, POP3[name])
        elif name in POP3_MAILDROP:
            pop3_maildrop_session(c, POP3_MAILDROP[name], args)
        else:
            smtp_session(c, SMTP[name])
    except Closed as e:
        c.log("end: %s" % e)
    except (OSError, ssl.SSLError) as e:
        c.log("end: %s" % e)
    except Exception as e:  # a bug here must not take the server down
        c.log("end: internal error %r" % e)
    finally:
        try:
            c.sock.close()
        except OSError:
            pass


def parse_args():
    p = argparse.ArgumentParser(
        description="Scripted hostile mail servers (see tests/hostile/README).",
        epilog="scenarios: " + " ".join(SCENARIOS),
    )
    p.add_argument("--scenario", required=True, choices=SCENARIOS, metavar="NAME")
    p.add_argument("--port-file", required=True, help="gets the port number")
    p.add_argument("--record", required=True, help="client bytes appended here")
    p.add_argument("--cert", help="PEM certificate (chain) for TLS")
    p.add_argument("--key", help="PEM private key for --cert")
    p.add_argument(
        "--implicit",
        action="store_true",
        help="resource tricks (imap-endless-line ...) inside implicit TLS",
    )
    p.add_argument("--connections", type=int, default=4, help="default 4")
    p.add_argument("--lifetime", type=float, default=60, help="seconds, default 60")
    p.add_argument("--state", help="pop3 maildrop scenarios: the maildrop, a JSON file")
    p.add_argument(
        "--messages", help="pop3 maildrop scenarios: mbox to create --state from if missing"
    )
    a = p.parse_args()
    if bool(a.cert) != bool(a.key):
        p.error("--cert and --key go together")
    cfg = (
        IMAP.get(a.scenario)
        or POP3.get(a.scenario)
        or SMTP.get(a.scenario)
        or POP3_MAILDROP.get(a.scenario)
        or {}
    )
    if cfg.get("needs_cert") and not a.cert:
        p.error("scenario %s needs --cert and --key" % a.scenario)
    if a.implicit and a.scenario not in TRICKS:
        p.error("--implicit is only for: %s" % " ".join(sorted(TRICKS)))
    if a.implicit and not a.cert:
        p.error("--implicit needs --cert and --key")
    if a.scenario in POP3_MAILDROP and not a.state:
        p.error("scenario %s needs --state" % a.scenario)
    if (a.state or a.messages) and a.scenario not in POP3_MAILDROP:
        p.error("--state and --messages are only for: %s" % " ".join(sorted(POP3_MAILDROP)))
    if a.connections < 1 or a.lifetime <= 0:
        p.error("--connections and --lifetime must be positive")
    return a


def blackhole(lsock, args):
    """smtp-blackhole: a port whose SYNs go unanswered, as on a network
    that drops mail submission: the accept queue (backlog 0) is filled by
    our own connections and never emptied, so the kernel drops further
    SYNs and a client's connect() times out."""
    lsock.listen(0)
    fillers = []
    for _ in range(3):
        f = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        f.setblocking(False)
        try:
            f.connect(lsock.getsockname())
        except BlockingIOError:
            pass
        fillers.append(f)
    time.sleep(0.3)
    port = lsock.getsockname()[1]
    tmp = args.port_file + ".tmp"
    with open(tmp, "w") as f:
        f.write("%d\n" % port)
    os.replace(tmp, args.port_file)
    log("smtp-blackhole: 127.0.0.1:%d drops every new SYN" % port)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    stop.wait(args.lifetime)
    log("exit")
    os._exit(0)


def main():
    args = parse_args()
    if args.scenario in POP3_MAILDROP:
        try:
            maildrop_init(args)
        except (OSError, ValueError) as e:
            sys.exit("hostile.py: --state %s: %s" % (args.state, e))
    tls_ctx = None
    if args.cert:
        tls_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        tls_ctx.load_cert_chain(args.cert, args.key)
    rec = Recorder(args.record)

    stop = threading.Event()

    def on_signal(signum, _frame):
        log("signal %d, stopping" % signum)
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    lsock.bind(("127.0.0.1", 0))
    if args.scenario == "smtp-blackhole":
        blackhole(lsock, args)
    lsock.listen(args.connections)
    lsock.settimeout(0.2)  # wake up for the signal and the deadline
    port = lsock.getsockname()[1]
    tmp = args.port_file + ".tmp"
    with open(tmp, "w") as f:
        f.write("%d\n" % port)
    os.replace(tmp, args.port_file)
    log("%s listening on 127.0.0.1:%d" % (args.scenario, port))

    deadline = T0 + args.lifetime
    threads = []
    while len(threads) < args.connections and not stop.is_set():
        if time.monotonic() >= deadline:
            break
        try:
            sock, peer = lsock.accept()
        except socket.timeout:
            continue
        except OSError as e:
            log("accept: %s" % e)
            continue
        sock.settimeout(None)
        no = len(threads) + 1
        log("conn %d: from %s:%d" % (no, peer[0], peer[1]))
        t = threading.Thread(
            target=handle, args=(sock, no, args, rec, tls_ctx), daemon=True
        )
        t.start()
        threads.append(t)
    lsock.close()  # further clients get "connection refused"

    while not stop.is_set() and any(t.is_alive() for t in threads):
        left = deadline - time.monotonic()
        if left <= 0:
            break
        stop.wait(min(left, 0.2))
    if time.monotonic() >= deadline:
        log("lifetime of %g s is over" % args.lifetime)
    # The record is written unbuffered under its lock: once we hold the
    # lock no write is half done. _exit ends the threads still blocked in
    # recv() or sendall() without waiting for them.
    with rec.lock:
        log("exit")
        os._exit(0)


if __name__ == "__main__":
    main()
