#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-3.0-or-later
"""Write a maildir of realistic messages for the folder-open benchmark.

    gen-corpus.py --count N --seed S --out DIR [--quiet]

DIR gets {cur,new,tmp}; DIR must not exist yet or be empty, so that a
mistyped path never mixes generated mail with real mail. The same count
and seed give the same files, byte for byte (names, contents, mtimes).

What the messages look like, and why:
  * threads of 1-30 messages (most are short) linked by Message-ID,
    In-Reply-To and References, subjects with "Re:" chains (also "RE:",
    "AW:", "Fwd:") and list tags, dates spread over three years;
  * senders and recipients from a pool of ~500 people, many with
    non-ASCII names sent as RFC 2047 encoded words (B and Q);
  * ~15% of the subjects non-ASCII, as UTF-8 or ISO-8859-1 encoded words;
  * about a third of the threads on a mailing list (List-Id and friends);
  * a realistic delivery header block: Return-Path, Received, DKIM;
  * bodies in UTF-8 or ISO-8859-1, sent 7bit, 8bit or quoted-printable;
    ~30% multipart/alternative (text + HTML), ~10% multipart/mixed with
    base64 attachments from 5 KB to 2 MB, so the mean size lands near
    45 KB while most messages are 2-20 KB of text;
  * maildir flags: ~70% seen (S), ~10% replied (R), ~5% flagged (F); the
    newest unseen ones sit in new/ without an info part, as a mail
    delivery agent leaves them.

Only the standard library is used. Attachment bytes come from one seeded
random pool, sliced at random offsets, so that 50,000 messages (~2.2 GB)
take a few minutes: the run is bound by the disk, not by Python.
"""

import argparse
import base64
import binascii
import datetime as dt
import os
import random
import sys
import time

# Words for bodies. Three pools: plain ASCII, Latin-1 (can be sent as
# ISO-8859-1), and characters only UTF-8 can carry.
ASCII_WORDS = """
the of and to in is that for it as with was on be by this are or from at
an have not but they which one you all were we when there can has more if
their will about would what so up out them some could into then than its
only other new these two may first any like now my such make over our even
most me state after also made many did must before back see through way
where get much go well your know should down work year because come people
just say each those take day good how long three own being very under last
right still too both same while might another around again off never
patch build release server client mailbox folder message thread index
cache header config option test kernel driver commit branch merge review
bug crash fix regression memory leak timeout socket certificate signature
deadline meeting agenda budget invoice contract quarterly report draft
schedule proposal customer shipment warehouse estimate approval schedule
""".split()

LATIN1_WORDS = """
café résumé naïve façade déjà über schön Straße Grüße größer Mädchen
Tschüss Müller Köln Zürich français élève étude hôtel garçon crème brûlée
año mañana señor niño pingüino acción información canción corazón São
Paulo João coração ação Ærø Søren København blåbær fjørd Göteborg Malmö
Ångström après-midi Noël Ça Là-bas Österreich Bücher Prüfung Bestätigung
Rückmeldung Änderung Überweisung Lösung Grundsätzlich naïveté coöperate
""".split()

UTF8_WORDS = """
Łódź Kraków żółw źdźbło Gdańsk Dvořák řeřicha Příliš žluťoučký kůň Škoda
Москва привет спасибо письмо сервер Ελλάδα ευχαριστώ Αθήνα 東京 日本語
メール 会議 北京 谢谢 서울 감사합니다 İstanbul Ğ ş ı Đorđe Čačak – — …
“quoted” ‘single’ € ™ • → ✓ ☺ 🙂 🎉 👍
""".split()

FIRST_NAMES = """
James Mary Robert Patricia John Jennifer Michael Linda David Elizabeth
William Barbara Richard Susan Joseph Jessica Thomas Sarah Charles Karen
Daniel Nancy Matthew Lisa Anthony Betty Mark Margaret Steven Sandra Paul
Ashley Andrew Emily Joshua Donna Kevin Michelle Brian Carol George Amanda
Hans Jürgen Günter Jörg Björn Søren Åsa Ingrid Håkon Øystein Renée Zoë
Chloé Hélène Agnès Frédéric François Jérôme Céline José María Ángel Raúl
Inés Sebastián Łukasz Paweł Małgorzata Wojciech Jiří Tomáš Dvořák Ondřej
Dmitri Дмитрий Ольга Сергей Анна Γιώργος Μαρία Kenji 健太 さくら 李娜 王伟
민준 서연 İlker Çağla Gökhan Şebnem Đorđe Ivana Niamh Siobhán Seán Aoife
""".split()

