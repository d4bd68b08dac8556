// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
// The unchanged keepalive as one small record (fastpath.h). State per
// connection (a table by the client socket's inode) and per agent (the hash of
// the last payload sent whole, by agent id). Both tables are bounded; a
// collision in them only sends a record whole, never a wrong tick. The hash is
// keyed (siphash.h): a payload made to hash as the last one cannot be computed.
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <linux/types.h>
#include "../wdbtap.h"
#include "fastpath.h"
#include "siphash.h"

#ifndef CONN_SLOTS
#define CONN_SLOTS 4096  /* connections followed; remoted keeps a handful (the fuzz harness: fewer, to fill) */
#endif
#define CONN_PROBE 8
#ifndef KEY_SLOTS
#define KEY_SLOTS (1u << 18) /* agents by id (test/helpers/fastpath-fuzz.c: fewer, so that ids share slots) */
#endif

struct fconn {
	uint64_t ino;      /* the client socket's inode (0: free) */
	int32_t outstanding; /* request frames sent on whose reply has not come */
	uint8_t slow;      /* a record that was not whole frames came: no fast path on it */
	struct held *held; /* a request waiting for its reply, to become a tick */
};

struct fkey {
	uint32_t key;
	uint64_t hash; /* 0: nothing (the controller forgot it) */
};

struct fastpath {
	struct fconn conns[CONN_SLOTS];
	struct fkey *keys;
	struct fastpath_stats stats;
	uint64_t key[2]; /* the payload hash's key: random, this process's own */
	/* Connections whose request waits for its reply (held): under the shim's cmu, read by stats. Should
	 * it ever be wrong, a round takes twice (wdbtap_take's *more) — the cost before it was counted. */
	uint64_t holding;
};

static const char AGENT_DATA[] = "global update-agent-data ";

