// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
// libFuzzer harness for the shim's C that reads bytes an agent writes: the fast path (fastpath.c:
// frames, `"id":N`, the keyed hash, the tables of connections and agents) and the reorder heap.
// remoted writes an agent's name, OS and labels into update-agent-data, so a hostile agent shapes
// what these functions parse, in the tap's process, as root. Built by test/shim-fuzz.test.ts with
// AddressSanitizer, UndefinedBehaviorSanitizer and LeakSanitizer; an invariant below that breaks
// aborts, as a sanitizer's finding does.
//
// The invariants, beside memory safety and no leak:
//   - every record out is well formed (its length is its header and its cap_len);
//   - a TICK goes out only for the payload the controller was last sent whole (F_KEYED) for that
//     agent and not told to forget since: the model below keeps, for each slot of the agent table,
//     the key and bytes last sent whole, and compares the tick's request with them (the property
//     the keyed hash defends: test/fastpath-e2e.test.ts "a payload made to collide");
//   - the count of held requests is the number of connections holding one, and
//     fastpath_oldest_held() is the earliest of them;
//   - the reorder heap pops the earliest (time, arrival) record before the watermark, and nothing
//     when none is before it; its byte count is what it holds.
//
// Input: the first byte picks the part (even: the fast path, odd: the heap), then operations:
//   fast path, op byte o:  o % 4 < 2  a record: flags byte f, u16 length, the bytes
//                          (f bit 7 reply, bits 5-6 the connection 0..3 — 0 is an inode the
//                          kernel never gives, tried all the same —, bit 0 TRUNCATED, bit 1 GAP with
//                          frame_off the next byte, bit 2 offset 1, bit 3 bytes != cap_len, bit 4
//                          TICK set on input, which only the shim may set);
//                          o == 6      the shim's expiry of held requests: u16 age, in records;
//                          o % 4 == 2  (other than 6) the controller forgets an agent: u32 key;
//                          o % 4 == 3  a flood of short connections (the next byte: how many),
//                          each sending the last request's bytes: fills the connection table;
//   heap, op byte o:       even  push: u16 time, u8 length; odd  pop before: u16 watermark.
// With -DPLANT_FORGET_IGNORED the harness tells the model an agent was forgotten without telling
// the fast path: the next unchanged keepalive's tick must then be caught (the test's proof that
// the model bites).
/* The tables smaller than the shim's, so that an input reaches what a large manager would: 256 slots for
 * agents, not 262,144 (agents 1 and 257 share one), and 64 for connections, not 4,096 (a flood fills
 * them: a held request's slot taken by another connection). */
#define KEY_SLOTS (1u << 8)
#define CONN_SLOTS 64
#include "../../bpf/shim/fastpath.c"
#include "../../bpf/shim/reorder.h"

#define CHECK(c, ...)                                   \
	do {                                            \
		if (!(c)) {                             \
			fprintf(stderr, "invariant: "); \
			fprintf(stderr, __VA_ARGS__);   \
			fprintf(stderr, "\n");          \
			abort();                        \
		}                                       \
	} while (0)

#define REC sizeof(struct wdbtap_record)
#define MAX_DATA 8192
#define CONNS 4

struct sent { uint32_t key, len; uint8_t *bytes; };

static struct sent *model;              /* by agent slot: what the controller was last sent whole */
static uint8_t *last_req[CONNS];        /* by connection: its last request's payload */
static uint32_t last_req_len[CONNS];
static uint32_t last_c;                 /* the connection of the last request */
static uint64_t ticks, keyed, inputs;   /* over the whole run, printed at exit */
static uint32_t *used;                  /* the model's slots written in this input, to free them */
static size_t nused, capused;

static void forget_model(uint32_t key)
{
	struct sent *s = &model[key & (KEY_SLOTS - 1)];
	free(s->bytes);
	memset(s, 0, sizeof(*s));
}