LAST_NAMES = """
Smith Johnson Williams Brown Jones Garcia Miller Davis Rodriguez Martinez
Hernandez Lopez Gonzalez Wilson Anderson Thomas Taylor Moore Jackson Martin
Lee Thompson White Harris Clark Lewis Robinson Walker Young Allen King
Müller Schröder Weiß Groß Köhler Bäcker Jäger Krüger Hoffmann Schäfer
Lefèvre Bérénice Dupré Gauthier Moreau Peña Núñez Ibáñez Muñoz Álvarez
Kowalski Wiśniewski Wójcik Kamiński Łukasik Novák Dvořáková Černý Procházka
Иванов Смирнова Петров Παπαδόπουλος Nakamura 田中 佐藤 김 박 Yılmaz Öztürk
Şahin Jovanović Petrović Ó'Brien Ní Bhriain Andersen Østergaard Håkansson
""".split()

DOMAINS = """
example.org example.com example.net mail.example.de post.example.fr
corp.example.co.uk uni.example.edu lists.example.org dev.example.io
example.jp example.ru correo.example.es example.pl example.cz
""".split()

SUBJECTS_ASCII = [
    "Build failure on arm64 after the last merge",
    "Meeting notes from Tuesday",
    "Quarterly report draft for review",
    "Question about the config file format",
    "Patch: fix memory leak in the header cache",
    "Release planning for the next version",
    "Server migration this weekend",
    "Invoice {n} overdue",
    "Your order {n} has shipped",
    "Lunch on Friday?",
    "Proposal for the new index format",
    "Crash when opening a large mailbox",
    "[PATCH v{v} {n}/{m}] store: write summaries atomically",
    "Re-scheduling our call",
    "Travel arrangements for the conference",
    "Budget approval needed by end of month",
    "Slow startup with 50k messages",
    "Access to the staging environment",
    "Minutes of the board meeting",
    "Holiday schedule",
    "Certificate expires in {n} days",
    "Feedback on the design document",
    "Weekly status update, week {n}",
    "New hire onboarding checklist",
    "Security advisory for version {v}.{n}",
]

SUBJECTS_NONASCII = [
    "Grüße aus Köln — Termin nächste Woche",
    "Résumé de la réunion du {n} mars",
    "Änderung der Überweisung",
    "Información sobre el pedido nº {n}",
    "Spotkanie w Łodzi — potwierdzenie",
    "Příliš žluťoučký kůň: oprava chyby",
    "Встреча в понедельник",
    "Отчёт за квартал {n}",
    "会議の議事録 ({n})",
    "Προσφορά για το έργο",
    "Café après-midi ☕",
    "Bestätigung Ihrer Bestellung {n}",
    "Søknad om permisjon — Håkon",
    "Rückmeldung zur Prüfung",
    "Re-envío: canción de Año Nuevo 🎉",
    "Zürich → München: Reiseplanung",
]

LISTS = [
    ("Fulmar development", "fulmar-dev.lists.example.org", "fulmar-dev"),
    ("Debian user support", "debian-user.lists.example.org", "debian-user"),
    ("Kernel build robots", "kbuild.lists.example.org", "kbuild"),
    ("Local hiking club", "wandern.lists.example.de", "Wandern"),
    ("Announcements", "announce.lists.example.com", "announce"),
    ("Photography forum", "photo.lists.example.net", "photo"),
    ("Mail client users", "mua-users.lists.example.org", "mua-users"),
    ("Équipe projet", "equipe.lists.example.fr", "équipe"),
]