/* 16 random bytes from the kernel; 0 or -errno. (Node itself refuses to start without getrandom.) */
static int random_key(uint64_t key[2])
{
	uint8_t *p = (uint8_t *)key;
	size_t got = 0;

	while (got < 16) {
		ssize_t n = getrandom(p + got, 16 - got, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? -errno : -EIO;
		got += (size_t)n;
	}
	return 0;
}

struct fastpath *fastpath_new(char *err, size_t errlen)
{
	struct fastpath *f = calloc(1, sizeof(*f));
	int rc;

	if (!f || !(f->keys = calloc(KEY_SLOTS, sizeof(*f->keys)))) {
		free(f);
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	rc = random_key(f->key);
	if (rc < 0) {
		snprintf(err, errlen, "cannot read a random key (getrandom: %s)", strerror(-rc));
		fastpath_free(f);
		return NULL;
	}
	return f;
}

void fastpath_free(struct fastpath *f)
{
	if (!f)
		return;
	for (size_t i = 0; i < CONN_SLOTS; i++)
		free(f->conns[i].held);
	free(f->keys);
	free(f);
}

void fastpath_stats(struct fastpath *f, struct fastpath_stats *out)
{
	out->ticks = __atomic_load_n(&f->stats.ticks, __ATOMIC_RELAXED);
	out->keyed = __atomic_load_n(&f->stats.keyed, __ATOMIC_RELAXED);
	out->slow_connections = __atomic_load_n(&f->stats.slow_connections, __ATOMIC_RELAXED);
	out->held = fastpath_holding(f);
	out->expired = __atomic_load_n(&f->stats.expired, __ATOMIC_RELAXED);
}

uint64_t fastpath_holding(const struct fastpath *f)
{
	return __atomic_load_n(&f->holding, __ATOMIC_RELAXED);
}

uint64_t fastpath_oldest_held(struct fastpath *f, uint64_t than)
{
	/* Up to the last held request, not the whole table (96 KiB: wdbtap_delivered asks every 2 ms while
	 * a look at wazuh-db waits for the capture, mostly with nothing held). */
	uint64_t left = fastpath_holding(f);

	for (size_t i = 0; i < CONN_SLOTS && left; i++)
		if (f->conns[i].held) {
			left--;
			if (f->conns[i].held->ts < than)
				than = f->conns[i].held->ts;
		}
	return than;
}

void fastpath_forget(struct fastpath *f, uint32_t key)
{
	__atomic_store_n(&f->keys[key & (KEY_SLOTS - 1)].hash, 0, __ATOMIC_RELAXED);
}

/* A slot of the connection table (murmur3's finaliser): inodes are the kernel's, not an agent's. */
static uint64_t mix(uint64_t h)
{
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdull;
	h ^= h >> 33;
	h *= 0xc4ceb9fe1a85ec53ull;
	return h ^ (h >> 33);
}

/*
 * A payload's hash: SipHash-1-3 under this process's key; never 0 (0 means "nothing" in the key
 * table). It was an unkeyed chain of murmur3's finaliser, each step invertible: an agent, which
 * writes part of its own update-agent-data, could compute bytes that made a new payload hash as its
 * last one (test/fastpath-e2e.test.ts), and the tap published the old values. Faster too: ~160
 * against ~350 ns for a real 600-byte payload.
 */
static uint64_t hash_bytes(const struct fastpath *f, const uint8_t *p, uint32_t n)
{
	uint64_t h = siphash(p, n, f->key, 1, 3);

	return h ? h : 1;
}

/* The request a connection holds (waiting for its reply) goes out whole. */
static void flush_held(struct fastpath *f, struct fconn *c, fastpath_emit emit, void *ctx)
{
	if (!c->held)
		return;
	__atomic_sub_fetch(&f->holding, 1, __ATOMIC_RELAXED);
	emit(ctx, c->held->data, c->held->len);
	c->outstanding++;
	free(c->held);
	c->held = NULL;
}

uint32_t fastpath_expire(struct fastpath *f, uint64_t before, fastpath_emit emit, void *ctx)
{
	uint32_t n = 0;

	for (size_t i = 0; i < CONN_SLOTS && fastpath_holding(f) > 0; i++)
		if (f->conns[i].held && f->conns[i].held->ts < before) {
			flush_held(f, &f->conns[i], emit, ctx); /* its reply, should it come, pairs as any reply */
			__atomic_add_fetch(&f->stats.expired, 1, __ATOMIC_RELAXED);
			n++;
		}
	return n;
}

static struct fconn *conn_of(struct fastpath *f, uint64_t ino, fastpath_emit emit, void *ctx)
{
	size_t at = (size_t)(mix(ino) & (CONN_SLOTS - 1)), free_slot = CONN_SLOTS;

	for (size_t k = 0; k < CONN_PROBE; k++) {
		struct fconn *c = &f->conns[(at + k) & (CONN_SLOTS - 1)];
		if (c->ino == ino)
			return c;
		if (!c->ino && free_slot == CONN_SLOTS)
			free_slot = (at + k) & (CONN_SLOTS - 1);
	}
	if (free_slot == CONN_SLOTS) {
		/* Full around here (dead short connections): reuse the first slot; its held request goes out. */
		flush_held(f, &f->conns[at], emit, ctx);
		free_slot = at;
	}
	struct fconn *c = &f->conns[free_slot];
	memset(c, 0, sizeof(*c));
	c->ino = ino;
	return c;
}

/* Whole frames tiling the record exactly: how many (-1: not that). */
static int whole_frames(const struct wdbtap_record *r)
{
	uint32_t n = r->cap_len, pos = 0;
	int frames = 0;

	if (r->offset != 0 || (r->flags & WDBTAP_F_TRUNCATED) || r->cap_len != r->bytes ||
	    ((r->flags & WDBTAP_F_GAP) && r->frame_off != 0))
		return -1;
	while (pos + 4 <= n) {
		uint32_t len;
		memcpy(&len, r->data + pos, 4);
		if (len == 0 || len > WDBTAP_MAX_FRAME || len > n - pos - 4)
			return -1;
		pos += 4 + len;
		frames++;
	}
	return pos == n ? frames : -1;
}

/* The agent id of `"id":N` (the first one, followed by , or }), or -1. */
static int64_t agent_key(const uint8_t *p, uint32_t n)
{
	for (uint32_t i = 0; i + 5 < n; i++) {
		if (p[i] != '"' || memcmp(p + i, "\"id\":", 5) != 0)
			continue;
		uint32_t j = i + 5, digits = 0;
		int64_t v = 0;
		while (j < n && p[j] >= '0' && p[j] <= '9' && digits < 10) {
			v = v * 10 + (p[j] - '0');
			j++;
			digits++;
		}
		if (digits == 0 || digits > 9 || j >= n || (p[j] != ',' && p[j] != '}'))
			return -1;
		return v;
	}
	return -1;
}

void fastpath_take(struct fastpath *f, struct held *h, fastpath_emit emit, void *ctx)
{
	struct wdbtap_record *r = (struct wdbtap_record *)h->data;
	bool req = r->direction == WDBTAP_DIR_REQUEST;
	struct fconn *c;
	int frames;

	r->hash = 0;
	r->key = 0;
	if (req)
		r->read_ago = 0; /* a reply's only */
	if (r->flags & WDBTAP_F_TICK)
		goto out; /* not from the kernel: never (the flag is the shim's) */
	uint64_t ino = req ? r->local_ino : r->peer_ino;
	if (!ino) {
		/* No inode (a socket read as gone): 0 marks a free slot of the table, where a request held
		 * would be dropped by the next connection that takes the slot (test/shim-fuzz.test.ts found
		 * it). Out as it came. */
		emit(ctx, h->data, h->len);
		goto out;
	}
	c = conn_of(f, ino, emit, ctx);
	frames = whole_frames(r);
	if (frames < 0 && !c->slow) {
		c->slow = 1; /* a split frame (5.x) or a loss: the controller reassembles; no fast path here */
		__atomic_add_fetch(&f->stats.slow_connections, 1, __ATOMIC_RELAXED);
	}
	if (req) {
		flush_held(f, c, emit, ctx); /* a second request before the reply: no tick for the first */
		if (!c->slow && frames == 1 && c->outstanding == 0 && r->cap_len > 4 + sizeof(AGENT_DATA) - 1 &&
		    memcmp(r->data + 4, AGENT_DATA, sizeof(AGENT_DATA) - 1) == 0) {
			const uint8_t *payload = r->data + 4;
			uint32_t plen;
			memcpy(&plen, r->data, 4);
			int64_t key = agent_key(payload, plen);
			if (key >= 0) {
				uint64_t hash = hash_bytes(f, payload, plen);
				struct fkey *k = &f->keys[(uint32_t)key & (KEY_SLOTS - 1)];
				r->key = (uint32_t)key;
				r->hash = hash;
				if (k->key == (uint32_t)key && __atomic_load_n(&k->hash, __ATOMIC_RELAXED) == hash) {
					c->held = h; /* the controller has this payload: wait for the reply */
					__atomic_add_fetch(&f->holding, 1, __ATOMIC_RELAXED);
					return;
				}
				k->key = (uint32_t)key;
				__atomic_store_n(&k->hash, hash, __ATOMIC_RELAXED);
				r->flags |= WDBTAP_F_KEYED; /* sent whole: the controller keeps its parse by key and hash */
				__atomic_add_fetch(&f->stats.keyed, 1, __ATOMIC_RELAXED);
			}
		}
		emit(ctx, h->data, h->len);
		if (frames > 0)
			c->outstanding += frames;
		goto out;
	}
	if (c->held) {
		struct wdbtap_record *q = (struct wdbtap_record *)c->held->data;
		if (frames == 1 && r->cap_len == 6 && memcmp(r->data, "\x02\0\0\0ok", 6) == 0) {
			/* wazuh-db said ok to an unchanged keepalive: one small record for both. */
			_Alignas(struct wdbtap_record) uint8_t buf[sizeof(struct wdbtap_record) + 8];
			struct wdbtap_record *tk = (struct wdbtap_record *)buf;
			memcpy(tk, q, sizeof(*tk));
			tk->cap_len = 8;
			tk->flags = WDBTAP_F_TICK | WDBTAP_F_LAST;
			memcpy(tk->data, &r->ts_ns, 8);
			tk->read_ago = r->read_ago; /* before the reply's ts_ns, as on the reply */
			emit(ctx, buf, sizeof(buf));
			__atomic_add_fetch(&f->stats.ticks, 1, __ATOMIC_RELAXED);
			free(c->held);
			c->held = NULL;
			__atomic_sub_fetch(&f->holding, 1, __ATOMIC_RELAXED);
			goto out;
		}
		flush_held(f, c, emit, ctx);
	}
	emit(ctx, h->data, h->len);
	if (frames > 0) {
		c->outstanding -= frames;
		if (c->outstanding < 0)
			c->outstanding = 0;
	}
out:
	free(h);
}
