// bpf/shim/minq.c against a walk of the queue it stands for: random appends (entry times mostly rising,
// some older — the fast path's held keepalives — and ties), takes of a few records from the head, and
// the queue emptied; after each, the oldest entry time must be the walk's. Built with ASan and UBSan
// by test/shim-minq.test.ts. Usage: minq-check SEED OPS; exit 1 and a line on the first difference.
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdint.h>
#include "../../bpf/shim/minq.h"

#define NONE UINT64_MAX
#define MAXQ 200000

static uint64_t rng;
static uint64_t next(void) /* xorshift64* */
{
	rng ^= rng >> 12;
	rng ^= rng << 25;
	rng ^= rng >> 27;
	return rng * 2685821657736338717ull;
}

static struct { uint64_t ts, end; } q[MAXQ];
static size_t head, len, longest;

int main(int argc, char **argv)
{
	struct minq m = { 0 };
	uint64_t in = 0, out = 0, now = 1000;
	long ops = argc > 2 ? atol(argv[2]) : 100000;

	rng = (argc > 1 ? strtoull(argv[1], NULL, 10) : 1) * 0x9e3779b97f4a7c15ull | 1;
	for (long i = 0; i < ops; i++) {
		/* phases of 5,000 ops: a backlog building (mostly appends), then draining (mostly takes) */
		bool filling = (i / 5000) % 2 == 0;
		uint64_t r = next() % 10000;
		if (r < (filling ? 8000u : 3000u) && len < MAXQ) { /* append a record of 40 to 700 bytes */
			uint64_t ts = (next() % 100 == 0) ? now - next() % 300 : (now += next() % 3);
			in += 44 + next() % 660;
			q[len].ts = ts;
			q[len].end = in;
			len++;
			if (!minq_push(&m, ts, in)) {
				fprintf(stderr, "op %ld: push refused without a memory failure\n", i);
				return 1;
			}
		} else if (r < 9998) { /* take a few from the head */
			uint64_t k = next() % (filling ? 3 : 8);
			while (k-- && head < len)
				out = q[head++].end;
			minq_taken(&m, out);
		} else { /* take everything: the queue empty */
			if (head < len)
				out = q[len - 1].end;
			head = len = 0;
			minq_taken(&m, out);
			minq_reset(&m);
		}
		if (len - head > longest)
			longest = len - head;
		if (head == len && len) { /* the shim resets when its queue empties */
			head = len = 0;
			minq_reset(&m);
		}
		uint64_t want = NONE;
		for (size_t j = head; j < len; j++)
			if (q[j].ts < want)
				want = q[j].ts;
		uint64_t got = minq_min(&m, NONE);
		if (got != want) {
			fprintf(stderr, "op %ld: oldest %llu, the walk says %llu (%zu records)\n", i,
				(unsigned long long)got, (unsigned long long)want, len - head);
			return 1;
		}
	}
	/* broken (an append that found no memory): refused until the queue empties */
	m.broken = true;
	if (minq_push(&m, 1, in + 1)) {
		fprintf(stderr, "a broken minq took a record\n");
		return 1;
	}
	minq_reset(&m);
	if (m.broken || !minq_push(&m, 5, in + 2) || minq_min(&m, NONE) != 5) {
		fprintf(stderr, "a reset did not mend it\n");
		return 1;
	}
	minq_free(&m);
	printf("ok %ld ops, the queue up to %zu records\n", ops, longest);
	return 0;
}
