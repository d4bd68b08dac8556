/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Records held until every earlier write has reached user space: a min-heap by
 * the syscall's entry time (and arrival, for the chunks of one write). Each
 * CPU has its own perf ring, and a write is output at its sys_exit, so the
 * rings deliver out of the order the daemons wrote in; the shim releases a
 * record only once no write that entered before it can still come
 * (wdbtap_shim.c: the watermark).
 */
#ifndef WDBTAP_REORDER_H
#define WDBTAP_REORDER_H
#include <stddef.h>
#include <stdint.h>

struct held {
	uint64_t ts;   /* ts_ns of the record: the write's sys_enter */
	uint64_t seq;  /* arrival order, for equal ts */
	uint32_t len;
	uint32_t pad;  /* data at offset 24: 8-aligned, for it is read as a struct wdbtap_record (at 20 it
			* was not — undefined behaviour x86 forgives, found by test/shim-fuzz.test.ts) */
	uint8_t data[];
};

struct reorder {
	struct held **heap;
	size_t n, cap;
	uint64_t seq;
	size_t bytes; /* held, for the shim's memory bound */
};

/* Copy a record in; -1 when out of memory. */
int reorder_push(struct reorder *r, const void *rec, uint32_t len, uint64_t ts);
/* The earliest record if it entered before wm (the caller frees it), else NULL. */
struct held *reorder_pop_before(struct reorder *r, uint64_t wm);
void reorder_free(struct reorder *r);

#endif
