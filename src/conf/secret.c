/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * fm_conf_run_secret_cmd(): a password or token from a command such as
 * "pass show mail/work".
 *
 * Any thread may call it, so it touches no signal handler and no global:
 * the child is made with fork() and, until execve(), calls only
 * async-signal-safe functions. It gets /dev/null as stdin, a pipe as
 * stdout, the caller's stderr (so gpg or pass can ask and complain), a clean
 * signal mask and no other descriptors. The parent reads with poll() until
 * the deadline, then kills and reaps the child whatever happened.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "base/base.h"
#include "conf/conf.h"
#include "log/log.h"

enum { SECRET_MAX = 64 * 1024 };

extern char **environ;

static FM_NORETURN void
child(const char *cmd, int devnull, int out)
{
	sigset_t none;
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	/* The parent may ignore SIGPIPE; the command should not. */
	struct sigaction dfl;
	memset(&dfl, 0, sizeof(dfl));
	dfl.sa_handler = SIG_DFL;
	sigaction(SIGPIPE, &dfl, NULL);
	if (dup2(devnull, STDIN_FILENO) < 0 || dup2(out, STDOUT_FILENO) < 0)
		_exit(127);
	/* Sockets, lock files and the like stay with fulmar. */
	close_range(3, ~0U, 0);
	char *const argv[] = {(char *)"sh", (char *)"-c", (char *)cmd, NULL};
	execve("/bin/sh", argv, environ);
	_exit(127);
}

static long long
now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* "10 s" or "250 ms". */
static void
format_timeout(unsigned ms, char *buf, size_t size)
{
	if (ms % 1000 == 0)
		snprintf(buf, size, "%u s", ms / 1000);
	else
		snprintf(buf, size, "%u ms", ms);
}

enum outcome { OUT_EOF, OUT_TIMEOUT, OUT_TOO_BIG, OUT_READ_ERROR };

/* Reads the child's stdout into buf until end of file, the deadline or
 * SECRET_MAX bytes. */
static enum outcome
read_output(int fd, long long deadline, char *buf, size_t *len_r, int *errno_r)
{
	size_t len = 0;
	for (;;) {
		long long left = deadline - now_ms();
		if (left <= 0)
			return OUT_TIMEOUT;
		struct pollfd pfd = {.fd = fd, .events = POLLIN};
		int n = poll(&pfd, 1, left > 60000 ? 60000 : (int)left);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			*errno_r = errno;
			return OUT_READ_ERROR;
		}
		if (n == 0)
			continue;
		/* One byte more than allowed tells "too big" from "full". */
		ssize_t got = read(fd, buf + len, SECRET_MAX + 1 - len);
		if (got < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (got < 0) {
			*errno_r = errno;
			return OUT_READ_ERROR;
		}
		if (got == 0)
			break;
		len += (size_t)got;
		*len_r = len;
		if (len > SECRET_MAX)
			return OUT_TOO_BIG;
	}
	*len_r = len;
	return OUT_EOF;
}

/* Waits for the child until the deadline; true if it was reaped. */
static bool
wait_child(pid_t pid, long long deadline, int *status_r)
{
	for (;;) {
		pid_t r = waitpid(pid, status_r, WNOHANG);
		if (r == pid)
			return true;
		if (r < 0 && errno != EINTR)
			return true; /* not ours to wait for any more */
		if (now_ms() >= deadline)
			return false;
		struct timespec pause = {0, 5 * 1000 * 1000};
		nanosleep(&pause, NULL);
	}
}

static void
kill_child(pid_t pid)
{
	int status;
	kill(pid, SIGKILL);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
}

int
fm_conf_run_secret_cmd(const char *key, const char *cmd, unsigned timeout_ms,
                       char **secret_r, struct fm_error *err)
{
	*secret_r = NULL;
	int devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (devnull < 0)
		return fm_error_errno(err, FM_ERR_LOCAL, errno,
		                      _("%s: cannot open /dev/null"), key);
	int pipefd[2];
	if (pipe2(pipefd, O_CLOEXEC) < 0) {
		int e = errno;
		close(devnull);
		return fm_error_errno(err, FM_ERR_LOCAL, e,
		                      _("%s: cannot make a pipe"), key);
	}
	long long deadline = now_ms() + timeout_ms;
	pid_t pid = fork();
	if (pid < 0) {
		int e = errno;
		close(devnull);
		close(pipefd[0]);
		close(pipefd[1]);
		return fm_error_errno(err, FM_ERR_LOCAL, e,
		                      _("%s: cannot start the command"), key);
	}
	if (pid == 0)
		child(cmd, devnull, pipefd[1]);
	close(devnull);
	close(pipefd[1]);

	char *buf = xmalloc(SECRET_MAX + 1);
	size_t len = 0;
	int read_errno = 0;
	enum outcome out =
	    read_output(pipefd[0], deadline, buf, &len, &read_errno);
	close(pipefd[0]);

	int status = 0;
	bool reaped = out == OUT_EOF && wait_child(pid, deadline, &status);
	if (!reaped) {
		kill_child(pid);
		if (out == OUT_EOF)
			out = OUT_TIMEOUT;
	}

	int ret = -1;
	char limit[32];
	format_timeout(timeout_ms, limit, sizeof(limit));
	size_t line = 0;
	while (line < len && buf[line] != '\n' && buf[line] != '\0')
		line++;
	if (line > 0 && buf[line - 1] == '\r')
		line--;
	switch (out) {
	case OUT_TIMEOUT:
		fm_error_set(err, FM_ERR_CONFIG,
		             _("%s did not finish within %s"), key, limit);
		break;
	case OUT_TOO_BIG:
		fm_error_set(err, FM_ERR_CONFIG,
		             _("%s printed more than 64 KiB; it should print "
		               "only the secret"),
		             key);
		break;
	case OUT_READ_ERROR:
		fm_error_errno(err, FM_ERR_LOCAL, read_errno,
		               _("%s: cannot read its output"), key);
		break;
	case OUT_EOF:
		if (WIFSIGNALED(status))
			fm_error_set(err, FM_ERR_CONFIG,
			             _("%s was killed by signal %d"), key,
			             WTERMSIG(status));
		else if (WIFEXITED(status) && WEXITSTATUS(status) == 127)
			fm_error_set(err, FM_ERR_CONFIG,
			             _("%s exited with status 127 (command "
			               "not found)"),
			             key);
		else if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
			fm_error_set(err, FM_ERR_CONFIG,
			             _("%s exited with status %d"), key,
			             WEXITSTATUS(status));
		else if (line == 0)
			fm_error_set(err, FM_ERR_CONFIG,
			             _("%s printed nothing; it should print "
			               "the secret on its first line"),
			             key);
		else
			ret = 0;
		break;
	}
	if (ret == 0) {
		*secret_r = xstrndup(buf, line);
		fm_log_add_secret(*secret_r);
	}
	fm_wipe(buf, len);
	free(buf);
	return ret;
}
