#!/bin/bash
# SPDX-License-Identifier: GPL-3.0-or-later
#
# Private Dovecot (IMAP, POP3, LMTP) and Postfix (submission) instances on
# 127.0.0.1 for fulmar's integration tests. Nothing under /etc is written
# and no system configuration is used (Postfix only reads its package
# metadata in /etc/postfix); every file lives in the scratch directory.
#
#   servers.sh start DIR   DIR: empty scratch dir with a short path
#   servers.sh stop DIR    idempotent; safe after a half-failed start
#
# After start, DIR/env can be sourced (see write_env for the variables).
set -euo pipefail

readonly WATCHDOG_SECONDS=${FM_SERVERS_WATCHDOG_SECONDS:-2700} # 45 min
readonly WAIT_SECONDS=10 # bound for every "wait until" loop

self=$(readlink -f "$0")

die() {
	printf 'servers.sh: %s\n' "$*" >&2
	exit 1
}

now() { printf '%s' "${EPOCHREALTIME/[.,]/}"; } # microseconds
elapsed() { # START_US -> seconds with 2 decimals
	local us=$(($(now) - $1))
	printf '%d.%02d' $((us / 1000000)) $((us % 1000000 / 10000))
}

# Single-quote a value so that `source` gives it back verbatim.
shq() { printf "'%s'" "${1//\'/\'\\\'\'}"; }

# Python is only needed to ask the kernel for free ports and to probe them.
# Prefer the system one: a pyenv shim costs ~100 ms per call.
python() {
	if [[ -x /usr/bin/python3 ]]; then /usr/bin/python3 "$@"; else python3 "$@"; fi
}

# Print N free TCP ports on 127.0.0.1. All sockets stay bound until every
# port is known, so the N ports are distinct.
free_ports() {
	python - "$1" <<'EOF'
import socket, sys
socks = []
for _ in range(int(sys.argv[1])):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    socks.append(s)
print(" ".join(str(s.getsockname()[1]) for s in socks))
for s in socks:
    s.close()
EOF
}

# Wait until every given port is in LISTEN state on 127.0.0.1, i.e. accepts
# connections. Reading /proc/net/tcp instead of connecting keeps probe
# noise ("no auth attempts", "lost connection") out of the server logs.
wait_ports() {
	python - "$WAIT_SECONDS" "$@" <<'EOF'
import sys, time
deadline = time.monotonic() + float(sys.argv[1])
want = {"0100007F:%04X" % int(p) for p in sys.argv[2:]}
while True:
    with open("/proc/net/tcp") as f:
        rows = [line.split() for line in f.readlines()[1:]]
    todo = want - {r[1] for r in rows if r[3] == "0A"}
    if not todo:
        break
    if time.monotonic() > deadline:
        sys.exit("not listening: " + " ".join(str(int(a[-4:], 16)) for a in sorted(todo)))
    time.sleep(0.02)
EOF
}