static bool on_emit(void *ctx, const void *p, uint32_t len)
{
	const struct wdbtap_record *r = p;
	(void)ctx;

	CHECK(len >= REC && r->cap_len == len - REC, "a record of %u bytes says cap_len %u", len, r->cap_len);
	if (r->flags & WDBTAP_F_TICK) {
		CHECK(r->cap_len == 8 && r->direction == WDBTAP_DIR_REQUEST, "a tick's shape");
		uint64_t c = r->local_ino;
		CHECK(c < CONNS && last_req[c], "a tick from a connection that sent no request");
		const struct sent *s = &model[r->key & (KEY_SLOTS - 1)];
		CHECK(s->bytes && s->key == r->key, "a tick for agent %u, whose payload the controller does not have", r->key);
		CHECK(s->len == last_req_len[c] - 4 && memcmp(s->bytes, last_req[c] + 4, s->len) == 0,
		      "a tick for agent %u whose request differs from what the controller has", r->key);
		ticks++;
	} else if (r->flags & WDBTAP_F_KEYED) {
		CHECK(r->hash != 0 && r->cap_len > 4, "a keyed record's hash");
		struct sent *s = &model[r->key & (KEY_SLOTS - 1)];
		if (!s->bytes) {
			if (nused == capused) {
				capused = capused ? 2 * capused : 256;
				used = realloc(used, capused * sizeof(*used));
			}
			used[nused++] = r->key & (KEY_SLOTS - 1);
		}
		free(s->bytes);
		s->key = r->key;
		s->len = r->cap_len - 4;
		s->bytes = malloc(s->len);
		memcpy(s->bytes, r->data + 4, s->len);
		keyed++;
	}
	return true;
}

static void check_held(struct fastpath *f)
{
	uint64_t n = 0, oldest = UINT64_MAX;
	for (size_t i = 0; i < CONN_SLOTS; i++)
		if (f->conns[i].held) {
			n++;
			if (f->conns[i].held->ts < oldest)
				oldest = f->conns[i].held->ts;
		}
	CHECK(n == fastpath_holding(f), "held %lu, counted %lu", (unsigned long)n, (unsigned long)fastpath_holding(f));
	CHECK(fastpath_oldest_held(f, UINT64_MAX) == oldest, "the oldest held");
}

static struct held *record(uint64_t ts, uint8_t fl, const uint8_t *data, uint32_t n)
{
	struct held *h = calloc(1, sizeof(*h) + REC + n);
	struct wdbtap_record *r = (struct wdbtap_record *)h->data;
	uint32_t c = (fl >> 5) & 3;
	bool reply = fl & 0x80;

	h->ts = ts;
	h->len = REC + n;
	r->ts_ns = ts;
	r->direction = reply ? WDBTAP_DIR_REPLY : WDBTAP_DIR_REQUEST;
	r->local_ino = reply ? 100 + c : c;
	r->peer_ino = reply ? c : 100 + c;
	r->cap_len = n;
	r->bytes = n + ((fl & 8) ? 1 : 0);
	r->offset = (fl & 4) ? 1 : 0;
	r->flags = WDBTAP_F_LAST | ((fl & 1) ? WDBTAP_F_TRUNCATED : 0) | ((fl & 2) ? WDBTAP_F_GAP : 0) |
		   ((fl & 16) ? WDBTAP_F_TICK : 0);
	memcpy(r->data, data, n);
	if (!reply) { /* data may be last_req[c] itself (a flood): copied before the old one is freed */
		uint8_t *copy = malloc(n ? n : 1);
		memcpy(copy, data, n);
		free(last_req[c]);
		last_req[c] = copy;
		last_req_len[c] = n;
		last_c = c;
	}
	return h;
}

