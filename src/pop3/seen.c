/* SPDX-License-Identifier: GPL-3.0-or-later */
/* What the last complete pass saw, so that a pass which finds the same
 * listing can end without reading the folder's state (see pop3_int.h).
 *
 * INBOX/.fulmar-pop3-seen holds one line:
 *
 *     fulmar-pop3-seen 1 DIGEST DEV INO SIZE MTIME-S MTIME-NS DEADLINE
 *
 * DIGEST is the SHA-256 (hex) of the account's policy, the UIDLs in order
 * and STAT's count and octets after that pass (see pop3_int.h); DEV to
 * MTIME-NS name the state file as that pass left it (a save replaces the
 * file, so any change to the state shows); DEADLINE is the first time
 * (Unix seconds) delete_after_days would delete something. It is a cache
 * and never the truth: it is written without fsync, removed when a pass
 * starts the long way, and anything that does not match sends the pass
 * the long way. */
#include "config.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "pop3/pop3_int.h"

#define SEEN_MAGIC "fulmar-pop3-seen 1"

void
pop3_seen_digest(const struct fm_account *a, const struct pop3_msg *msgs,
                 size_t n, uint64_t count, uint64_t octets, char out[65])
{
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	if (md == NULL)
		abort();
	EVP_DigestInit_ex(md, EVP_sha256(), NULL);
	char line[700];
	int len =
	    snprintf(line, sizeof(line), "policy %d %llu %d %u %d %d\n",
	             (int)a->download, (unsigned long long)a->download_max,
	             (int)a->keep_on_server, a->delete_after_days,
	             (int)a->delete_when_deleted_locally, (int)a->pop3_no_uidl);
	EVP_DigestUpdate(md, line, (size_t)len);
	len = snprintf(line, sizeof(line), "stat %llu %llu\n",
	               (unsigned long long)count, (unsigned long long)octets);
	EVP_DigestUpdate(md, line, (size_t)len);
	/* In chunks: one update per message would cost more than the
	 * hashing. */
	char buf[16384];
	size_t used = 0;
	for (size_t i = 0; i < n; i++) {
		if (msgs[i].deleted) /* gone at QUIT */
			continue;
		/* "UIDL\n", by hand: snprintf here cost more than the hash.
		 * UIDLs are at most 512 bytes (wire.c); one that UIDL did
		 * not name is left out, as the quick look never sees it. */
		const char *u = msgs[i].uidl;
		if (u == NULL)
			continue;
		size_t ul = strlen(u);
		if (used + ul + 1 > sizeof(buf)) {
			EVP_DigestUpdate(md, buf, used);
			used = 0;
		}
		memcpy(buf + used, u, ul);
		used += ul;
		buf[used++] = '\n';
	}
	EVP_DigestUpdate(md, buf, used);
	unsigned char d[EVP_MAX_MD_SIZE];
	unsigned int dl = 0;
	EVP_DigestFinal_ex(md, d, &dl);
	EVP_MD_CTX_free(md);
	for (unsigned i = 0; i < 32 && i < dl; i++)
		snprintf(out + 2 * i, 3, "%02x", d[i]);
	out[64] = '\0';
}

bool
pop3_seen_check(const char *seen_path, const char *state_path, int64_t now,
                char digest_r[65])
{
	FILE *f = fopen(seen_path, "re");
	if (f == NULL)
		return false;
	char line[256];
	bool ok = fgets(line, sizeof(line), f) != NULL;
	fclose(f);
	if (!ok || strncmp(line, SEEN_MAGIC " ", strlen(SEEN_MAGIC) + 1) != 0)
		return false;
	char digest[65];
	unsigned long long dev, ino, size, mtime_ns;
	long long mtime_s, deadline;
	if (sscanf(line + strlen(SEEN_MAGIC) + 1,
	           "%64s %llu %llu %llu %lld %llu %lld", digest, &dev, &ino,
	           &size, &mtime_s, &mtime_ns, &deadline) != 7 ||
	    strlen(digest) != 64)
		return false;
	struct stat st;
	if (stat(state_path, &st) < 0 || (unsigned long long)st.st_dev != dev ||
	    (unsigned long long)st.st_ino != ino ||
	    (unsigned long long)st.st_size != size ||
	    (long long)st.st_mtim.tv_sec != mtime_s ||
	    (unsigned long long)st.st_mtim.tv_nsec != mtime_ns ||
	    now >= deadline)
		return false;
	memcpy(digest_r, digest, 65);
	return true;
}

void
pop3_seen_write(const char *seen_path, const char *state_path,
                const char *digest, int64_t deadline)
{
	struct stat st;
	if (stat(state_path, &st) < 0)
		return;
	char line[256];
	int len = snprintf(
	    line, sizeof(line),
	    SEEN_MAGIC " %s %llu %llu %llu %lld %llu %lld\n", digest,
	    (unsigned long long)st.st_dev, (unsigned long long)st.st_ino,
	    (unsigned long long)st.st_size, (long long)st.st_mtim.tv_sec,
	    (unsigned long long)st.st_mtim.tv_nsec, (long long)deadline);
	char *tmp = xasprintf("%s.tmp", seen_path);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	bool ok = fd >= 0 && write(fd, line, (size_t)len) == len;
	if (fd >= 0 && close(fd) < 0)
		ok = false;
	if (!ok || rename(tmp, seen_path) < 0)
		unlink(tmp);
	free(tmp);
}

void
pop3_seen_forget(const char *seen_path)
{
	/* If it cannot go, the next check still finds the state changed or
	 * the deadline passed wherever it would matter. */
	unlink(seen_path);
}
