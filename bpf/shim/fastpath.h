/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The keepalive that changes nothing, recognised in the shim (its reader
 * thread, off the controller's thread). remoted writes every agent's
 * `update-agent-data` again at each keepalive, byte for byte the same while
 * nothing about the agent changed; the controller parsed it the first time.
 * When a connection's request is one whole frame with the payload the
 * controller already has for that agent, and wazuh-db answers it `ok`, the two
 * records become one small TICK record (agent key, payload hash, both times):
 * no copy of the 600-byte JSON, no decode, no parse in the controller.
 * Anything else — a new payload, a split frame, a pipelined request, another
 * reply — goes through as it came.
 */
#ifndef WDBTAP_FASTPATH_H
#define WDBTAP_FASTPATH_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "reorder.h"

struct fastpath;

/* Where records go, in order: the shim's queue. False when it is full. */
typedef bool (*fastpath_emit)(void *ctx, const void *rec, uint32_t len);

/* NULL, with the reason in err: out of memory, or no random key for the payload hash. */
struct fastpath *fastpath_new(char *err, size_t errlen);
/* Take one record in order (h is freed or kept); emits zero, one or two records. */
void fastpath_take(struct fastpath *f, struct held *h, fastpath_emit emit, void *ctx);
/* The controller lost an agent's payload (it could not use a tick): send the next one whole. */
void fastpath_forget(struct fastpath *f, uint32_t key);
void fastpath_free(struct fastpath *f);
/* Requests held for their replies since before `before` (an entry time) go out whole: a reply that
 * never comes (wazuh-db killed mid-request, the connection gone) must not hold one for good. How many. */
uint32_t fastpath_expire(struct fastpath *f, uint64_t before, fastpath_emit emit, void *ctx);
/* The entry time of the oldest request held for its reply, if older than `than`; else `than`. */
uint64_t fastpath_oldest_held(struct fastpath *f, uint64_t than);
/* How many requests are held for their replies now. */
uint64_t fastpath_holding(const struct fastpath *f);

/* Counters, for status. */
struct fastpath_stats {
	uint64_t ticks, keyed, slow_connections;
	uint64_t held; /* requests held for their replies now */
	uint64_t expired; /* requests let go whole after HOLD_NS without their replies (fastpath_expire) */
};
void fastpath_stats(struct fastpath *f, struct fastpath_stats *out);

#endif