MAILERS = [
    ("User-Agent", "NeoMutt/20220429"),
    ("User-Agent", "Mozilla/5.0 (X11; Linux x86_64; rv:115.0) "
     "Gecko/20100101 Thunderbird/115.6.0"),
    ("X-Mailer", "Apple Mail (2.3731.700.6)"),
    ("X-Mailer", "Microsoft Outlook 16.0"),
    ("User-Agent", "Roundcube Webmail/1.6.5"),
    ("X-Mailer", "git-send-email 2.39.2"),
    ("User-Agent", "Evolution 3.46.4-2"),
]

ATTACHMENTS = [
    ("application/pdf", "report-{n}.pdf"),
    ("application/pdf", "Rechnung_{n}.pdf"),
    ("image/jpeg", "IMG_{n}.jpg"),
    ("image/png", "screenshot-{n}.png"),
    ("application/zip", "logs-{n}.zip"),
    ("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
     "Übersicht {n}.xlsx"),
    ("application/vnd.openxmlformats-officedocument.presentationml."
     "presentation", "présentation-{n}.pptx"),
    ("application/octet-stream", "core.{n}.gz"),
]

ME = ("Pat Reader", "pat@example.org")
START = dt.datetime(2022, 1, 1, tzinfo=dt.timezone.utc)
SPAN_SECONDS = 3 * 365 * 86400
TZ_OFFSETS = [-480, -420, -300, -240, 0, 0, 60, 60, 60, 120, 120, 180, 330,
              540, 600]


def is_ascii(s):
    return all(ord(c) < 128 for c in s)


def is_latin1(s):
    return all(ord(c) < 256 for c in s)


def q_word(s, charset):
    """One RFC 2047 Q encoded word (no length check: callers chunk)."""
    out = []
    for b in s.encode(charset):
        c = chr(b)
        if c == " ":
            out.append("_")
        elif c.isalnum() and b < 128:
            out.append(c)
        elif c in "!*+-/":
            out.append(c)
        else:
            out.append("=%02X" % b)
    return "=?%s?Q?%s?=" % (charset, "".join(out))


def b_word(s, charset):
    data = base64.b64encode(s.encode(charset)).decode("ascii")
    return "=?%s?B?%s?=" % (charset, data)


def encode_words(s, rng, kind=None):
    """RFC 2047 encode S (non-ASCII) into one or more encoded words.

    Long texts are split on characters (never inside one), each word kept
    under the 75-character limit, and joined with folding white space.
    """
    charset = "UTF-8"
    if is_latin1(s) and rng.random() < 0.4:
        charset = "ISO-8859-1"
    kind = kind or rng.choice("BQ")
    enc = b_word if kind == "B" else q_word
    words, chunk = [], ""
    for c in s:
        if len(enc(chunk + c, charset)) > 75:
            words.append(enc(chunk, charset))
            chunk = ""
        chunk += c
    if chunk:
        words.append(enc(chunk, charset))
    return "\n ".join(words)


def fold(name, value):
    """Fold a header made of space-separated items at ~78 columns."""
    line = name + ":"
    out = []
    for item in value.split(" "):
        if len(line) + 1 + len(item) > 78 and line != name + ":":
            out.append(line)
            line = ""
        line += " " + item
    out.append(line)
    return "\n".join(out) + "\n"


