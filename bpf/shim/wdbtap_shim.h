/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The narrow C ABI the controller calls through koffi. Every function returns
 * 0 (or a count) on success and a negative errno on failure; the text of the
 * last failure is kept per handle (wdbtap_last_error).
 */
#ifndef WDBTAP_SHIM_H
#define WDBTAP_SHIM_H
#include <stdint.h>

struct wdbtap;

/* Which syscalls to hook (SPEC §2: sendto alone by default). */
#define WDBTAP_HOOK_SENDTO  1u
#define WDBTAP_HOOK_WRITE   2u
#define WDBTAP_HOOK_SENDMSG 4u
#define WDBTAP_HOOK_WRITEV  8u
#define WDBTAP_HOOK_PROCS   16u /* exec/fork/exit: follow target daemons as they start */

/* Kernel readiness: 0, or a negative errno with a message saying what is missing. */
int wdbtap_check_kernel(char *err, uint32_t errlen);

/* hooks: the ones attach may be asked for (WDBTAP_HOOK_*): only their programs are loaded (each
 * syscall's exit program takes the verifier a while). */
struct wdbtap *wdbtap_open(const char *obj_path, uint32_t perf_pages, uint32_t hooks, char *err, uint32_t errlen);
int wdbtap_attach(struct wdbtap *t, uint32_t hooks);
int wdbtap_detach(struct wdbtap *t);
/* Bit mask of the hooks attached now. */
int wdbtap_is_attached(struct wdbtap *t);
/* tgids in the target map and their daemon ids (at most n of each written); returns how many. */
int wdbtap_targets(struct wdbtap *t, uint32_t *tgids, uint32_t *daemons, uint32_t n);

/* A daemon's executable basename (up to 63 bytes) and its id (1..255): a process
 * exec'ing a file of that name from an executable directory becomes a target. */
int wdbtap_target_name(struct wdbtap *t, const char *name, uint32_t id, int add);
/* Mark (daemon 1..255) or unmark (0) a running process. */
int wdbtap_target_tgid(struct wdbtap *t, uint32_t tgid, uint32_t daemon);
/*
 * Identities are what stat(2) gives (st_dev as glibc encodes it, st_ino); the
 * shim converts the device to the kernel's encoding.
 * The executable directories of this home: n entries replace the whole set;
 * any[i] is 0 (names decide) or the daemon id of every file in that directory.
 */
int wdbtap_set_exe_dirs(struct wdbtap *t, const uint64_t *devs, const uint64_t *inos, const uint32_t *any, uint32_t n);
/* The home's queue/db directory; dev = ino = 0: not known yet (nothing matches). */
int wdbtap_set_wdb_dir(struct wdbtap *t, uint64_t dev, uint64_t ino);
/* The `global` commands captured (newline-separated names; their replies too); all: every `global` one. */
int wdbtap_set_commands(struct wdbtap *t, const char *names, int all);

/*
 * The controller's way to take records without a thread of its own, one wake-up of its event
 * loop per batch:
 * wdbtap_take: a round — what the rings hold moves to the queue, in order — then copy as many
 *   whole records as fit into buf, each preceded by its u32 length (never waiting; records that
 *   do not fit stay queued for the next call; one thread at a time). Returns the bytes written, or
 *   the reader's failure once nothing is left. *more: 1 when a take right after this batch would
 *   likely find records — some still queued, or held back (for the order of writes in flight, or a
 *   keepalive for its reply) — 0 when the round may end. While records flow the controller calls it
 *   every millisecond or so.
 * wdbtap_rest: none came for a while: 1 when the controller may sleep (the next record rings the
 *   pipe), 0 when records came meanwhile, or the reader is in a round (take again). Never waits.
 *   Negative on error.
 * wdbtap_notify_fd: the pipe's read end (a dup: the caller owns and closes it), readable when
 *   records came while the controller rested.
 */
int wdbtap_notify_fd(struct wdbtap *t);
int wdbtap_take(struct wdbtap *t, uint8_t *buf, uint32_t cap, uint32_t *more);
int wdbtap_rest(struct wdbtap *t);
/*
 * *out: a CLOCK_MONOTONIC time before which every captured write has been handed to the controller
 * by a take (and, the controller being single-threaded, handled before its next take): records of
 * writes that entered earlier are neither in the rings, nor held for order or for the fast path,
 * nor queued. It moves when a take begins or ends with nothing queued. Rare use (a
 * resynchronisation's barrier): it walks the queue and the fast path's connections. Never waits:
 * *out is 0 (nothing known; ask again) while the reader is in a round.
 */
int wdbtap_delivered(struct wdbtap *t, uint64_t *out);

/* Fills out[0..n) with the kernel counters (enum wdbtap_counter) followed by
 * lost samples, the user-side queue drops and the late wakes (a resting controller woken by the
 * reader's IDLE_MS look instead of a bell); returns how many were written. */
int wdbtap_counters(struct wdbtap *t, uint64_t *out, uint32_t n);
/* Lost samples per CPU; returns the number of CPUs written. */
int wdbtap_lost_per_cpu(struct wdbtap *t, uint64_t *out, uint32_t n);

/* Unchanged keepalives as ticks (fastpath.h); off by default. Turn it on before attaching. */
void wdbtap_set_fastpath(struct wdbtap *t, int on);
/* The controller could not use a tick of this agent key: the next payload of it goes whole. */
void wdbtap_forget_key(struct wdbtap *t, uint32_t key);
/* ticks, keyed, slow_connections, held (fastpath.h); returns how many were written. */
int wdbtap_fastpath_stats(struct wdbtap *t, uint64_t *out, uint32_t n);
/* The instructions the kernel's verifier processed for the longest program loaded (its limit is
 * 1,000,000), and that program's name into prog (len bytes, NUL-terminated); 0: not known. */
uint32_t wdbtap_verified_insns(struct wdbtap *t, char *prog, uint32_t len);

uint32_t wdbtap_record_size(void);
const char *wdbtap_last_error(struct wdbtap *t);
void wdbtap_close(struct wdbtap *t);

#endif