# True if PID exists and is not a zombie. PID 1 on this machine (as in many
# containers) reaps orphans late, so kill -0 alone would wait for that.
alive() {
	local stat
	[[ -n $1 ]] || return 1
	{ read -r stat <"/proc/$1/stat"; } 2>/dev/null || return 1
	stat=${stat##*) }
	[[ ${stat%% *} != Z ]]
}

# argv of PID joined by spaces (empty if gone).
cmdline() {
	local c=''
	{ c=$(tr '\0' ' ' <"/proc/$1/cmdline"); } 2>/dev/null || true
	printf '%s' "$c"
}

# Only ever signal our own processes: check identity, not just the PID
# (PIDs get reused). The Dovecot master has our config path in argv.
is_our_dovecot() {
	alive "$1" && [[ " $(cmdline "$1")" == *" -c $dir/dovecot.conf "* ]]
}

# Postfix's master keeps MAIL_CONFIG=<config dir> in its environment.
is_our_postfix() {
	alive "$1" && grep -qszxF -- "MAIL_CONFIG=$dir/postfix" "/proc/$1/environ"
}

is_our_watchdog() {
	alive "$1" && [[ "$(cmdline "$1")" == *" fm-watchdog $dir "* ]]
}

read_pid() { # FILE -> PID or nothing (pid files may be padded with spaces)
	local pid=''
	if [[ -r $1 ]]; then read -r pid <"$1" || true; fi
	pid=${pid//[[:space:]]/}
	[[ $pid =~ ^[0-9]+$ ]] && printf '%s' "$pid"
	return 0
}

# Wait until PID is gone; SIGKILL it after WAIT_SECONDS as a last resort.
reap() { # PID NAME
	local i
	for ((i = 0; i < WAIT_SECONDS * 50; i++)); do
		alive "$1" || return 0
		sleep 0.02
	done
	printf 'servers.sh: %s (pid %s) ignored SIGTERM, killing it\n' "$2" "$1" >&2
	kill -KILL "$1" 2>/dev/null || true
}

show_logs() {
	local f
	for f in "$dir/dovecot.log" "$dir/postfix-start.out" "$dir/postfix.log"; do
		[[ -s $f ]] || continue
		printf '==> %s <==\n' "$f" >&2
		tail -n 25 "$f" >&2
	done
}

# ---------------------------------------------------------------- TLS ----

make_certs() {
	local t=$dir/tls
	mkdir -p "$t/ca-db"
	: >"$t/ca-db/index.txt"
	echo 01 >"$t/ca-db/serial"
	# Our own openssl.cnf, so the system's defaults do not leak in.
	cat >"$t/openssl.cnf" <<EOF
[ req ]
distinguished_name = dn
prompt = no
[ dn ]
CN = unused
[ v3_ca ]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[ srv ]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = DNS:localhost, IP:127.0.0.1
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
[ wrongname ]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = DNS:wrong.example
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
[ selfsigned ]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = DNS:localhost, IP:127.0.0.1
subjectKeyIdentifier = hash
# "openssl ca" is the only way in OpenSSL 3.0 to choose notBefore/notAfter
# (req/x509 -not_before arrived in 3.4); used for the expired certificate.
[ ca ]
default_ca = fm_ca
[ fm_ca ]
database = $t/ca-db/index.txt
new_certs_dir = $t/ca-db
serial = $t/ca-db/serial
default_md = sha256
policy = fm_policy
unique_subject = no
email_in_dn = no
[ fm_policy ]
commonName = supplied
EOF
	local cnf=$t/openssl.cnf n
	# EC P-256: key generation is instant, RSA 2048 would cost ~0.1 s each.
	for n in ca server selfsigned expired wrongname; do
		openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 \
			-out "$t/$n.key" 2>/dev/null
		chmod 600 "$t/$n.key"
	done
	openssl req -config "$cnf" -x509 -new -key "$t/ca.key" -sha256 -days 2 \
		-subj '/O=fulmar tests/CN=fulmar throw-away test CA' \
		-extensions v3_ca -out "$t/ca.crt"
	openssl req -config "$cnf" -x509 -new -key "$t/selfsigned.key" -sha256 \
		-days 2 -subj '/CN=localhost' -extensions selfsigned \
		-out "$t/selfsigned.crt"
	for n in server expired wrongname; do
		local cn=localhost
		[[ $n == wrongname ]] && cn=wrong.example
		openssl req -config "$cnf" -new -key "$t/$n.key" -subj "/CN=$cn" \
			-out "$t/$n.csr"
	done
	sign() { # NAME EXTENSIONS
		openssl x509 -req -in "$t/$1.csr" -CA "$t/ca.crt" -CAkey "$t/ca.key" \
			-set_serial "0x$(openssl rand -hex 8)" -sha256 -days 2 \
			-extfile "$cnf" -extensions "$2" -out "$t/$1.crt" 2>/dev/null
	}
	sign server srv
	sign wrongname wrongname
	# Valid from 10 days ago until yesterday.
	openssl ca -batch -config "$cnf" -cert "$t/ca.crt" -keyfile "$t/ca.key" \
		-in "$t/expired.csr" -out "$t/expired.crt" -extensions srv -notext \
		-startdate "$(date -u -d '-10 days' +%Y%m%d%H%M%SZ)" \
		-enddate "$(date -u -d '-1 day' +%Y%m%d%H%M%SZ)" 2>/dev/null
	server_fp=$(openssl x509 -in "$t/server.crt" -noout -fingerprint -sha256)
	server_fp=${server_fp#*=}
}

# ------------------------------------------------------------ Dovecot ----

write_dovecot_conf() {
	local ssl_dh=''
	# Only for DHE suites; ECDHE works without it. Read-only system file.
	[[ -r /usr/share/dovecot/dh.pem ]] && ssl_dh='ssl_dh = </usr/share/dovecot/dh.pem'
	local u
	: >"$dir/passwd"
	# alice and bob for everyone; carol, dave and erin each belong to one
	# test that empties or fills a mailbox (POP3), so tests running in
	# parallel never see each other's mail.
	for u in "alice:alice-pw-1" "bob:bob-pw-2" "carol:carol-pw-3" \
		"dave:dave-pw-4" "erin:erin-pw-5"; do
		local name=${u%%:*} pw=${u#*:}
		printf '%s@fulmar.test:{PLAIN}%s:%s:%s::%s::\n' \
			"$name" "$pw" "$mail_uid" "$mail_gid" "$dir/home/$name" >>"$dir/passwd"
		# Pre-create the Maildir so tests can watch new/ from the start.
		install -d -m 0700 -o "$mail_uid" -g "$mail_gid" "$dir/home/$name" \
			"$dir/home/$name/Maildir" "$dir/home/$name/Maildir/cur" \
			"$dir/home/$name/Maildir/new" "$dir/home/$name/Maildir/tmp"
	done
	chmod 0644 "$dir/passwd" # read by the auth process (user dovecot)

	# Standalone on purpose: no !include of /etc/dovecot.
	cat >"$dir/dovecot.conf" <<EOF
# Generated by tests/servers/servers.sh; private test instance.
instance_name = $instance
base_dir = $dir/run
state_dir = $dir/state
log_path = $dir/dovecot.log
protocols = imap pop3 lmtp
listen = 127.0.0.1

ssl = yes
ssl_cert = <$dir/tls/server.crt
ssl_key = <$dir/tls/server.key
ssl_min_protocol = TLSv1.2
$ssl_dh

auth_mechanisms = plain login
auth_verbose = yes
# Tests try wrong passwords on purpose: answer at once (default 2 s;
# Dovecot still batches failures every 0.5 s).
auth_failure_delay = 0
disable_plaintext_auth = yes
passdb {
  driver = passwd-file
  args = scheme=PLAIN username_format=%u $dir/passwd
}
userdb {
  driver = passwd-file
  args = username_format=%u $dir/passwd
}
# Mail processes run as $mail_uid:$mail_gid (nobody/nogroup when root).
first_valid_uid = $mail_uid
first_valid_gid = $mail_gid

mail_location = maildir:~/Maildir
# No imap_zlib: fulmar cannot use COMPRESS=DEFLATE (see NOTES.md).
mail_plugins =
namespace inbox {
  inbox = yes
  separator = /
  mailbox Drafts {
    auto = subscribe
    special_use = \\Drafts
  }
  mailbox Sent {
    auto = subscribe
    special_use = \\Sent
  }
  mailbox Trash {
    auto = subscribe
    special_use = \\Trash
  }
  mailbox Junk {
    auto = subscribe
    special_use = \\Junk
  }
  mailbox Archive {
    auto = subscribe
    special_use = \\Archive
  }
}

# Naming every listener replaces the built-in 143/993/110/995 ones.
service imap-login {
  inet_listener imap {
    address = 127.0.0.1
    port = $imap_port
  }
  inet_listener imaps {
    address = 127.0.0.1
    port = $imaps_port
    ssl = yes
  }
}
service pop3-login {
  inet_listener pop3 {
    address = 127.0.0.1
    port = $pop3_port
  }
  inet_listener pop3s {
    address = 127.0.0.1
    port = $pop3s_port
    ssl = yes
  }
}
service lmtp {
  inet_listener lmtp {
    address = 127.0.0.1
    port = $lmtp_port
  }
}
# No auth penalty: without anvil's penalty socket the auth process skips
# it. Otherwise every failed login from 127.0.0.1 (tests fail logins on
# purpose, Postfix's SASL counts too) delays the next one 2, 4, 8, 15 s.
service anvil {
  unix_listener anvil-auth-penalty {
    mode = 0
  }
}
# SASL for Postfix's smtpd (runs as user postfix, hence 0666).
service auth {
  unix_listener auth-postfix {
    mode = 0666
  }
}
EOF
}

# ------------------------------------------------------------ Postfix ----

write_postfix_conf() {
	local pf=$dir/postfix
	mkdir -p "$pf"
	# Must exist and be root-owned; Postfix creates the subdirectories.
	install -d -m 0755 -o root -g root "$dir/postfix-queue"
	cat >"$pf/main.cf" <<EOF
# Generated by tests/servers/servers.sh; private test instance.
compatibility_level = 3.6
queue_directory = $dir/postfix-queue
data_directory = $dir/postfix-data
# Log to a file via postlogd instead of the system's syslog.
maillog_file = $dir/postfix.log
maillog_file_prefixes = $dir
syslog_name = $instance-postfix

myhostname = localhost
mydestination =
local_recipient_maps =
alias_maps =
alias_database =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.1/32
biff = no
append_dot_mydomain = no
readme_directory = no

# Nothing leaves this machine.
relayhost =
default_transport = error:outbound mail is disabled on the fulmar test server
relay_transport = error:outbound mail is disabled on the fulmar test server
local_transport = error:local delivery is disabled on the fulmar test server

# Every address @fulmar.test is valid (empty virtual_mailbox_maps) and
# goes to Dovecot over LMTP.
virtual_mailbox_domains = fulmar.test
virtual_transport = lmtp:inet:[127.0.0.1]:$lmtp_port

smtpd_relay_restrictions = permit_sasl_authenticated, reject
smtpd_recipient_restrictions =
smtpd_sasl_auth_enable = yes
smtpd_sasl_type = dovecot
smtpd_sasl_path = $dir/run/auth-postfix
smtpd_sasl_security_options = noanonymous
smtpd_sasl_tls_security_options = noanonymous
smtpd_tls_auth_only = yes
smtpd_tls_security_level = encrypt
smtpd_tls_cert_file = $dir/tls/server.crt
smtpd_tls_key_file = $dir/tls/server.key
smtpd_tls_protocols = >=TLSv1.2
smtpd_tls_mandatory_protocols = >=TLSv1.2
smtpd_tls_loglevel = 1
smtpd_tls_received_header = yes
EOF
	# No port 25; chroot "n" everywhere (no chroot jail to populate).
	cat >"$pf/master.cf" <<EOF
# Generated by tests/servers/servers.sh; private test instance.
# 587 stand-in: STARTTLS required before AUTH and MAIL.
127.0.0.1:$submission_port inet n - n - - smtpd
  -o syslog_name=$instance-postfix/submission
  -o smtpd_tls_security_level=encrypt
  -o smtpd_tls_auth_only=yes
  -o smtpd_sasl_auth_enable=yes
# 465 stand-in: implicit TLS.
127.0.0.1:$submissions_port inet n - n - - smtpd
  -o syslog_name=$instance-postfix/submissions
  -o smtpd_tls_wrappermode=yes
  -o smtpd_tls_security_level=encrypt
  -o smtpd_sasl_auth_enable=yes
pickup     unix  n - n 60   1 pickup
cleanup    unix  n - n -    0 cleanup
qmgr       unix  n - n 300  1 qmgr
tlsmgr     unix  - - n 1000? 1 tlsmgr
rewrite    unix  - - n -    - trivial-rewrite
bounce     unix  - - n -    0 bounce
defer      unix  - - n -    0 bounce
trace      unix  - - n -    0 bounce
verify     unix  - - n -    1 verify
flush      unix  n - n 1000? 0 flush
proxymap   unix  - - n -    - proxymap
proxywrite unix  - - n -    1 proxymap
smtp       unix  - - n -    - smtp
relay      unix  - - n -    - smtp
showq      unix  n - n -    - showq
error      unix  - - n -    - error
retry      unix  - - n -    - error
discard    unix  - - n -    - discard
local      unix  - n n -    - local
virtual    unix  - n n -    - virtual
lmtp       unix  - - n -    - lmtp
anvil      unix  - - n -    1 anvil
scache     unix  - - n -    1 scache
postlog    unix-dgram n - n - 1 postlogd
EOF
	# Postfix waits ~2 s when its config files look freshly written.
	touch -d '-3 sec' "$pf/main.cf" "$pf/master.cf" "$pf"
}

# -------------------------------------------------------------- start ----

write_env() {
	local t=$dir/tls
	{
		echo '# Generated by tests/servers/servers.sh; source this file.'
		local kv
		for kv in \
			"FM_SERVERS_DIR=$dir" \
			"FM_HOST=127.0.0.1" \
			"FM_IMAP_PORT=$imap_port" \
			"FM_IMAPS_PORT=$imaps_port" \
			"FM_POP3_PORT=$pop3_port" \
			"FM_POP3S_PORT=$pop3s_port" \
			"FM_LMTP_PORT=$lmtp_port" \
			"FM_SUBMISSION_PORT=$submission_port" \
			"FM_SUBMISSIONS_PORT=$submissions_port" \
			"FM_CA_FILE=$t/ca.crt" \
			"FM_CA_KEY=$t/ca.key" \
			"FM_SERVER_CERT=$t/server.crt" \
			"FM_SERVER_KEY=$t/server.key" \
			"FM_SERVER_FINGERPRINT=$server_fp" \
			"FM_SELFSIGNED_CERT=$t/selfsigned.crt" \
			"FM_SELFSIGNED_KEY=$t/selfsigned.key" \
			"FM_EXPIRED_CERT=$t/expired.crt" \
			"FM_EXPIRED_KEY=$t/expired.key" \
			"FM_WRONGNAME_CERT=$t/wrongname.crt" \
			"FM_WRONGNAME_KEY=$t/wrongname.key" \
			"FM_USER1=alice@fulmar.test" \
			"FM_PASS1=alice-pw-1" \
			"FM_USER2=bob@fulmar.test" \
			"FM_PASS2=bob-pw-2" \
			"FM_MAILDIR1=$dir/home/alice/Maildir" \
			"FM_MAILDIR2=$dir/home/bob/Maildir" \
			"FM_USER3=carol@fulmar.test" "FM_PASS3=carol-pw-3" \
			"FM_USER4=dave@fulmar.test" "FM_PASS4=dave-pw-4" \
			"FM_USER5=erin@fulmar.test" "FM_PASS5=erin-pw-5" \
			"FM_IMAP_SEPARATOR=/" \
			"FM_DOVECOT_CONF=$dir/dovecot.conf" \
			"FM_DOVECOT_LOG=$dir/dovecot.log" \
			"FM_POSTFIX_DIR=$dir/postfix" \
			"FM_POSTFIX_LOG=$dir/postfix.log" \
			"FM_DOVEADM=doveadm -c $dir/dovecot.conf"; do
			printf 'export %s=%s\n' "${kv%%=*}" "$(shq "${kv#*=}")"
		done
	} >"$dir/env.tmp"
	mv "$dir/env.tmp" "$dir/env"
}

start_watchdog() {
	# Its own bash, so stop can end it (and its sleep) by PID alone.
	# "fm-watchdog DIR" in argv lets stop recognise it.
	# shellcheck disable=SC2016 # expanded by the inner bash
	bash -c '
		trap "kill \$s 2>/dev/null; exit 0" TERM
		sleep "$3" & s=$!
		wait "$s"
		FM_SERVERS_FROM_WATCHDOG=1 exec "$2" stop "$1"
	' fm-watchdog "$dir" "$self" "$WATCHDOG_SECONDS" \
		</dev/null >>"$dir/watchdog.log" 2>&1 &
	watchdog_pid=$!
	# At once, so that stop finds it even if start dies right here.
	echo "$watchdog_pid" >"$dir/watchdog.pid"
}

started=0
on_start_exit() {
	local rc=$?
	((started)) && return 0
	printf 'servers.sh: start failed (exit %d); logs follow\n' "$rc" >&2
	show_logs
	# Leave nothing running behind.
	do_stop >&2 || true
	return 0
}

do_start() {
	((EUID == 0)) || die "start needs root: Postfix's master runs only as root"
	[[ -d $dir ]] || die "$dir: no such directory"
	[[ -z $(ls -A "$dir") ]] || die "$dir: not empty"
	# Unix sockets (e.g. DIR/postfix-queue/private/proxywrite) need < 108 bytes.
	((${#dir} <= 48)) || die "$dir: path too long for unix sockets (max 48 bytes)"
	command -v dovecot >/dev/null || die "dovecot not installed"
	command -v postfix >/dev/null || die "postfix not installed"

	local t0
	t0=$(now)
	: >"$dir/.fulmar-servers" # marks DIR as ours for stop / stop.test
	trap on_start_exit EXIT
	# Mail processes (nobody) must traverse DIR to reach the homes.
	chmod 0711 "$dir"
	instance=fm-srv-${dir##*.}
	mail_uid=$(id -u nobody 2>/dev/null || echo 65534)
	mail_gid=$(getent group nogroup | cut -d: -f3)
	mail_gid=${mail_gid:-65534}

	read -r imap_port imaps_port pop3_port pop3s_port lmtp_port \
		submission_port submissions_port < <(free_ports 7)

	make_certs
	write_dovecot_conf
	write_postfix_conf
	mkdir -p "$dir/run" "$dir/state"

	# Dovecot keeps the caller's stdio open; a TAP driver would wait on it.
	dovecot -c "$dir/dovecot.conf" </dev/null >"$dir/dovecot-start.out" 2>&1 ||
		die "dovecot failed to start: $(cat "$dir/dovecot-start.out")"
	# Postfix reports fatal errors only to syslog unless stderr is a tty.
	if ! script -qec "postfix -c $(printf '%q' "$dir/postfix") start" \
		"$dir/postfix-start.out" </dev/null >/dev/null 2>&1; then
		die "postfix failed to start"
	fi

	wait_ports "$imap_port" "$imaps_port" "$pop3_port" "$pop3s_port" \
		"$lmtp_port" "$submission_port" "$submissions_port" ||
		die "servers did not come up within ${WAIT_SECONDS}s"
	[[ -S $dir/run/auth-postfix ]] || die "no Dovecot auth socket for Postfix"

	local dovecot_pid postfix_pid
	dovecot_pid=$(read_pid "$dir/run/master.pid")
	postfix_pid=$(read_pid "$dir/postfix-queue/pid/master.pid")
	is_our_dovecot "$dovecot_pid" || die "no Dovecot master pid"
	is_our_postfix "$postfix_pid" || die "no Postfix master pid"
	start_watchdog
	printf 'dovecot=%s\npostfix=%s\nwatchdog=%s\n' \
		"$dovecot_pid" "$postfix_pid" "$watchdog_pid" >"$dir/pids"
	write_env
	started=1
	printf 'servers.sh: started in %ss (dovecot %s, postfix %s, watchdog %s); env: %s\n' \
		"$(elapsed "$t0")" "$dovecot_pid" "$postfix_pid" "$watchdog_pid" "$dir/env"
}

# --------------------------------------------------------------- stop ----

recorded_pid() { # NAME -> PID recorded by start, or nothing
	[[ -r $dir/pids ]] && sed -n "s/^$1=\\([0-9][0-9]*\\)\$/\\1/p" "$dir/pids"
	return 0
}

do_stop() {
	local t0
	t0=$(now)
	if [[ ! -d $dir ]]; then
		echo "servers.sh: $dir does not exist; nothing to stop"
		return 0
	fi
	[[ -e $dir/.fulmar-servers ]] || die "$dir was not made by servers.sh start"

	local wd
	wd=$(read_pid "$dir/watchdog.pid")
	if [[ -z ${FM_SERVERS_FROM_WATCHDOG:-} ]] && is_our_watchdog "$wd"; then
		kill -TERM "$wd" 2>/dev/null || true
	fi

	# Pid files first (a half-failed start may not have written DIR/pids).
	local pf_pid dc_pid
	pf_pid=$(read_pid "$dir/postfix-queue/pid/master.pid")
	is_our_postfix "$pf_pid" || pf_pid=$(recorded_pid postfix)
	is_our_postfix "$pf_pid" || pf_pid=''
	dc_pid=$(read_pid "$dir/run/master.pid")
	is_our_dovecot "$dc_pid" || dc_pid=$(recorded_pid dovecot)
	is_our_dovecot "$dc_pid" || dc_pid=''

	# Both shut down in parallel: each takes about 1 s on its own.
	local pf_stop=''
	if [[ -n $pf_pid ]]; then
		postfix -c "$dir/postfix" stop </dev/null >>"$dir/postfix-stop.out" 2>&1 &
		pf_stop=$!
	fi
	if [[ -n $dc_pid ]]; then kill -TERM "$dc_pid" 2>/dev/null || true; fi
	if [[ -n $pf_stop ]]; then
		wait "$pf_stop" || true
		# "postfix stop" only signals; make sure it is really gone.
		if is_our_postfix "$pf_pid"; then
			kill -TERM "$pf_pid" 2>/dev/null || true
			reap "$pf_pid" "postfix master"
		fi
	fi
	[[ -n $dc_pid ]] && reap "$dc_pid" "dovecot master"
	if [[ -n $wd ]] && is_our_watchdog "$wd"; then
		reap "$wd" watchdog
	fi
	printf 'servers.sh: stopped in %ss\n' "$(elapsed "$t0")"
}

# --------------------------------------------------------------- main ----

(($# == 2)) || die "usage: servers.sh start|stop DIR"
dir=$(readlink -m "$2")
case $1 in
start) do_start ;;
stop) do_stop ;;
*) die "unknown command: $1" ;;
esac