def fmt_date(ts, tz_minutes):
    tz = dt.timezone(dt.timedelta(minutes=tz_minutes))
    d = dt.datetime.fromtimestamp(ts, tz)
    days = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]
    months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep",
              "Oct", "Nov", "Dec"]
    sign = "+" if tz_minutes >= 0 else "-"
    off = abs(tz_minutes)
    return "%s, %d %s %d %02d:%02d:%02d %s%02d%02d" % (
        days[d.weekday()], d.day, months[d.month - 1], d.year, d.hour,
        d.minute, d.second, sign, off // 60, off % 60)


class Person:
    __slots__ = ("name", "addr", "tz", "mailer", "enc")

    def __init__(self, name, addr, tz, mailer, enc):
        self.name, self.addr, self.tz = name, addr, tz
        self.mailer, self.enc = mailer, enc

    def header(self, rng):
        """The address as it appears in From/To/Cc."""
        if not self.name:
            return self.addr
        if is_ascii(self.name):
            if "," in self.name or "." in self.name:
                return '"%s" <%s>' % (self.name, self.addr)
            return "%s <%s>" % (self.name, self.addr)
        return "%s <%s>" % (encode_words(self.name, rng, self.enc),
                            self.addr)


def asciify(s):
    table = {"ß": "ss", "ł": "l", "Ł": "L", "ø": "o", "Ø": "O", "æ": "ae",
             "Æ": "AE", "đ": "d", "Đ": "D", "ı": "i", "İ": "I"}
    import unicodedata
    out = []
    for c in s:
        c = table.get(c, c)
        c = unicodedata.normalize("NFKD", c)
        c = "".join(x for x in c if x.isascii() and (x.isalnum() or x == "-"))
        out.append(c.lower())
    return "".join(out)


def make_people(rng, n=500):
    people, seen = [], set()
    while len(people) < n:
        first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        local = asciify(first) or "user%d" % len(people)
        local2 = asciify(last) or "x%d" % len(people)
        style = rng.random()
        if style < 0.08:
            name = ""
        elif style < 0.15:
            name = "%s, %s" % (last, first)
        else:
            name = "%s %s" % (first, last)
        addr = "%s.%s@%s" % (local, local2, rng.choice(DOMAINS))
        if addr in seen:
            continue
        seen.add(addr)
        people.append(Person(name, addr, rng.choice(TZ_OFFSETS),
                             rng.choice(MAILERS), rng.choice("BQ")))
    return people


def wrap_words(words, width=72):
    lines, line = [], ""
    for w in words:
        if line and len(line) + 1 + len(w) > width:
            lines.append(line)
            line = w
        else:
            line = line + " " + w if line else w
    if line:
        lines.append(line)
    return "\n".join(lines)


def make_paragraphs(rng, n, extra_words, extra_ratio):
    paras = []
    for _ in range(n):
        k = rng.randint(20, 120)
        words = []
        for _ in range(k):
            if rng.random() < extra_ratio:
                words.append(rng.choice(extra_words))
            else:
                words.append(rng.choice(ASCII_WORDS))
        words[0] = words[0].capitalize()
        text = wrap_words(words)
        paras.append(text + rng.choice([".", ".", ".", "?", "!"]))
    return paras


class Corpus:
    def __init__(self, seed):
        self.rng = random.Random(seed)
        rng = self.rng
        self.people = make_people(rng)
        self.para_ascii = make_paragraphs(rng, 1500, ASCII_WORDS, 0.0)
        self.para_latin1 = make_paragraphs(rng, 800, LATIN1_WORDS, 0.12)
        self.para_utf8 = make_paragraphs(rng, 800, UTF8_WORDS + LATIN1_WORDS,
                                         0.12)
        # Attachment bytes: one random pool, base64 encoded once into lines
        # of 76 characters; an attachment is a run of whole lines from it.
        pool = rng.randbytes(57 * 60000)  # 3.4 MB raw -> 4.6 MB encoded
        self.b64 = base64.encodebytes(pool)  # 76 chars + "\n" per line
        self.b64_lines = len(self.b64) // 77
        self.seq = 0
        self.boundary_n = 0

    # -- bodies -----------------------------------------------------------

    def text_size(self):
        r = self.rng.random()
        if r < 0.06:
            return self.rng.randint(200, 2000)
        if r < 0.96:
            # log-uniform over 2-20 KB: most mail is short
            return int(2000 * 10 ** self.rng.random())
        return self.rng.randint(20000, 60000)

    def body_text(self, size, latin1_only, quote=None, attribution=None):
        rng = self.rng
        parts, total = [], 0
        if quote:
            parts.append(attribution)
            parts.append("\n".join("> " + ln for ln in quote.split("\n")))
            total += len(parts[-1]) + len(attribution)
        while total < size:
            r = rng.random()
            if r < 0.7:
                p = rng.choice(self.para_ascii)
            elif r < 0.85 or latin1_only:
                p = rng.choice(self.para_latin1)
            else:
                p = rng.choice(self.para_utf8)
            parts.append(p)
            total += len(p) + 2
        sig = "-- \n%s\n" % rng.choice(["Sent from my phone",
                                         "Pat's colleague",
                                         "https://example.org/~user",
                                         "Mit freundlichen Grüßen"])
        if latin1_only or rng.random() < 0.5:
            sig = "-- \nRegards\n"
        return "\n\n".join(parts) + "\n\n" + sig

    @staticmethod
    def html_of(text):
        esc = (text.replace("&", "&amp;").replace("<", "&lt;")
               .replace(">", "&gt;"))
        paras = esc.split("\n\n")
        body = "\n".join("<p>%s</p>" % p.replace("\n", "<br>\n")
                         for p in paras)
        return ("<!DOCTYPE html>\n<html>\n<head>\n<meta http-equiv=\"Content-"
                "Type\" content=\"text/html; charset=utf-8\">\n<style>body "
                "{ font-family: Calibri, Arial, sans-serif; font-size: 11pt; }"
                "\np { margin: 0 0 1em 0; }</style>\n</head>\n<body>\n<div "
                "dir=\"ltr\">\n%s\n</div>\n</body>\n</html>\n" % body)

    def text_part(self, text, subtype, charset):
        """Headers and encoded body of one text part, as bytes."""
        data = text.encode(charset)
        if is_ascii(text):
            cte = "7bit"
            enc = data
        elif self.rng.random() < 0.5:
            cte = "quoted-printable"
            enc = binascii.b2a_qp(data)
        else:
            cte = "8bit"
            enc = data
        head = ("Content-Type: text/%s; charset=%s\n"
                "Content-Transfer-Encoding: %s\n" %
                (subtype, charset.lower() if self.rng.random() < 0.5
                 else charset, cte))
        return head.encode("ascii"), enc

    def attachment(self):
        rng = self.rng
        ctype, pattern = rng.choice(ATTACHMENTS)
        fname = pattern.format(n=rng.randint(1, 9999))
        r = rng.random()
        # Tuned so that the mean message lands near 45 KB.
        if r < 0.75:
            raw = int(5000 * 20 ** rng.random())  # 5-100 KB
        else:
            raw = int(100000 * 20 ** rng.random())  # 100 KB - 2 MB
        nlines = max(1, raw // 57)
        nlines = min(nlines, self.b64_lines - 1)
        start = rng.randrange(0, self.b64_lines - nlines)
        data = self.b64[start * 77:(start + nlines) * 77]
        if is_ascii(fname):
            disp = 'attachment; filename="%s"' % fname
            ct = '%s; name="%s"' % (ctype, fname)
        else:
            q = "".join(c if c.isalnum() and c.isascii() or c in ".-_"
                        else "".join("%%%02X" % b for b in c.encode()) for c in
                        fname)
            disp = "attachment;\n filename*=UTF-8''%s" % q
            ct = '%s;\n name="%s"' % (ctype, encode_words(fname, rng, "B"))
        head = ("Content-Type: %s\nContent-Disposition: %s\n"
                "Content-Transfer-Encoding: base64\n" % (ct, disp))
        return head.encode("ascii"), data

    def boundary(self):
        self.boundary_n += 1
        return "----=_Part_%d_%08x" % (self.boundary_n,
                                       self.rng.getrandbits(32))

    def body(self, text, charset, alt, n_attach):
        """(content headers, body bytes, kind) for the whole message."""
        if alt:
            b = self.boundary()
            th, tb = self.text_part(text, "plain", charset)
            hh, hb = self.text_part(self.html_of(text), "html", "UTF-8")
            inner_h = ('Content-Type: multipart/alternative;\n boundary="%s"\n'
                       % b).encode()
            inner_b = b"".join([
                b"--", b.encode(), b"\n", th, b"\n", tb, b"\n",
                b"--", b.encode(), b"\n", hh, b"\n", hb, b"\n",
                b"--", b.encode(), b"--\n"])
        else:
            inner_h, inner_b = self.text_part(text, "plain", charset)
        if not n_attach:
            return inner_h, inner_b, ("alternative" if alt else "plain")
        b = self.boundary()
        chunks = [b"This is a multi-part message in MIME format.\n\n",
                  b"--", b.encode(), b"\n", inner_h, b"\n", inner_b, b"\n"]
        for _ in range(n_attach):
            ah, ab = self.attachment()
            chunks += [b"--", b.encode(), b"\n", ah, b"\n", ab]
        chunks += [b"--", b.encode(), b"--\n"]
        head = ('Content-Type: multipart/mixed;\n boundary="%s"\n' %
                b).encode()
        return head, b"".join(chunks), "mixed"

    # -- headers ----------------------------------------------------------

    def received(self, ts, sender, hops):
        rng = self.rng
        out = []
        host = sender.addr.split("@")[1]
        t = ts + rng.randint(1, 20)
        out.append("Received: from mx%d.%s (mx%d.%s [192.0.2.%d])\n"
                   "\tby mail.example.org (Postfix) with ESMTPS id %X\n"
                   "\tfor <%s>; %s\n" % (
                       rng.randint(1, 4), host, rng.randint(1, 4), host,
                       rng.randint(1, 254), rng.getrandbits(40), ME[1],
                       fmt_date(t, 60)))
        for _ in range(hops - 1):
            t -= rng.randint(0, 5)
            out.append("Received: from [10.%d.%d.%d] (unknown [198.51.100.%d])"
                       "\n\tby smtp.%s (Postfix) with ESMTPSA id %X;\n\t%s\n"
                       % (rng.randint(0, 255), rng.randint(0, 255),
                          rng.randint(1, 254), rng.randint(1, 254), host,
                          rng.getrandbits(36), fmt_date(t, sender.tz)))
        return "".join(out)

    def dkim(self, sender):
        rng = self.rng
        sig = base64.b64encode(rng.randbytes(256)).decode()
        bh = base64.b64encode(rng.randbytes(32)).decode()
        v = ("v=1; a=rsa-sha256; c=relaxed/relaxed; d=%s; s=2023; "
             "t=%d; h=from:to:subject:date:message-id:mime-version; "
             "bh=%s; b=%s" % (sender.addr.split("@")[1],
                              1640995200 + rng.getrandbits(26), bh, sig))
        # DKIM-Signature folds inside the base64 as well: cut it by hand.
        lines, line = [], "DKIM-Signature:"
        for item in v.split(" "):
            while len(line) + 1 + len(item) > 78:
                room = 78 - len(line) - 1
                if room < 20:
                    lines.append(line)
                    line = "\t"
                    continue
                line += " " + item[:room]
                item = item[room:]
                lines.append(line)
                line = "\t"
            line += " " + item if line not in ("\t",) else item
        lines.append(line)
        return "\n".join(lines) + "\n"

    def subject_header(self, subject):
        if is_ascii(subject):
            return fold("Subject", subject)
        # Mailers leave the ASCII reply prefixes and list tag readable and
        # encode from the first word that needs it.
        words = subject.split(" ")
        i = 0
        while i < len(words) - 1 and is_ascii(words[i]) \
                and self.rng.random() < 0.8:
            i += 1
        head = " ".join(words[:i])
        enc = encode_words(" ".join(words[i:]), self.rng)
        return "Subject: " + (head + " " if head else "") + enc + "\n"

    # -- one thread -------------------------------------------------------

    def thread_size(self):
        # Zipf-like over 1..30: half are single messages, a few are long.
        while True:
            k = int(1 / (self.rng.random() ** 0.9 + 1e-9))
            if 1 <= k <= 30:
                return k

    def make_thread(self, n):
        """Yield (delivery time, header text, body bytes, kind) for N."""
        rng = self.rng
        listing = LISTS[rng.randrange(len(LISTS))] \
            if rng.random() < 0.33 else None
        if rng.random() < 0.15:
            base = rng.choice(SUBJECTS_NONASCII)
        else:
            base = rng.choice(SUBJECTS_ASCII)
        base = base.format(n=rng.randint(2, 999), m=rng.randint(2, 9),
                           v=rng.randint(2, 5))
        if listing and rng.random() < 0.7:
            base = "[%s] %s" % (listing[2], base)
        t = START.timestamp() + rng.random() * SPAN_SECONDS
        participants = rng.sample(self.people, min(len(self.people),
                                                   rng.randint(2, 6)))
        msgs = []  # (message-id, references list, depth, first paragraph)
        for i in range(n):
            sender = rng.choice(participants)
            if i == 0:
                parent = None
                subject = base
                if rng.random() < 0.03:
                    subject = "Fwd: " + base
            else:
                parent = msgs[rng.randrange(len(msgs))] \
                    if rng.random() < 0.4 else msgs[-1]
                t += rng.expovariate(1 / 14400.0) + 60
                depth = parent[2] + 1
                prefix = rng.choice(["Re: ", "Re: ", "Re: ", "RE: ",
                                     "AW: ", "Re: "])
                if depth > 1 and rng.random() < 0.15:
                    subject = "Re: " * min(depth, 4) + base
                else:
                    subject = prefix + base
            ts = int(t)
            mid = "%x.%x@%s" % (ts, rng.getrandbits(48),
                                sender.addr.split("@")[1])
            refs = (parent[1] + [parent[0]])[-12:] if parent else []
            hdr = [
                "Return-Path: <%s>\n" % sender.addr,
                "Delivered-To: %s\n" % ME[1],
                self.received(ts, sender, rng.randint(1, 3)),
            ]
            if rng.random() < 0.5:
                hdr.append(self.dkim(sender))
            hdr.append("Date: %s\n" % fmt_date(ts, sender.tz))
            hdr.append("From: %s\n" % sender.header(rng))
            if listing:
                hdr.append("To: %s <%s>\n" % (
                    listing[0] if is_ascii(listing[0])
                    else encode_words(listing[0], rng, "Q"),
                    list_addr(listing[1])))
            else:
                others = [p for p in participants if p is not sender]
                tos = ["%s <%s>" % ME] + [p.header(rng) for p in
                                          others[:rng.randint(0, 2)]]
                hdr.append("To: " + ",\n ".join(tos) + "\n")
                if others and rng.random() < 0.2:
                    hdr.append("Cc: %s\n" % rng.choice(others).header(rng))
            hdr.append(self.subject_header(subject))
            hdr.append("Message-ID: <%s>\n" % mid)
            if parent:
                hdr.append("In-Reply-To: <%s>\n" % parent[0])
                hdr.append(fold("References", " ".join("<%s>" % r
                                                         for r in refs)))
            hdr.append("%s: %s\n" % sender.mailer)
            if listing:
                name, lid, tag = listing
                hdr.append("List-Id: %s <%s>\n" % (
                    name if is_ascii(name) else encode_words(name, rng, "Q"),
                    lid))
                local, domain = list_addr(lid).split("@")
                hdr.append("List-Unsubscribe: <mailto:%s-request@%s"
                           "?subject=unsubscribe>\n" % (local, domain))
                hdr.append("List-Archive: <https://%s/archive/>\n" % lid)
                hdr.append("List-Post: <mailto:%s@%s>\n" % (local, domain))
                hdr.append("Precedence: list\n")
            hdr.append("MIME-Version: 1.0\n")

            quote = attribution = None
            if parent:
                quote = parent[3]
            # A reply quoting UTF-8 text cannot go out as Latin-1.
            latin1 = rng.random() < 0.25 and is_latin1(quote or "")
            charset = "ISO-8859-1" if latin1 else "UTF-8"
            if parent:
                attribution = "On %s, %s wrote:" % (
                    fmt_date(ts - 3600, sender.tz),
                    rng.choice(participants).name or "someone")
                if latin1 and not is_latin1(attribution):
                    attribution = "Someone wrote:"
            text = self.body_text(self.text_size(), latin1, quote,
                                  attribution)
            alt = rng.random() < 0.30
            n_attach = 0
            if rng.random() < 0.10:
                n_attach = 1 if rng.random() < 0.85 else rng.randint(2, 3)
            ch, body, kind = self.body(text, charset, alt, n_attach)
            head = "".join(hdr).encode("utf-8")
            first_para = text.split("\n\n", 2)[1 if quote else 0]
            if len(first_para) > 600:
                first_para = first_para[:600].rsplit(" ", 1)[0]
            msgs.append((mid, refs, parent[2] + 1 if parent else 0,
                         first_para))
            yield ts, head + ch + b"\n" + body, kind


def list_addr(list_id):
    """fulmar-dev.lists.example.org -> fulmar-dev@lists.example.org"""
    local, domain = list_id.split(".", 1)
    return "%s@%s" % (local, domain)


def flags_for(rng, ts, newest_cut):
    """(subdir, info) for one message: S ~70%, R ~10%, F ~5%."""
    seen = rng.random() < 0.70
    replied = seen and rng.random() < 0.143  # 0.7 * 0.143 = 10%
    flagged = rng.random() < 0.05
    if not seen and not flagged and ts >= newest_cut:
        return "new", ""
    return "cur", ":2," + "".join(f for f, on in (("F", flagged),
                                                    ("R", replied),
                                                    ("S", seen)) if on)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--count", type=int, required=True)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--out", required=True, help="maildir to create")
    ap.add_argument("--quiet", action="store_true")
    args = ap.parse_args()
    if args.count < 1:
        ap.error("--count must be at least 1")

    out = args.out
    if os.path.exists(out) and os.listdir(out):
        sys.exit("gen-corpus: %s exists and is not empty; refusing to write "
                 "into it" % out)
    for sub in ("tmp", "new", "cur"):
        os.makedirs(os.path.join(out, sub), exist_ok=True)

    progress = not args.quiet and sys.stderr.isatty()
    t0 = time.monotonic()
    corpus = Corpus(args.seed)
    rng = corpus.rng
    # The newest unseen messages (last ~2% of the span) stay in new/.
    newest_cut = START.timestamp() + SPAN_SECONDS * 0.98
    pid = 10000 + args.seed % 50000
    sizes = []
    kinds = {"plain": 0, "alternative": 0, "mixed": 0}
    nflags = {"S": 0, "R": 0, "F": 0, "new": 0}
    threads = 0
    left = args.count
    while left > 0:
        n = min(corpus.thread_size(), left)
        threads += 1
        for ts, data, kind in corpus.make_thread(n):
            corpus.seq += 1
            sub, info = flags_for(rng, ts, newest_cut)
            deliver = ts + rng.randint(2, 90)
            name = "%d.M%dP%dQ%d.fm-bench,S=%d%s" % (
                deliver, rng.randrange(1000000), pid, corpus.seq, len(data),
                info)
            path = os.path.join(out, sub, name)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view):]
            finally:
                os.close(fd)
            os.utime(path, (deliver, deliver))
            sizes.append(len(data))
            kinds[kind] += 1
            if sub == "new":
                nflags["new"] += 1
            for f in "SRF":
                if f in info:
                    nflags[f] += 1
        left -= n
        if progress and threads % 500 == 0:
            print("\r%d/%d messages" % (len(sizes), args.count), end="",
                  file=sys.stderr, flush=True)
    elapsed = time.monotonic() - t0
    if progress:
        print("\r\033[K", end="", file=sys.stderr)

    n = len(sizes)
    total = sum(sizes)
    srt = sorted(sizes)
    pct = lambda v: 100.0 * v / n  # noqa: E731
    print("corpus: %s" % out)
    print("messages: %d in %d threads (seed %d)" % (n, threads, args.seed))
    print("size: total %.1f MB, mean %.1f KB, median %.1f KB, max %.1f KB" % (
        total / 1e6, total / n / 1e3, srt[n // 2] / 1e3, srt[-1] / 1e3))
    print("between 2 and 20 KB: %.0f%%" % pct(sum(1 for s in sizes
                                                   if 2000 <= s <= 20000)))
    print("structure: plain %.0f%%, multipart/alternative %.0f%%, "
          "multipart/mixed %.0f%%" % (pct(kinds["plain"]),
                                      pct(kinds["alternative"]),
                                      pct(kinds["mixed"])))
    print("flags: seen %.0f%%, replied %.0f%%, flagged %.0f%%, in new/ %d" % (
        pct(nflags["S"]), pct(nflags["R"]), pct(nflags["F"]), nflags["new"]))
    print("generated in %.1f s (%.0f messages/s)" % (elapsed, n / elapsed))


if __name__ == "__main__":
    main()
