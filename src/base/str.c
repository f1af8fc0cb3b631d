/* SPDX-License-Identifier: GPL-3.0-or-later */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/base.h"

size_t
fm_strlcpy(char *dst, const char *src, size_t dstsize)
{
	size_t len = strlen(src);
	if (dstsize > 0) {
		size_t n = len < dstsize - 1 ? len : dstsize - 1;
		memcpy(dst, src, n);
		dst[n] = '\0';
	}
	return len;
}

int
fm_parse_long(const char *s, long min, long max, long *value_r)
{
	/* strtol accepts leading space and a '+': we want neither. */
	if (s == NULL || *s == '\0')
		return -1;
	if (!(s[0] >= '0' && s[0] <= '9') && !(s[0] == '-' && min < 0))
		return -1;
	char *end;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (errno != 0 || *end != '\0' || v < min || v > max)
		return -1;
	*value_r = v;
	return 0;
}

static bool
is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' ||
	       c == '\v';
}

char *
fm_str_trim(char *s)
{
	while (is_space(*s))
		s++;
	size_t n = strlen(s);
	while (n > 0 && is_space(s[n - 1]))
		s[--n] = '\0';
	return s;
}

bool
fm_str_has_prefix(const char *s, const char *prefix)
{
	return strncmp(s, prefix, strlen(prefix)) == 0;
}

static char
ascii_lower(char c)
{
	return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

bool
fm_str_ieq(const char *a, const char *b)
{
	for (; *a != '\0' && *b != '\0'; a++, b++)
		if (ascii_lower(*a) != ascii_lower(*b))
			return false;
	return *a == *b;
}

bool
fm_str_same(const char *a, const char *b)
{
	return strcmp(a != NULL ? a : "", b != NULL ? b : "") == 0;
}

unsigned
fm_str_distance(const char *a, const char *b)
{
	enum { MAXLEN = 64, CAP = 100 };
	size_t la = strlen(a), lb = strlen(b);
	if (la > MAXLEN || lb > MAXLEN)
		return CAP;
	unsigned row[MAXLEN + 1];
	for (size_t j = 0; j <= lb; j++)
		row[j] = (unsigned)j;
	for (size_t i = 1; i <= la; i++) {
		unsigned diag = row[0];
		row[0] = (unsigned)i;
		for (size_t j = 1; j <= lb; j++) {
			unsigned up = row[j];
			unsigned cost = a[i - 1] == b[j - 1] ? 0 : 1;
			unsigned best = diag + cost;
			if (row[j - 1] + 1 < best)
				best = row[j - 1] + 1;
			if (up + 1 < best)
				best = up + 1;
			row[j] = best;
			diag = up;
		}
	}
	return row[lb] < CAP ? row[lb] : CAP;
}

void
fm_str_printable(const char *src, char *dst, size_t dstsize)
{
	if (dstsize == 0)
		return;
	size_t o = 0;
	for (const char *p = src; *p != '\0'; p++) {
		if (o + 1 >= dstsize) {
			if (dstsize > 4)
				memcpy(dst + dstsize - 4, "...", 3);
			o = dstsize - 1;
			break;
		}
		unsigned char c = (unsigned char)*p;
		if (c == '\n' || c == '\r' || c == '\t')
			dst[o++] = ' ';
		else
			dst[o++] = (c < 0x20 || c == 0x7f) ? '?' : (char)c;
	}
	dst[o] = '\0';
}

uint64_t
fm_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* 8 bytes at a time, in two independent lanes: hashed byte by byte
 * (FNV-1a), a sync state's base names took more time than the rest of
 * its load. */
uint32_t
fm_hash_mem(const void *data, size_t len)
{
	const char *p = data;
	const uint64_t k1 = 0xbf58476d1ce4e5b9ull, k2 = 0x94d049bb133111ebull;
	const char *end = p + len;
	uint64_t a = 0x9e3779b97f4a7c15ull ^ len, b = 0x6a09e667f3bcc909ull;
	uint64_t w;
	for (; end - p >= 16; p += 16) {
		memcpy(&w, p, 8);
		a = (a ^ w) * k1;
		a ^= a >> 31;
		memcpy(&w, p + 8, 8);
		b = (b ^ w) * k2;
		b ^= b >> 29;
	}
	w = 0;
	if (len >= 8) {
		/* The last 8 bytes, some of them perhaps hashed already. */
		memcpy(&w, end - 8, 8);
		if (end - p > 8) {
			uint64_t v;
			memcpy(&v, p, 8);
			a = (a ^ v) * k1;
			a ^= a >> 31;
		}
	} else {
		for (size_t i = 0; i < len; i++)
			w |= (uint64_t)(unsigned char)p[i] << (8 * i);
	}
	b = (b ^ w) * k2;
	uint64_t h = a ^ (b >> 32 | b << 32);
	h ^= h >> 29;
	h *= k1;
	return (uint32_t)(h >> 32);
}
