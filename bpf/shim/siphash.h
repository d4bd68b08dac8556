/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * SipHash (Aumasson and Bernstein, 2012): a keyed hash whose outputs cannot be
 * predicted, nor collisions made, without its 128-bit key. The fast path
 * (fastpath.c) decides by a payload's hash that a keepalive changed nothing:
 * an agent writes part of that payload (its version, its os strings), and
 * with a public hash it could write a new one that hashes as its last — the
 * tap would then publish the old values. `c` compression and `d`
 * finalisation rounds: 2 and 4 are the reference's (its test vectors check
 * this code, test/siphash.test.ts), 1 and 3 what the fast path uses (as
 * Rust's standard hash maps: twice as fast, and still keyed).
 */
#ifndef WDBTAP_SIPHASH_H
#define WDBTAP_SIPHASH_H
#include <stddef.h>
#include <stdint.h>
#include <string.h>

static inline uint64_t sip_rotl(uint64_t x, int b)
{
	return (x << b) | (x >> (64 - b));
}

#define SIP_ROUND(v0, v1, v2, v3)                                                              \
	do {                                                                                   \
		v0 += v1; v1 = sip_rotl(v1, 13); v1 ^= v0; v0 = sip_rotl(v0, 32);                  \
		v2 += v3; v3 = sip_rotl(v3, 16); v3 ^= v2;                                         \
		v0 += v3; v3 = sip_rotl(v3, 21); v3 ^= v0;                                         \
		v2 += v1; v1 = sip_rotl(v1, 17); v1 ^= v2; v2 = sip_rotl(v2, 32);                  \
	} while (0)

/* The 64-bit SipHash-c-d of p[0..n) under key k (k[0] the key's first 8 bytes, little-endian). */
static inline uint64_t siphash(const uint8_t *p, size_t n, const uint64_t k[2], int c, int d)
{
	uint64_t v0 = 0x736f6d6570736575ull ^ k[0], v1 = 0x646f72616e646f6dull ^ k[1];
	uint64_t v2 = 0x6c7967656e657261ull ^ k[0], v3 = 0x7465646279746573ull ^ k[1];
	uint64_t m;
	size_t i = 0;

	for (; i + 8 <= n; i += 8) {
		memcpy(&m, p + i, 8); /* little-endian hosts only (x86, arm64), as the record layout */
		v3 ^= m;
		for (int r = 0; r < c; r++)
			SIP_ROUND(v0, v1, v2, v3);
		v0 ^= m;
	}
	m = 0;
	memcpy(&m, p + i, n - i);
	m |= (uint64_t)n << 56;
	v3 ^= m;
	for (int r = 0; r < c; r++)
		SIP_ROUND(v0, v1, v2, v3);
	v0 ^= m;
	v2 ^= 0xff;
	for (int r = 0; r < d; r++)
		SIP_ROUND(v0, v1, v2, v3);
	return v0 ^ v1 ^ v2 ^ v3;
}

#endif
