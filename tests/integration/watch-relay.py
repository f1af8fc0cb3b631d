#!/usr/bin/python3
# SPDX-License-Identifier: GPL-3.0-or-later
#
# A TCP/Unix relay for watch.test: LISTEN and TARGET are tcp:PORT (on
# 127.0.0.1; tcp:0 picks a free port, written to --port-file) or unix:PATH.
# Each connection is counted (--count-file) and piped both ways; --rate
# throttles what the target sends (bytes per second), so a download takes
# long enough to be interrupted; --delay MS holds every chunk that long in
# each direction, as a link with a round trip of twice that would (the
# IMAP benchmark's distant-server cases). It stops by itself after
# --lifetime seconds.
import argparse
import collections
import os
import socket
import sys
import threading
import time


def endpoint(spec):
    kind, _, rest = spec.partition(":")
    if kind == "tcp":
        return (socket.AF_INET, ("127.0.0.1", int(rest)))
    if kind == "unix":
        return (socket.AF_UNIX, rest)
    sys.exit("bad endpoint: " + spec)


def write_atomic(path, text):
    with open(path + ".tmp", "w") as f:
        f.write(text)
    os.rename(path + ".tmp", path)


def shut(*socks):
    for s in socks:
        try:
            s.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


def pipe(src, dst, rate):
    try:
        while True:
            data = src.recv(1024 if rate else 65536)
            if not data:
                break
            dst.sendall(data)
            if rate:
                time.sleep(len(data) / rate)
    except OSError:
        pass
    shut(src, dst)


def pipe_delayed(src, dst, delay):
    """As pipe, each chunk sent delay seconds after it came; chunks in
    flight do not wait for one another."""
    queue = collections.deque()
    cv = threading.Condition()
    ended = []

    def sender():
        try:
            while True:
                with cv:
                    while not queue and not ended:
                        cv.wait()
                    if not queue:
                        break
                    due, data = queue.popleft()
                wait = due - time.monotonic()
                if wait > 0:
                    time.sleep(wait)
                dst.sendall(data)
        except OSError:
            pass
        shut(src, dst)

    threading.Thread(target=sender, daemon=True).start()
    while True:
        try:
            data = src.recv(65536)
        except OSError:
            data = b""
        with cv:
            if data:
                queue.append((time.monotonic() + delay, data))
            else:
                ended.append(True)
            cv.notify()
        if not data:
            break


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("listen")
    ap.add_argument("target")
    ap.add_argument("--port-file")
    ap.add_argument("--count-file")
    ap.add_argument("--rate", type=float, default=0)
    ap.add_argument("--delay", type=float, default=0, metavar="MS")
    ap.add_argument("--lifetime", type=float, default=300)
    a = ap.parse_args()
    lfam, laddr = endpoint(a.listen)
    tfam, taddr = endpoint(a.target)
    ls = socket.socket(lfam, socket.SOCK_STREAM)
    if lfam == socket.AF_INET:
        ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(laddr)
    ls.listen(16)
    if a.port_file and lfam == socket.AF_INET:
        write_atomic(a.port_file, "%d\n" % ls.getsockname()[1])
    deadline = time.monotonic() + a.lifetime
    count = 0
    while time.monotonic() < deadline:
        ls.settimeout(max(0.1, deadline - time.monotonic()))
        try:
            c, _ = ls.accept()
        except socket.timeout:
            break
        count += 1
        if a.count_file:
            write_atomic(a.count_file, "%d\n" % count)
        t = socket.socket(tfam, socket.SOCK_STREAM)
        try:
            t.connect(taddr)
        except OSError:
            c.close()
            t.close()
            continue
        for s in (c, t) if a.delay > 0 else ():
            if s.family == socket.AF_INET:
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for src, dst, rate in ((c, t, 0), (t, c, a.rate)):
            if a.delay > 0:
                job = (pipe_delayed, (src, dst, a.delay / 1000))
            else:
                job = (pipe, (src, dst, rate))
            threading.Thread(target=job[0], args=job[1], daemon=True).start()
    os._exit(0)


main()
