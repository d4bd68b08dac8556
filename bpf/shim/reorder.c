// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <stdlib.h>
#include <string.h>
#include "reorder.h"

static int before(const struct held *a, const struct held *b)
{
	return a->ts < b->ts || (a->ts == b->ts && a->seq < b->seq);
}

int reorder_push(struct reorder *r, const void *rec, uint32_t len, uint64_t ts)
{
	struct held *h;
	size_t i;

	if (r->n == r->cap) {
		size_t cap = r->cap ? r->cap * 2 : 1024;
		struct held **heap = realloc(r->heap, cap * sizeof(*heap));
		if (!heap)
			return -1;
		r->heap = heap;
		r->cap = cap;
	}
	h = malloc(sizeof(*h) + len);
	if (!h)
		return -1;
	h->ts = ts;
	h->seq = r->seq++;
	h->len = len;
	memcpy(h->data, rec, len);
	/* sift up */
	for (i = r->n++; i > 0; i = (i - 1) / 2) {
		struct held *p = r->heap[(i - 1) / 2];
		if (!before(h, p))
			break;
		r->heap[i] = p;
	}
	r->heap[i] = h;
	r->bytes += len;
	return 0;
}

struct held *reorder_pop_before(struct reorder *r, uint64_t wm)
{
	struct held *top, *last;
	size_t i = 0;

	if (!r->n || r->heap[0]->ts >= wm)
		return NULL;
	top = r->heap[0];
	last = r->heap[--r->n];
	/* sift the last one down from the root */
	for (;;) {
		size_t c = 2 * i + 1;
		if (c >= r->n)
			break;
		if (c + 1 < r->n && before(r->heap[c + 1], r->heap[c]))
			c++;
		if (!before(r->heap[c], last))
			break;
		r->heap[i] = r->heap[c];
		i = c;
	}
	if (r->n)
		r->heap[i] = last;
	r->bytes -= top->len;
	return top;
}

void reorder_free(struct reorder *r)
{
	for (size_t i = 0; i < r->n; i++)
		free(r->heap[i]);
	free(r->heap);
	memset(r, 0, sizeof(*r));
}