static void fuzz_fastpath(const uint8_t *d, size_t n)
{
	char err[128];
	struct fastpath *f = fastpath_new(err, sizeof(err));
	uint64_t ts = 1;
	size_t i = 0, ops = 0;

	CHECK(f, "fastpath_new: %s", err);
	while (i < n) {
		uint8_t op = d[i++];
		if (op % 4 < 2) {
			if (i + 3 > n)
				break;
			uint8_t fl = d[i];
			uint32_t len = (uint32_t)d[i + 1] | (uint32_t)d[i + 2] << 8;
			i += 3;
			struct held *h;
			if (fl & 2) { /* GAP: frame_off from the next byte */
				if (i >= n)
					break;
				uint8_t off = d[i++];
				if (len > n - i) len = (uint32_t)(n - i);
				if (len > MAX_DATA) len = MAX_DATA;
				h = record(ts++, fl, d + i, len);
				((struct wdbtap_record *)h->data)->frame_off = off;
			} else {
				if (len > n - i) len = (uint32_t)(n - i);
				if (len > MAX_DATA) len = MAX_DATA;
				h = record(ts++, fl, d + i, len);
			}
			i += len;
			fastpath_take(f, h, on_emit, NULL);
		} else if (op == 6) { /* the shim's expiry of held requests: those that entered `age` records ago */
			if (i + 2 > n)
				break;
			uint64_t age = (uint64_t)d[i] | (uint64_t)d[i + 1] << 8;
			i += 2;
			uint64_t before = ts > age ? ts - age : 0, oldest = fastpath_oldest_held(f, UINT64_MAX);
			uint32_t out = fastpath_expire(f, before, on_emit, NULL);
			CHECK(fastpath_oldest_held(f, UINT64_MAX) >= before, "a request held since before the expiry's time is left");
			CHECK(out == 0 || oldest < before, "expired %u, none was old enough", out);
		} else if (op % 4 == 2) {
			if (i + 4 > n)
				break;
			uint32_t key;
			memcpy(&key, d + i, 4);
			i += 4;
			forget_model(key);
#ifndef PLANT_FORGET_IGNORED
			fastpath_forget(f, key);
#endif
		} else {
			if (i >= n)
				break;
			uint32_t k = d[i++];
			for (uint32_t j = 0; j < k; j++) {
				/* Another connection each (inodes the harness's four never are), the last request's bytes. */
				uint32_t lc = last_c, len = last_req[lc] ? last_req_len[lc] : 0;
				struct held *h = record(ts++, (uint8_t)(lc << 5), last_req[lc] ? last_req[lc] : (const uint8_t *)"", len);
				((struct wdbtap_record *)h->data)->local_ino = 1000 + j * 7919u + (uint32_t)ops;
				fastpath_take(f, h, on_emit, NULL);
			}
		}
		if ((++ops & 15) == 0)
			check_held(f);
	}
	check_held(f);
	fastpath_free(f);
	for (int c = 0; c < CONNS; c++) {
		free(last_req[c]);
		last_req[c] = NULL;
	}
	last_c = 0;
	for (size_t k = 0; k < nused; k++)
		forget_model(used[k]);
	nused = 0;
}

/* The heap against a plain list: what it pops is the list's earliest before the watermark. */
static void fuzz_reorder(const uint8_t *d, size_t n)
{
	struct reorder r = {0};
	struct { uint64_t ts, seq; uint32_t len; } live[512];
	size_t nlive = 0, i = 0, bytes = 0;
	uint64_t seq = 0;
	uint8_t buf[256];

	while (i + 3 <= n) {
		uint8_t op = d[i];
		uint64_t v = (uint64_t)d[i + 1] | (uint64_t)d[i + 2] << 8;
		i += 3;
		if (op % 2 == 0 && nlive < 512) {
			uint32_t len = op; /* a length from the op byte itself */
			memset(buf, (int)v, sizeof(buf));
			CHECK(reorder_push(&r, buf, len, v) == 0, "push");
			live[nlive].ts = v;
			live[nlive].seq = seq++;
			live[nlive++].len = len;
			bytes += len;
		} else {
			size_t best = nlive;
			for (size_t k = 0; k < nlive; k++)
				if (live[k].ts < v && (best == nlive || live[k].ts < live[best].ts ||
						       (live[k].ts == live[best].ts && live[k].seq < live[best].seq)))
					best = k;
			struct held *h = reorder_pop_before(&r, v);
			if (best == nlive) {
				CHECK(!h, "popped at watermark %lu with nothing before it", (unsigned long)v);
			} else {
				CHECK(h && h->ts == live[best].ts && h->len == live[best].len, "not the earliest");
				for (uint32_t k = 0; k < h->len; k++)
					CHECK(h->data[k] == (uint8_t)h->ts, "its bytes");
				bytes -= h->len;
				live[best] = live[--nlive];
				free(h);
			}
		}
		CHECK(r.bytes == bytes && r.n == nlive, "counts");
	}
	reorder_free(&r);
}

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n)
{
	if (!model)
		model = calloc(KEY_SLOTS, sizeof(*model));
	if (n == 0)
		return 0;
	inputs++;
	if (d[0] & 1)
		fuzz_reorder(d + 1, n - 1);
	else
		fuzz_fastpath(d + 1, n - 1);
	return 0;
}

__attribute__((destructor)) static void report(void)
{
	fprintf(stderr, "fastpath-fuzz: %lu inputs, %lu ticks, %lu keyed\n", (unsigned long)inputs, (unsigned long)ticks,
		(unsigned long)keyed);
}
