// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <stdlib.h>
#include <string.h>
#include "minq.h"

/* A ring this large once a backlog is gone is freed (4,096 entries: 64 KiB). */
#define MINQ_KEEP 4096

static bool grow(struct minq *m)
{
	size_t cap = m->cap ? m->cap * 2 : 256;
	struct minq_ent *e = malloc(cap * sizeof(*e));

	if (!e)
		return false;
	for (size_t i = 0; i < m->n; i++) /* unrolled from the ring: head at 0 */
		e[i] = m->e[(m->head + i) & (m->cap - 1)];
	free(m->e);
	m->e = e;
	m->cap = cap;
	m->head = 0;
	return true;
}

bool minq_push(struct minq *m, uint64_t ts, uint64_t end)
{
	if (m->broken)
		return false;
	/* An entry no older than the new one can never be the oldest again while the new one is in:
	 * it leaves the queue first. */
	while (m->n && m->e[(m->head + m->n - 1) & (m->cap - 1)].ts >= ts)
		m->n--;
	if (m->n == m->cap && !grow(m)) {
		m->broken = true;
		return false;
	}
	m->e[(m->head + m->n) & (m->cap - 1)] = (struct minq_ent){ .ts = ts, .end = end };
	m->n++;
	return true;
}

void minq_taken(struct minq *m, uint64_t through)
{
	while (m->n && m->e[m->head].end <= through) {
		m->head = (m->head + 1) & (m->cap - 1);
		m->n--;
	}
}

uint64_t minq_min(const struct minq *m, uint64_t none)
{
	return m->n ? m->e[m->head].ts : none;
}

void minq_reset(struct minq *m)
{
	m->head = m->n = 0;
	m->broken = false;
	if (m->cap > MINQ_KEEP)
		minq_free(m);
}

void minq_free(struct minq *m)
{
	free(m->e);
	memset(m, 0, sizeof(*m));
}
