// The shim's payload hash (bpf/shim/siphash.h) outside the shim, for test/siphash.test.ts:
//   vectors — SipHash-2-4 of the reference's 64 messages (00, 00 01, …) under the key 00 01 … 0f, one hex line each;
//   flips   — how many of the 4,800 one-bit changes of a 600-byte payload leave its SipHash-1-3 unchanged;
//   keys    — whether two keys that differ in one bit give the same SipHash-1-3 of a payload (1: same).
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include "../../bpf/shim/siphash.h"

int main(int argc, char **argv)
{
	const char *mode = argc > 1 ? argv[1] : "";
	uint8_t kb[16], msg[600];
	uint64_t key[2];

	for (int i = 0; i < 16; i++)
		kb[i] = (uint8_t)i;
	memcpy(key, kb, 16);
	for (int i = 0; i < 600; i++)
		msg[i] = (uint8_t)(i < 64 ? i : 32 + (i * 7) % 90);
	if (!strcmp(mode, "vectors")) {
		for (int n = 0; n < 64; n++)
			printf("%016" PRIx64 "\n", siphash(msg, (size_t)n, key, 2, 4));
		return 0;
	}
	if (!strcmp(mode, "flips")) {
		uint64_t h = siphash(msg, sizeof(msg), key, 1, 3);
		int same = 0;
		for (int i = 0; i < 600; i++)
			for (int b = 0; b < 8; b++) {
				msg[i] ^= (uint8_t)(1u << b);
				same += siphash(msg, sizeof(msg), key, 1, 3) == h;
				msg[i] ^= (uint8_t)(1u << b);
			}
		printf("%d\n", same);
		return 0;
	}
	if (!strcmp(mode, "keys")) {
		uint64_t other[2] = { key[0] ^ 1, key[1] };
		printf("%d\n", siphash(msg, sizeof(msg), key, 1, 3) == siphash(msg, sizeof(msg), other, 1, 3));
		return 0;
	}
	fprintf(stderr, "usage: siphash-check vectors|flips|keys\n");
	return 2;
}
