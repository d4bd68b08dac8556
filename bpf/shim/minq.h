/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The oldest entry time among the records in the shim's queue, in O(1): a min-deque (a monotonic queue)
 * beside the queue, kept as records are appended and taken. The queue is not in entry-time order (a
 * keepalive the fast path held for its reply goes out after later writes), so wdbtap_delivered walked
 * it whole — a cache miss a record: with a backlog of ~15 MB (100,000 agents' first keepalives, while a
 * resynchronisation waits for the capture to settle, every 2 ms) that walk was ~4 % of the tap's time.
 *
 * Positions are byte counts since the start (`end`: how many bytes were appended once the record was),
 * so the queue's compactions and resets do not move them.
 */
#ifndef WDBTAP_MINQ_H
#define WDBTAP_MINQ_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct minq_ent {
	uint64_t ts;
	uint64_t end;
};

struct minq {
	struct minq_ent *e; /* a ring of cap (a power of 2) entries, n of them from head */
	size_t head, n, cap;
	bool broken; /* an append found no memory: the answer is unknown until the queue empties (reset) */
};

/* A record appended: entry time ts, the byte count once it is in. False (and broken) without memory. */
bool minq_push(struct minq *m, uint64_t ts, uint64_t end);
/* Every record whose `end` is at or before `through` was taken. */
void minq_taken(struct minq *m, uint64_t through);
/* The oldest entry time of the records in the queue, `none` when it is empty. Not when broken. */
uint64_t minq_min(const struct minq *m, uint64_t none);
/* The queue is empty: nothing held, known again; a large ring is given back. */
void minq_reset(struct minq *m);
void minq_free(struct minq *m);

#endif
