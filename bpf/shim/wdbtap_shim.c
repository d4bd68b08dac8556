// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * A small shim over libbpf: load wdbtap.bpf.o, attach its tracepoints, change
 * its filter maps, and move perf records into a caller buffer in batches, so
 * one FFI call from the controller moves many records.
 *
 * A reader thread of the shim empties the kernel's perf buffers as records come
 * and keeps them in a bounded queue (QUEUE_LIMIT) until the controller polls:
 * a pause of the controller's JavaScript thread (a GC, a burst of spool work)
 * then costs latency, not records. Without it the per-CPU rings (a few MiB)
 * overflowed within ~100 ms of such a pause.
 *
 * The queue is in the order the daemons wrote in (SPEC §3 "Order"): each CPU
 * has its own ring and a write reaches it at its sys_exit, so records arrive out
 * of order across CPUs (a sender preempted inside sendto by the wazuh-db it
 * woke exits late). Records wait in a heap by entry time (reorder.c) and move
 * to the queue once no write that entered before them can still come: after
 * reading the clock, the entry times of the writes still in flight (the BPF
 * `pending` map, whose entry a write keeps until its records are out) and then
 * every ring, a record older than both is in hand with all its predecessors.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <time.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>
#include <linux/capability.h>
#include <linux/perf_event.h>
#include <sched.h>
#include <linux/types.h>
#include <sys/syscall.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "../wdbtap.h"
#include "wdbtap_shim.h"
#include "reorder.h"
#include "minq.h"
#include "fastpath.h"

_Static_assert(sizeof(struct wdbtap_record) == WDBTAP_RECORD_SIZE, "record layout changed: update record-layout.ts");

#define QUEUE_LIMIT (64u << 20) /* records waiting for the controller, at most (WDBTAP_QUEUE_LIMIT lowers it) */
/* Streams whose lost records are remembered until their next record (lost_mark): a few are losing at once. */
#define LOST_SLOTS 64
#define QUEUE_KEEP (1u << 20)   /* the queue's buffer kept when empty; a larger one is freed */
/* A write in flight longer than this no longer holds the ones after it: the
 * reorder is bounded (a sendto blocked on a full socket, a thread killed inside one). */
#define STALL_NS (50ull * 1000 * 1000)
/* A keepalive the fast path holds for its reply longer than this goes out whole (the slow path): the
 * reply may never come (wazuh-db killed mid-request), and one held for good kept the controller's
 * rounds from ever resting and every resynchronisation waiting for it. Looked at every HOLD_NS / 4;
 * a second, for a wazuh-db slow to answer (a busy disk) keeps its ticks. */
#define HOLD_NS (1000ull * 1000 * 1000)
/* Writes in flight looked at per round, at most (there are a few). */
#define MAX_INFLIGHT_SCAN 256
#define MAX_CPUS 1024

struct hook {
	const char *enter, *exit;
	uint32_t bit;
};

static const struct hook hooks[] = {
	{ "tp_enter_sendto", "tp_exit_sendto", WDBTAP_HOOK_SENDTO },
	{ "tp_enter_write", "tp_exit_write", WDBTAP_HOOK_WRITE },
	{ "tp_enter_sendmsg", "tp_exit_sendmsg", WDBTAP_HOOK_SENDMSG },
	{ "tp_enter_writev", "tp_exit_writev", WDBTAP_HOOK_WRITEV },
	{ "tp_exec", "tp_fork", WDBTAP_HOOK_PROCS },
	{ "tp_exit_task", NULL, WDBTAP_HOOK_PROCS },
	{ "tp_exit_recvfrom", NULL, WDBTAP_HOOK_PROCS }, /* when wazuh-db read a request (read_at) */
};
#define NHOOKS (sizeof(hooks) / sizeof(hooks[0]))

struct wdbtap {
	struct bpf_object *obj;
	struct perf_buffer *pb;   /* the records (watermark: wakes only when half full) */
	struct perf_buffer *bell; /* wakes the reader when it sleeps (see wdbtap.bpf.c ring_if_idle) */
	int fd_idle;
	/* One consumer of the rings at a time: the controller's rounds (wdbtap_take) and the reader's. */
	pthread_mutex_t cmu;
	/* The links, attached and destroyed under lmu: the controller detaches on a libuv thread (a link's
	 * destruction waits for RCU) and, at its stop, on its own — one of them destroys each link. */
	pthread_mutex_t lmu;
	struct bpf_link *links[NHOOKS * 2];
	int fd_tgids, fd_mark, fd_names, fd_exe_dirs, fd_config, fd_counters, fd_pending, fd_cmds;
	struct wdbtap_config cfg; /* what tap_config holds */
	int ncpus;
	uint64_t lost[MAX_CPUS];
	uint64_t queue_drops;
	size_t queue_limit; /* QUEUE_LIMIT, or the lower WDBTAP_QUEUE_LIMIT (tests make the queue overflow with it) */
	/* Streams (direction, connection) that lost a record here — the heap or the queue full — and the write
	 * it was of: their next record carries F_GAP (lost_mark, lost_apply). Under cmu. */
	struct lost_write {
		uint64_t ino, from_ts, to_ts;
		uint32_t from_tid, to_tid;
		uint16_t dir, used;
	} lost_w[LOST_SLOTS];
	uint32_t nlost;
	/* atomic: times the reader's IDLE_MS look, not a bell, woke a resting controller for records: a
	 * bell missed (a record held back when it rang, and none rang after: what rearm_bell prevents) */
	uint64_t late_wakes;
	/* Records taken from the perf buffer, waiting for their predecessors; under cmu. */
	struct reorder held;
	/* The unchanged keepalive as one small record (fastpath.h); under cmu. */
	struct fastpath *fp;
	int fp_on; /* atomic: off by default (a record for every write); the agent turns it on */
	/* Records in order, not yet handed to the controller; under mu. qin, qout: bytes appended and
	 * taken since the start; qmin: the oldest entry time among them (minq.h). */
	uint8_t *q;
	size_t qhead, qlen, qcap;
	uint64_t qin, qout;
	struct minq qmin;
	pthread_mutex_t mu;
	/* The controller's doorbell: a pipe whose read end its event loop watches (wdbtap_notify_fd). A
	 * byte is written when records are queued while it rests (wdbtap_rest). */
	int notify_r, notify_w;
	bool armed; /* under mu: the controller rests, waiting for the doorbell */
	bool trim;  /* under mu: a backlog's memory was freed: give it back to the system (reader, idle) */
	/* Under mu. released_wm: every record of a write that entered before it has left the rings and
	 * the reorder heap (the last release's watermark). delivered_wm: its value when a take last began
	 * or ended with the queue empty — those records were all handed to the controller, or are held
	 * by the fast path for their reply (wdbtap_delivered). */
	uint64_t released_wm, delivered_wm;
	uint64_t expired_at; /* under mu: when held keepalives were last looked at (HOLD_NS) */
	pthread_t reader;
	bool reader_started;
	int stop;      /* atomic: the reader ends */
	int reader_rc; /* atomic: the reader's poll failed (negative errno) */
	char err[512];
	/* The verifier's work on the longest program: instructions it processed, and the program. */
	uint32_t verified_insns;
	char verified_prog[32];
};

static __thread char libbpf_msg[384];
/* The first program libbpf said the kernel refused (its message names the program and the errno). */
static __thread char libbpf_refused[160];

static int on_libbpf_print(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	if (level == LIBBPF_DEBUG)
		return 0;
	vsnprintf(libbpf_msg, sizeof(libbpf_msg), fmt, ap);
	if (!strncmp(libbpf_msg, "libbpf: ", 8)) /* said by the callers already */
		memmove(libbpf_msg, libbpf_msg + 8, strlen(libbpf_msg + 8) + 1);
	size_t n = strlen(libbpf_msg);
	if (n && libbpf_msg[n - 1] == '\n')
		libbpf_msg[n - 1] = 0;
	if (!libbpf_refused[0] && strstr(libbpf_msg, "program load failed"))
		snprintf(libbpf_refused, sizeof(libbpf_refused), "%s", libbpf_msg);
	return 0;
}

static int fail(struct wdbtap *t, int rc, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(t->err, sizeof(t->err), fmt, ap);
	va_end(ap);
	if (libbpf_msg[0] && n > 0 && (size_t)n < sizeof(t->err))
		snprintf(t->err + n, sizeof(t->err) - n, " (libbpf: %s)", libbpf_msg);
	return rc < 0 ? rc : -EINVAL;
}

#ifndef CAP_BPF
#define CAP_BPF 39
#define CAP_PERFMON 38
#endif

/* The effective capability set, or (when capget is refused) all or nothing by euid. */
static uint64_t effective_caps(void)
{
	struct __user_cap_header_struct hdr = { _LINUX_CAPABILITY_VERSION_3, 0 };
	struct __user_cap_data_struct data[2] = {};

	if (syscall(SYS_capget, &hdr, data))
		return geteuid() == 0 ? ~0ull : 0;
	return ((uint64_t)data[1].effective << 32) | data[0].effective;
}

/* libbpf (1.x) resolves tracepoint ids under debugfs's tracing directory when it exists, else tracefs. */
#define DEBUGFS_TRACING "/sys/kernel/debug/tracing"
#define TRACEFS "/sys/kernel/tracing"

static const char *libbpf_tracefs(void)
{
	return access(DEBUGFS_TRACING, F_OK) == 0 ? DEBUGFS_TRACING : TRACEFS;
}

static const char *tracefs_hint(int e)
{
	return e == EACCES ? "; tracefs is readable by root only: run as root (or add CAP_DAC_READ_SEARCH)" : "";
}

/* The id of syscalls/sys_enter_sendto under dir (> 0), or -errno. */
static long tracepoint_id(const char *dir)
{
	char path[128], buf[32] = {};
	FILE *f;
	long id;

	snprintf(path, sizeof(path), "%s/events/syscalls/sys_enter_sendto/id", dir);
	f = fopen(path, "re");
	if (!f)
		return -errno;
	id = fgets(buf, sizeof(buf), f) ? strtol(buf, NULL, 10) : -EIO;
	fclose(f);
	return id > 0 ? id : -EIO;
}

static int perf_open(uint32_t type, uint64_t config)
{
	struct perf_event_attr a = {
		.type = type, .size = sizeof(a), .config = config,
		.sample_type = PERF_SAMPLE_RAW, .sample_period = 1, .wakeup_events = 1,
	};
	int cpu = sched_getcpu();
	int fd = syscall(SYS_perf_event_open, &a, -1, cpu < 0 ? 0 : cpu, -1, PERF_FLAG_FD_CLOEXEC);

	if (fd < 0)
		return -errno;
	close(fd);
	return 0;
}

static int perf_paranoid(void)
{
	int v = -99;
	FILE *f = fopen("/proc/sys/kernel/perf_event_paranoid", "re");
	if (f) {
		if (fscanf(f, "%d", &v) != 1)
			v = -99;
		fclose(f);
	}
	return v;
}

/*
 * Everything the tap needs from the kernel, checked in the order a user would
 * fix it, each failure naming what is missing: privileges, BTF, tracefs and its
 * syscall tracepoints (mounting tracefs when nobody did), the bpf() syscall
 * and perf events (tracepoint attachment and the record buffer both use
 * perf_event_open).
 */
int wdbtap_check_kernel(char *err, uint32_t errlen)
{
	uint64_t eff = effective_caps();
	bool admin = eff & (1ull << CAP_SYS_ADMIN);
	bool bpf = eff & (1ull << CAP_BPF), perfmon = eff & (1ull << CAP_PERFMON);
	const char *dir;
	struct stat st;
	long tp;
	int rc;

	if (!admin && !(bpf && perfmon)) {
		snprintf(err, errlen, "missing privileges: this process (uid %u) lacks %s; run as root, or with CAP_BPF "
			 "and CAP_PERFMON (kernel 5.8 or later)", (unsigned)geteuid(),
			 bpf ? "CAP_PERFMON" : perfmon ? "CAP_BPF" : "CAP_BPF and CAP_PERFMON");
		return -EPERM;
	}
	if (stat("/sys/kernel/btf/vmlinux", &st) || access("/sys/kernel/btf/vmlinux", R_OK)) {
		rc = errno;
		if (rc == ENOENT)
			snprintf(err, errlen, "the kernel has no BTF (/sys/kernel/btf/vmlinux is missing): CO-RE needs a "
				 "kernel built with CONFIG_DEBUG_INFO_BTF=y");
		else
			snprintf(err, errlen, "cannot read the kernel's BTF (/sys/kernel/btf/vmlinux): %s", strerror(rc));
		return -rc;
	}

	/* libbpf resolves tracepoint ids through tracefs: mount it when nobody did. */
	dir = libbpf_tracefs();
	if (stat(TRACEFS "/events", &st) && errno == ENOENT && !strcmp(dir, TRACEFS)) {
		if (mount("tracefs", TRACEFS, "tracefs", 0, NULL) && errno != EBUSY) {
			rc = errno;
			if (rc == ENOENT)
				snprintf(err, errlen, "the kernel has no tracefs (" TRACEFS " does not exist): syscall "
					 "tracepoints need CONFIG_FTRACE_SYSCALLS and a mounted sysfs");
			else
				snprintf(err, errlen, "tracefs is not mounted on " TRACEFS " and mounting it failed: %s; "
					 "mount it first (mount -t tracefs tracefs " TRACEFS ") or run as root", strerror(rc));
			return -rc;
		}
	}
	tp = tracepoint_id(dir);
	if (tp < 0) {
		char events[96], syscalls[96];
		snprintf(events, sizeof(events), "%s/events", dir);
		snprintf(syscalls, sizeof(syscalls), "%s/events/syscalls", dir);
		if (tp == -ENOENT && !stat(events, &st) && stat(syscalls, &st) && errno == ENOENT)
			snprintf(err, errlen, "the kernel has no syscall tracepoints (%s is missing): it needs "
				 "CONFIG_FTRACE_SYSCALLS=y", syscalls);
		else
			snprintf(err, errlen, "cannot read the syscall tracepoint %s/sys_enter_sendto/id: %s%s",
				 syscalls, strerror((int)-tp), tracefs_hint((int)-tp));
		return (int)tp;
	}

	/* The bpf() syscall itself: a seccomp profile or lockdown can refuse it even to root. */
	{
		const struct bpf_insn ret0[] = {
			{ .code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = BPF_REG_0, .imm = 0 },
			{ .code = BPF_JMP | BPF_EXIT },
		};
		int fd = bpf_prog_load(BPF_PROG_TYPE_TRACEPOINT, "wdbtap_probe", "GPL", ret0, 2, NULL);
		if (fd < 0) {
			rc = -fd;
			snprintf(err, errlen, "the kernel refused to load a BPF program (bpf(): %s): a seccomp profile "
				 "(containers) or kernel lockdown may forbid eBPF; a kernel without CONFIG_BPF_SYSCALL "
				 "has none", strerror(rc));
			return -rc;
		}
		close(fd);
	}

	/* perf events: each tracepoint attachment and the per-CPU record buffer is one perf_event_open. */
	rc = perf_open(PERF_TYPE_SOFTWARE, PERF_COUNT_SW_BPF_OUTPUT);
	if (!rc)
		rc = perf_open(PERF_TYPE_TRACEPOINT, (uint64_t)tp);
	if (rc) {
		if (rc == -ENOSYS || rc == -ENOENT)
			snprintf(err, errlen, "perf events are unavailable (perf_event_open: %s): the kernel needs "
				 "CONFIG_PERF_EVENTS (and CONFIG_BPF_EVENTS)", strerror(-rc));
		else
			snprintf(err, errlen, "perf_event_open is refused (%s): the tap needs perf events for its "
				 "tracepoints and its record buffer; kernel.perf_event_paranoid is %d (root or "
				 "CAP_PERFMON bypasses it), or a seccomp profile (containers) or security module "
				 "blocks perf_event_open", strerror(-rc), perf_paranoid());
		return rc;
	}
	return 0;
}

/* Every pid is below pid_max (at most 4,194,304 on Linux: 16 MiB of marks). */
static uint32_t pid_max(void)
{
	FILE *f = fopen("/proc/sys/kernel/pid_max", "r");
	unsigned long v = 0;

	if (f) {
		if (fscanf(f, "%lu", &v) != 1)
			v = 0;
		fclose(f);
	}
	return v >= 1024 && v <= (1u << 22) ? (uint32_t)v : (1u << 22);
}

/* The stream a record belongs to, as the reassembler keys it: the client's socket, and the direction. */
static void stream_of(const void *rec, uint64_t *ino, uint16_t *dir, uint64_t *ts, uint32_t *tid)
{
	const uint8_t *r = rec;
	uint64_t local, peer;

	memcpy(dir, r + offsetof(struct wdbtap_record, direction), sizeof(*dir));
	memcpy(&local, r + offsetof(struct wdbtap_record, local_ino), sizeof(local));
	memcpy(&peer, r + offsetof(struct wdbtap_record, peer_ino), sizeof(peer));
	memcpy(ts, r + offsetof(struct wdbtap_record, ts_ns), sizeof(*ts));
	memcpy(tid, r + offsetof(struct wdbtap_record, tid), sizeof(*tid));
	*ino = *dir == WDBTAP_DIR_REQUEST ? local : peer;
}

/* Write a (ts, tid) comes after write b in the stream's order: it entered later (a tie: another thread's). */
static bool write_after(uint64_t ts, uint32_t tid, uint64_t b_ts, uint32_t b_tid)
{
	return ts > b_ts || (ts == b_ts && tid != b_tid);
}

/*
 * A record of a stream is dropped here (under cmu): its next record must say so. The kernel walked the
 * write, so its next write's frame_off is where a frame starts; the reassembler, told nothing, appended
 * that write to the frame the lost one belonged to (swallowing whole requests). The slot keeps the
 * earliest write that lost a record and is not yet told (from) and the latest (to). With every slot
 * taken, the stream marked longest ago gives its up (its loss is still counted: a resynchronisation
 * follows).
 */
static void lost_mark(struct wdbtap *t, const void *rec)
{
	struct lost_write *w = NULL, *free_slot = NULL, *oldest = NULL;
	uint64_t ino, ts;
	uint32_t tid;
	uint16_t dir;

	stream_of(rec, &ino, &dir, &ts, &tid);
	for (uint32_t i = 0; i < LOST_SLOTS; i++) {
		struct lost_write *s = &t->lost_w[i];
		if (s->used && s->ino == ino && s->dir == dir) {
			w = s;
			break;
		}
		if (!s->used) {
			if (!free_slot)
				free_slot = s;
		} else if (!oldest || s->to_ts < oldest->to_ts) {
			oldest = s;
		}
	}
	if (!w) {
		w = free_slot ? free_slot : oldest;
		if (free_slot)
			t->nlost++;
		*w = (struct lost_write){ .ino = ino, .dir = dir, .used = 1, .from_ts = ts, .from_tid = tid, .to_ts = ts, .to_tid = tid };
		return;
	}
	if (write_after(ts, tid, w->to_ts, w->to_tid)) {
		w->to_ts = ts;
		w->to_tid = tid;
	} else if (ts < w->from_ts) {
		w->from_ts = ts;
		w->from_tid = tid;
	}
}

/*
 * A record in order, on its way to the queue (under cmu). Its stream lost a record of an earlier write:
 * it carries F_GAP, and the mark goes once it is past the last write that lost one. Records of a write
 * that lost one pass as they are (their offsets show the hole), as do those of writes before it.
 */
static void lost_apply(struct wdbtap *t, struct wdbtap_record *r)
{
	uint64_t ino = r->direction == WDBTAP_DIR_REQUEST ? r->local_ino : r->peer_ino;

	for (uint32_t i = 0; i < LOST_SLOTS; i++) {
		struct lost_write *w = &t->lost_w[i];
		if (!w->used || w->ino != ino || w->dir != r->direction)
			continue;
		/* Not after the first write that lost one; or a later chunk of a write, where frame_off (the
		 * piece's first frame) says nothing of this record: the reassembler sees its offset's hole. */
		if (!write_after(r->ts_ns, r->tid, w->from_ts, w->from_tid) || r->frame_off < r->offset)
			return;
		r->flags |= WDBTAP_F_GAP;
		if (write_after(r->ts_ns, r->tid, w->to_ts, w->to_tid)) {
			w->used = 0;
			t->nlost--;
		} else {
			/* told of the first; the last write that lost one is this record's, or still to come */
			w->from_ts = w->to_ts;
			w->from_tid = w->to_tid;
		}
		return;
	}
}

/* Append one record to the queue the controller drains; under mu. False when the bound is reached. */
static bool queue_append(struct wdbtap *t, const void *data, uint32_t len)
{
	if (t->qhead && t->qhead == t->qlen) {
		t->qhead = t->qlen = 0;
	}
	if (t->qlen + 4 + len > t->qcap) {
		size_t live = t->qlen - t->qhead;
		if (t->qhead) { /* compact before growing */
			memmove(t->q, t->q + t->qhead, live);
			t->qhead = 0;
			t->qlen = live;
		}
		if (t->qlen + 4 + len > t->qcap) {
			size_t want = t->qcap ? t->qcap * 2 : (1u << 20);
			while (want < t->qlen + 4 + len)
				want *= 2;
			if (want > t->queue_limit)
				want = t->queue_limit;
			uint8_t *nq = t->qlen + 4 + len <= want ? realloc(t->q, want) : NULL;
			if (!nq)
				return false;
			t->q = nq;
			t->qcap = want;
		}
	}
	memcpy(t->q + t->qlen, &len, 4);
	memcpy(t->q + t->qlen + 4, data, len);
	t->qlen += 4 + len;
	t->qin += 4 + len;
	uint64_t ts;
	memcpy(&ts, (const uint8_t *)data + offsetof(struct wdbtap_record, ts_ns), sizeof(ts));
	minq_push(&t->qmin, ts, t->qin); /* without memory: broken, and wdbtap_delivered walks the queue */
	return true;
}

/* Under mu: records are waiting and the controller took everything last time: wake its event loop. */
static bool ring_controller(struct wdbtap *t)
{
	if (!t->armed || t->notify_w < 0)
		return false;
	t->armed = false;
	if (write(t->notify_w, "r", 1) < 0) {
		/* EAGAIN: the pipe is full of unread bytes, so the controller is woken anyway. */
	}
	return true;
}

/* fastpath's output: the queue (under mu); a full queue drops and counts. */
static bool emit_record(void *ctx, const void *rec, uint32_t len)
{
	struct wdbtap *t = ctx;

	if (queue_append(t, rec, len))
		return true;
	__atomic_add_fetch(&t->queue_drops, 1, __ATOMIC_RELAXED);
	lost_mark(t, rec);
	return false;
}

/* From a CPU's ring (reader thread): into the heap, until its predecessors are in. */
static void on_sample(void *ctx, int cpu, void *data, __u32 size)
{
	struct wdbtap *t = ctx;
	uint32_t len, cap_len;
	uint64_t ts_ns;

	(void)cpu;
	/* A raw sample's data sits 4 bytes past an 8-byte boundary (its header, then its u32 size): the
	 * fields are copied out, not read through a struct pointer (undefined behaviour, however x86
	 * takes it). reorder_push copies the record to an aligned place. */
	if (size < sizeof(struct wdbtap_record)) {
		__atomic_add_fetch(&t->queue_drops, 1, __ATOMIC_RELAXED);
		return;
	}
	memcpy(&cap_len, (const uint8_t *)data + offsetof(struct wdbtap_record, cap_len), sizeof(cap_len));
	memcpy(&ts_ns, (const uint8_t *)data + offsetof(struct wdbtap_record, ts_ns), sizeof(ts_ns));
	if (cap_len > size - sizeof(struct wdbtap_record)) {
		__atomic_add_fetch(&t->queue_drops, 1, __ATOMIC_RELAXED);
		lost_mark(t, data);
		return;
	}
	len = sizeof(struct wdbtap_record) + cap_len; /* perf pads samples to 8 bytes: keep the record only */
	if (t->held.bytes + len > t->queue_limit || reorder_push(&t->held, data, len, ts_ns)) {
		__atomic_add_fetch(&t->queue_drops, 1, __ATOMIC_RELAXED);
		lost_mark(t, data);
	}
}

/* Writes in flight at once: a few per target thread. Small, because the order watermark reads the
 * whole map every round; not smaller than the LRU's per-CPU free lists need (128 entries a CPU). */
static uint32_t pending_entries(void)
{
	int n = libbpf_num_possible_cpus();
	return n > 4 ? (uint32_t)n * 256 : 1024;
}

static uint64_t mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts); /* bpf_ktime_get_ns()'s clock */
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* The earliest entry time of a captured write still in flight (not stalled), or `none`.
 * One batch lookup (one syscall) reads every entry: a walk with get_next_key cost two
 * syscalls an entry and, each time, a scan of all the map's buckets. */
static uint64_t inflight_min(struct wdbtap *t, uint64_t now, uint64_t none)
{
	static __thread __u64 keys[MAX_INFLIGHT_SCAN];
	static __thread struct pending_write vals[MAX_INFLIGHT_SCAN];
	__u64 out_batch = 0;
	__u32 count = MAX_INFLIGHT_SCAN;
	uint64_t min = none;
	int rc = bpf_map_lookup_batch(t->fd_pending, NULL, &out_batch, keys, vals, &count, NULL);

	if (rc && errno != ENOENT)
		count = 0; /* ENOSPC (a bucket holds more than the batch): too many in flight to wait for */
	for (__u32 i = 0; i < count; i++)
		if (vals[i].ts_ns + STALL_NS > now && vals[i].ts_ns < min)
			min = vals[i].ts_ns;
	return min;
}

/*
 * Move every record whose predecessors are all in hand to the queue, in entry
 * order. The order of the three reads is what makes it exact: a write that
 * entered before `now` is either still in flight at the scan (and holds the
 * watermark), or its records were out before its pending entry went, so the
 * consume after the scan has them. Returns whether it rang the controller (it
 * rested, and records came).
 */
static bool release_locked(struct wdbtap *t)
{
	uint64_t now = mono_ns();
	uint64_t wm = inflight_min(t, now, now);
	struct held *h;
	bool any = false;

	perf_buffer__consume(t->pb);
	pthread_mutex_lock(&t->mu);
	bool fast = __atomic_load_n(&t->fp_on, __ATOMIC_RELAXED);
	while ((h = reorder_pop_before(&t->held, wm))) {
		if (t->nlost)
			lost_apply(t, (struct wdbtap_record *)h->data);
		if (fast) {
			fastpath_take(t->fp, h, emit_record, t);
		} else {
			emit_record(t, h->data, h->len);
			free(h);
		}
		any = true;
	}
	if (fast && fastpath_holding(t->fp) > 0 && now - t->expired_at >= HOLD_NS / 4) {
		t->expired_at = now;
		if (now > HOLD_NS && fastpath_expire(t->fp, now - HOLD_NS, emit_record, t))
			any = true;
	}
	if (wm > t->released_wm)
		t->released_wm = wm;
	bool rang = any && ring_controller(t);
	pthread_mutex_unlock(&t->mu);
	return rang;
}

static bool release(struct wdbtap *t)
{
	pthread_mutex_lock(&t->cmu);
	bool rang = release_locked(t);
	pthread_mutex_unlock(&t->cmu);
	return rang;
}

static void on_lost(void *ctx, int cpu, __u64 cnt)
{
	struct wdbtap *t = ctx;
	if (cpu >= 0 && cpu < MAX_CPUS)
		__atomic_add_fetch(&t->lost[cpu], cnt, __ATOMIC_RELAXED);
}

/* The records' rings are raw perf buffers (their own wake-up rule): samples and lost-sample notes. */
static enum bpf_perf_event_ret on_event(void *ctx, int cpu, struct perf_event_header *e)
{
	if (e->type == PERF_RECORD_SAMPLE) {
		struct { struct perf_event_header h; __u32 size; char data[]; } *smp = (void *)e;
		on_sample(ctx, cpu, smp->data, smp->size);
	} else if (e->type == PERF_RECORD_LOST) {
		struct { struct perf_event_header h; __u64 id; __u64 lost; } *l = (void *)e;
		on_lost(ctx, cpu, l->lost);
	}
	return LIBBPF_PERF_EVENT_CONT;
}

static void on_bell(void *ctx, int cpu, void *data, __u32 size)
{
	(void)ctx, (void)cpu, (void)data, (void)size; /* it woke the reader: that was all */
}

static int set_idle(struct wdbtap *t, uint64_t v)
{
	__u32 zero = 0;
	return bpf_map_update_elem(t->fd_idle, &zero, &v, BPF_ANY); /* a syscall: a full barrier too */
}

/* IDLE_MS: how long the reader sleeps, when nothing wakes it, before looking anyway. */
#define IDLE_MS 100
/*
 * The process's heap (every arena: the controller's buffers are malloc'd too) is looked at every
 * TRIM_EVERY_S and given back to the system past TRIM_FREE_BYTES free. Under a steady load nothing
 * is ever quiet: between two garbage collections the controller's event loop churns through tens of
 * MB of short-lived buffers, and the allocator kept all it freed (30–40 MB of RSS at 100,000 agents).
 * 4 MB, not 16: the 100,000 agents' first keepalives (a manager's restart) left up to 16 MB free
 * between two looks; the memory step's peak, four runs against five, 160–173 against 162–177 MB
 * for the same CPU (docs/performance.md, item 30).
 */
#define TRIM_EVERY_S 1
#define TRIM_FREE_BYTES (4u << 20)

static time_t mono_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec;
}

/*
 * The bell rang and the controller still rests: what came was all held back by a write in flight
 * before it. The bell rings once an arming (ring_if_idle) and that write's record may already have
 * found it rung: left so, the records would wait for the reader's IDLE_MS look (~100 ms; the capture
 * test "a record held for a write in flight…" measured 95 ms). So it is armed again for the next
 * record and the rings looked at once more (a record written before the arming is in a ring).
 */
static void rearm_bell(struct wdbtap *t)
{
	pthread_mutex_lock(&t->mu);
	bool resting = t->armed;
	pthread_mutex_unlock(&t->mu);
	if (!resting || set_idle(t, 1))
		return;
	pthread_mutex_lock(&t->cmu);
	release_locked(t);
	/* Records still held for a write in flight: its record may have rung nothing (out before the
	 * arming, its entry still pending at this look). The controller's timer rounds take them, as
	 * when wdbtap_rest refuses. */
	pthread_mutex_lock(&t->mu);
	if (t->held.n > 0)
		ring_controller(t);
	pthread_mutex_unlock(&t->mu);
	pthread_mutex_unlock(&t->cmu);
}

/*
 * The reader thread: the rings' safety net, not their everyday reader. While
 * records flow the controller takes them itself, every millisecond or so, in
 * one wake-up of its event loop (wdbtap_take runs a round); this thread
 * sleeps. It wakes when
 *  - the bell rings: the first record after the controller went to rest
 *    (wdbtap_rest armed it). It takes the records and rings the controller's
 *    doorbell (the pipe);
 *  - a ring is half full (the perf buffer's watermark): the controller is late
 *    (a long GC, a burst of spool work). It moves the records to the queue
 *    (QUEUE_LIMIT), so a pause of the controller costs latency, not records.
 * On this kind of VM a thread's wake-up costs ~30 µs of CPU: one wake-up per
 * batch, the controller's, is the floor; a second one here was a third of the
 * tap's CPU per keepalive.
 */
static void *reader_main(void *arg)
{
	struct wdbtap *t = arg;
	struct pollfd pfd[2] = {
		{ .fd = perf_buffer__epoll_fd(t->pb), .events = POLLIN },
		{ .fd = perf_buffer__epoll_fd(t->bell), .events = POLLIN },
	};

	pthread_setname_np(pthread_self(), "wdbtap-reader"); /* top -H, and the tap's CPU by thread */
	time_t looked = mono_s();

	while (!__atomic_load_n(&t->stop, __ATOMIC_ACQUIRE)) {
		int rc = poll(pfd, 2, IDLE_MS);
		if (rc < 0 && errno != EINTR) {
			__atomic_store_n(&t->reader_rc, -errno, __ATOMIC_RELEASE);
			pthread_mutex_lock(&t->mu);
			t->armed = true;
			ring_controller(t); /* it learns of the failure from wdbtap_take */
			pthread_mutex_unlock(&t->mu);
			break;
		}
		bool bell = rc > 0 && (pfd[1].revents & POLLIN);
		if (bell)
			perf_buffer__consume(t->bell);
		/* Rings the controller if it rests and records came; on IDLE_MS alone, a bell was missed. */
		if (release(t) && rc == 0)
			__atomic_add_fetch(&t->late_wakes, 1, __ATOMIC_RELAXED);
		if (bell)
			rearm_bell(t);
		bool trim = false;
		if (rc == 0) {
			/* Quiet for IDLE_MS: the heap a backlog (the queue, the reorder heap) left behind goes
			 * back to the system, so the RSS after a burst is the RSS before it. */
			pthread_mutex_lock(&t->mu);
			trim = t->trim;
			t->trim = false;
			pthread_mutex_unlock(&t->mu);
		}
		/* Whatever woke it (under load the rings' watermark may wake it every time). */
		time_t now = mono_s();
		if (!trim && now - looked >= TRIM_EVERY_S) {
			looked = now;
			trim = mallinfo2().fordblks > TRIM_FREE_BYTES;
		}
		if (trim)
			malloc_trim(0);
	}
	return NULL;
}

/*
 * The verifier's work on each program loaded (bpf_prog_info.verified_insns), the largest kept. Read at
 * every start, so a kernel whose verifier works much harder on our programs — Linux 6.18.44's checked
 * every exit program past its million instructions until the loops' state moved to map memory
 * (wdbtap.bpf.c) — shows in `status` and the log before it refuses them.
 */
static void read_verified_insns(struct wdbtap *t)
{
	struct bpf_program *p;

	bpf_object__for_each_program(p, t->obj) {
		struct bpf_prog_info info;
		uint32_t len = sizeof(info);
		int fd = bpf_program__fd(p);

		memset(&info, 0, sizeof(info));
		if (fd < 0 || bpf_obj_get_info_by_fd(fd, &info, &len) || info.verified_insns <= t->verified_insns)
			continue;
		t->verified_insns = info.verified_insns;
		snprintf(t->verified_prog, sizeof(t->verified_prog), "%s", bpf_program__name(p));
	}
}

uint32_t wdbtap_verified_insns(struct wdbtap *t, char *prog, uint32_t len)
{
	if (len)
		snprintf(prog, len, "%s", t->verified_prog);
	return t->verified_insns;
}

/*
 * A wdbtap_open that failed before its maps were found: what it made so far goes (the notify pipe was
 * made first; its two descriptors leaked at every failed open — a retrying caller ran out of them).
 */
static struct wdbtap *open_failed(struct wdbtap *t)
{
	if (t->obj)
		bpf_object__close(t->obj);
	if (t->notify_r >= 0)
		close(t->notify_r);
	if (t->notify_w >= 0)
		close(t->notify_w);
	pthread_mutex_destroy(&t->mu);
	pthread_mutex_destroy(&t->cmu);
	pthread_mutex_destroy(&t->lmu);
	free(t);
	return NULL;
}

struct wdbtap *wdbtap_open(const char *obj_path, uint32_t perf_pages, uint32_t hooks_wanted, char *err, uint32_t errlen)
{
	struct wdbtap *t = calloc(1, sizeof(*t));
	struct bpf_map *events;
	int rc;

	if (!t) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	pthread_mutex_init(&t->mu, NULL);
	pthread_mutex_init(&t->cmu, NULL);
	pthread_mutex_init(&t->lmu, NULL);
	t->queue_limit = QUEUE_LIMIT;
	{
		/* For tests (and small hosts): a lower bound on what the shim holds for a late controller. */
		const char *v = getenv("WDBTAP_QUEUE_LIMIT");
		unsigned long long n = v ? strtoull(v, NULL, 10) : 0;
		if (n >= (64u << 10) && n < QUEUE_LIMIT)
			t->queue_limit = (size_t)n;
	}
	{
		int fds[2];
		t->notify_r = t->notify_w = -1;
		if (pipe2(fds, O_NONBLOCK | O_CLOEXEC) == 0) {
			t->notify_r = fds[0];
			t->notify_w = fds[1];
		}
	}
	libbpf_set_print(on_libbpf_print);
	libbpf_msg[0] = 0;
	libbpf_refused[0] = 0;
	t->obj = bpf_object__open_file(obj_path, NULL);
	if (!t->obj) {
		rc = -errno;
		snprintf(err, errlen, "cannot open BPF object %s: %s", obj_path, strerror(-rc));
		return open_failed(t);
	}
	/* One scratch buffer per CPU (see wdbtap.bpf.c). */
	struct bpf_map *scratch = bpf_object__find_map_by_name(t->obj, "scratch");
	struct bpf_map *mark = bpf_object__find_map_by_name(t->obj, "target_mark");
	if (!mark || bpf_map__set_max_entries(mark, pid_max()) ||
	    !scratch || bpf_map__set_max_entries(scratch, libbpf_num_possible_cpus()) ||
	    bpf_map__set_max_entries(bpf_object__find_map_by_name(t->obj, "events"), libbpf_num_possible_cpus()) ||
	    bpf_map__set_max_entries(bpf_object__find_map_by_name(t->obj, "bell"), libbpf_num_possible_cpus()) ||
	    bpf_map__set_max_entries(bpf_object__find_map_by_name(t->obj, "pending"), pending_entries())) {
		snprintf(err, errlen, "BPF object %s lacks the maps this shim expects", obj_path);
		return open_failed(t);
	}
	/* Only the programs of the hooks that may be attached: the others are never verified nor loaded. */
	for (size_t i = 0; i < NHOOKS; i++) {
		const char *names[2] = { hooks[i].enter, hooks[i].exit };
		for (int k = 0; k < 2; k++) {
			struct bpf_program *p = names[k] ? bpf_object__find_program_by_name(t->obj, names[k]) : NULL;
			if (p)
				bpf_program__set_autoload(p, (hooks[i].bit & (hooks_wanted | WDBTAP_HOOK_PROCS)) != 0);
		}
	}
	/*
	 * The verifier gives up with EAGAIN when a signal is pending for the calling thread, and
	 * libbpf tries again only a few times: a stream of signals (a profiler's SIGPROF every
	 * millisecond, a HUP loop) made the load fail. Signals wait while the kernel verifies, and
	 * are delivered once it is done (SIGKILL cannot be held, and still ends the process).
	 */
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	rc = bpf_object__load(t->obj);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc) {
		int n = snprintf(err, errlen, "the kernel refused the BPF programs of %s: %s%s%s", obj_path, strerror(-rc),
				 libbpf_refused[0] || libbpf_msg[0] ? "; libbpf: " : "",
				 libbpf_refused[0] ? libbpf_refused : libbpf_msg);
		if (rc == -E2BIG && n > 0 && (uint32_t)n < errlen)
			snprintf(err + n, errlen - n, "; the kernel's verifier gave up at its limit of instructions (this "
				 "kernel checks the programs harder than those they were written for: report it with uname -r)");
		return open_failed(t);
	}
	read_verified_insns(t);
	t->fd_tgids = bpf_object__find_map_fd_by_name(t->obj, "target_tgids");
	t->fd_names = bpf_object__find_map_fd_by_name(t->obj, "target_names");
	t->fd_exe_dirs = bpf_object__find_map_fd_by_name(t->obj, "exe_dirs");
	t->fd_mark = bpf_object__find_map_fd_by_name(t->obj, "target_mark");
	t->fd_config = bpf_object__find_map_fd_by_name(t->obj, "tap_config");
	t->fd_counters = bpf_object__find_map_fd_by_name(t->obj, "counters");
	t->fd_pending = bpf_object__find_map_fd_by_name(t->obj, "pending");
	t->fd_cmds = bpf_object__find_map_fd_by_name(t->obj, "wanted_cmds");
	t->fd_idle = bpf_object__find_map_fd_by_name(t->obj, "reader_idle");
	events = bpf_object__find_map_by_name(t->obj, "events");
	t->ncpus = libbpf_num_possible_cpus();
	if (t->fd_tgids < 0 || t->fd_mark < 0 || t->fd_names < 0 || t->fd_exe_dirs < 0 || t->fd_config < 0 || t->fd_counters < 0 || t->fd_pending < 0 || t->fd_cmds < 0 || t->fd_idle < 0 || !events ||
	    t->ncpus <= 0 || t->ncpus > MAX_CPUS) {
		snprintf(err, errlen, "BPF object %s lacks the maps this shim expects", obj_path);
		wdbtap_close(t);
		return NULL;
	}
	{
		size_t pages = perf_pages ? perf_pages : 256;
		struct perf_event_attr attr = {
			.type = PERF_TYPE_SOFTWARE, .size = sizeof(attr), .config = PERF_COUNT_SW_BPF_OUTPUT,
			.sample_type = PERF_SAMPLE_RAW, .sample_period = 1,
			/* Wake the reader only when a ring is half full: it comes by itself while records flow. */
			.watermark = 1, .wakeup_watermark = (uint32_t)(pages * (size_t)sysconf(_SC_PAGESIZE) / 2),
		};
		t->pb = perf_buffer__new_raw(bpf_map__fd(events), pages, &attr, on_event, t, NULL);
	}
	if (!t->pb) {
		snprintf(err, errlen, "cannot create the perf buffer: %s", strerror(errno));
		wdbtap_close(t);
		return NULL;
	}
	t->bell = perf_buffer__new(bpf_object__find_map_fd_by_name(t->obj, "bell"), 1, on_bell, NULL, t, NULL);
	if (!t->bell) {
		snprintf(err, errlen, "cannot create the reader's bell: %s", strerror(errno));
		wdbtap_close(t);
		return NULL;
	}
	t->fp = fastpath_new(err, errlen);
	if (!t->fp) {
		wdbtap_close(t);
		return NULL;
	}
	rc = pthread_create(&t->reader, NULL, reader_main, t);
	if (rc) {
		snprintf(err, errlen, "cannot start the perf buffer reader thread: %s", strerror(rc));
		wdbtap_close(t);
		return NULL;
	}
	t->reader_started = true;
	return t;
}

static void detach_locked(struct wdbtap *t);

/* Under lmu. */
static int attach_locked(struct wdbtap *t, uint32_t want)
{
	libbpf_msg[0] = 0;
	for (size_t i = 0; i < NHOOKS; i++) {
		const char *names[2] = { hooks[i].enter, hooks[i].exit };
		if (!(want & hooks[i].bit))
			continue;
		for (int k = 0; k < 2; k++) {
			struct bpf_link **slot = &t->links[i * 2 + k];
			struct bpf_program *p;
			if (*slot || !names[k])
				continue;
			p = bpf_object__find_program_by_name(t->obj, names[k]);
			if (!p)
				return fail(t, -ENOENT, "no program %s in the BPF object", names[k]);
			if (!bpf_program__autoload(p))
				return fail(t, -ENOENT, "%s was not loaded: open the capture with that hook", names[k]);
			*slot = bpf_program__attach(p);
			if (!*slot) {
				int rc = -errno;
				detach_locked(t);
				return fail(t, rc, "cannot attach %s: %s", names[k], strerror(-rc));
			}
		}
	}
	return 0;
}

int wdbtap_attach(struct wdbtap *t, uint32_t want)
{
	pthread_mutex_lock(&t->lmu);
	int rc = attach_locked(t, want);
	pthread_mutex_unlock(&t->lmu);
	return rc;
}

/* Under lmu. */
static void detach_locked(struct wdbtap *t)
{
	for (size_t i = 0; i < NHOOKS * 2; i++) {
		if (t->links[i]) {
			bpf_link__destroy(t->links[i]);
			t->links[i] = NULL;
		}
	}
}

int wdbtap_detach(struct wdbtap *t)
{
	pthread_mutex_lock(&t->lmu);
	detach_locked(t);
	pthread_mutex_unlock(&t->lmu);
	return 0;
}

int wdbtap_is_attached(struct wdbtap *t)
{
	int mask = 0;
	pthread_mutex_lock(&t->lmu);
	for (size_t i = 0; i < NHOOKS * 2; i++)
		if (t->links[i])
			mask |= hooks[i / 2].bit;
	pthread_mutex_unlock(&t->lmu);
	return mask;
}

int wdbtap_target_name(struct wdbtap *t, const char *name, uint32_t id, int add)
{
	char key[WDBTAP_NAME_LEN] = {};

	if (!name || !name[0] || strlen(name) >= WDBTAP_NAME_LEN || strchr(name, '/'))
		return fail(t, -EINVAL, "a daemon name is a file name of 1 to %d bytes", WDBTAP_NAME_LEN - 1);
	if (add && (id == 0 || id > WDBTAP_MAX_DAEMONS))
		return fail(t, -EINVAL, "a daemon id is 1 to %d", WDBTAP_MAX_DAEMONS);
	memcpy(key, name, strlen(name));
	if (add ? bpf_map_update_elem(t->fd_names, key, &id, BPF_ANY) : bpf_map_delete_elem(t->fd_names, key))
		return (!add && errno == ENOENT) ? 0 : fail(t, -errno, "target_names: %s", strerror(errno));
	return 0;
}

int wdbtap_targets(struct wdbtap *t, uint32_t *tgids, uint32_t *daemons, uint32_t n)
{
	__u32 key, next, *prev = NULL, daemon;
	uint32_t w = 0;

	while (w < n && bpf_map_get_next_key(t->fd_tgids, prev, &next) == 0) {
		if (bpf_map_lookup_elem(t->fd_tgids, &next, &daemon))
			daemon = 0; /* gone since */
		tgids[w] = next;
		daemons[w++] = daemon;
		key = next;
		prev = &key;
	}
	return (int)w;
}

int wdbtap_target_tgid(struct wdbtap *t, uint32_t tgid, uint32_t daemon)
{
	if (daemon > WDBTAP_MAX_DAEMONS)
		return fail(t, -EINVAL, "a daemon id is 1 to %d", WDBTAP_MAX_DAEMONS);
	if (daemon ? bpf_map_update_elem(t->fd_tgids, &tgid, &daemon, BPF_ANY) : bpf_map_delete_elem(t->fd_tgids, &tgid))
		if (daemon || errno != ENOENT)
			return fail(t, -errno, "target_tgids: %s", strerror(errno));
	/*
	 * The write path reads the marks (see wdbtap.bpf.c); a pid past them (E2BIG: pid_max
	 * raised since the load) is found in target_tgids, written above.
	 */
	if (bpf_map_update_elem(t->fd_mark, &tgid, &daemon, BPF_ANY) && errno != E2BIG)
		return fail(t, -errno, "target_mark for pid %u: %s", tgid, strerror(errno));
	return 0;
}

/* stat(2)'s st_dev (glibc's encoding) → the kernel's dev_t (MKDEV: major << 20 | minor). */
static struct wdbtap_fsid fsid_of(uint64_t dev, uint64_t ino)
{
	struct wdbtap_fsid id = { .ino = ino, .dev = (uint32_t)((major(dev) << 20) | (minor(dev) & 0xfffff)) };
	return id;
}

int wdbtap_set_exe_dirs(struct wdbtap *t, const uint64_t *devs, const uint64_t *inos, const uint32_t *any, uint32_t n)
{
	struct wdbtap_fsid want[WDBTAP_MAX_EXE_DIRS], key, next;
	bool have_prev = false;

	if (n > WDBTAP_MAX_EXE_DIRS)
		return fail(t, -E2BIG, "at most %d executable directories", WDBTAP_MAX_EXE_DIRS);
	/* Add the new set first, then drop the rest: an exec in between is never missed. */
	for (uint32_t i = 0; i < n; i++) {
		if (any[i] > WDBTAP_MAX_DAEMONS)
			return fail(t, -EINVAL, "a daemon id is 1 to %d", WDBTAP_MAX_DAEMONS);
		want[i] = fsid_of(devs[i], inos[i]);
		if (bpf_map_update_elem(t->fd_exe_dirs, &want[i], &any[i], BPF_ANY))
			return fail(t, -errno, "exe_dirs: %s", strerror(errno));
	}
	while (bpf_map_get_next_key(t->fd_exe_dirs, have_prev ? &key : NULL, &next) == 0) {
		bool keep = false;
		for (uint32_t i = 0; i < n && !keep; i++)
			keep = want[i].ino == next.ino && want[i].dev == next.dev;
		if (!keep && bpf_map_delete_elem(t->fd_exe_dirs, &next) == 0)
			continue; /* the walk restarts from key: deleted entries are not revisited */
		key = next;
		have_prev = true;
	}
	return 0;
}

static int write_config(struct wdbtap *t)
{
	__u32 key = 0;

	if (bpf_map_update_elem(t->fd_config, &key, &t->cfg, BPF_ANY))
		return fail(t, -errno, "tap_config: %s", strerror(errno));
	return 0;
}

int wdbtap_set_wdb_dir(struct wdbtap *t, uint64_t dev, uint64_t ino)
{
	struct wdbtap_fsid none = {};

	t->cfg.wdb_dir = dev || ino ? fsid_of(dev, ino) : none;
	t->cfg.set = dev || ino;
	return write_config(t);
}

int wdbtap_set_commands(struct wdbtap *t, const char *names, int all)
{
	__u64 key, next;
	const char *p = names;
	__u8 one = 1;

	/* The old set out, the new one in: names are few, and this runs at open. */
	while (bpf_map_get_next_key(t->fd_cmds, NULL, &next) == 0)
		if (bpf_map_delete_elem(t->fd_cmds, &next))
			return fail(t, -errno, "wanted_cmds: %s", strerror(errno));
	while (p && *p) {
		const char *end = strchr(p, '\n');
		size_t n = end ? (size_t)(end - p) : strlen(p);
		if (n) {
			/* The kernel compares a command's first WDBTAP_CMD_KEY bytes (wdbtap.bpf.c wanted_request). */
			if (n < WDBTAP_CMD_KEY || memchr(p, ' ', n))
				return fail(t, -EINVAL, "a command name is %d bytes or more, without blanks", WDBTAP_CMD_KEY);
			memcpy(&key, p, sizeof(key));
			if (bpf_map_update_elem(t->fd_cmds, &key, &one, BPF_ANY))
				return fail(t, -errno, "wanted_cmds: %s", strerror(errno));
		}
		p = end ? end + 1 : NULL;
	}
	t->cfg.all_global = all ? 1 : 0;
	return write_config(t);
}

static uint32_t drain(struct wdbtap *t, uint8_t *buf, uint32_t cap)
{
	uint32_t out = 0;

	while (t->qhead < t->qlen) {
		uint32_t len;
		memcpy(&len, t->q + t->qhead, 4);
		if (out + 4 + len > cap)
			break;
		memcpy(buf + out, t->q + t->qhead, 4 + len);
		out += 4 + len;
		t->qhead += 4 + len;
		t->qout += 4 + len;
	}
	minq_taken(&t->qmin, t->qout);
	if (t->qhead == t->qlen) {
		t->qhead = t->qlen = 0;
		minq_reset(&t->qmin);
		/* A backlog grew the queue (up to QUEUE_LIMIT): once it is gone, so is its memory. */
		if (t->qcap > QUEUE_KEEP) {
			free(t->q);
			t->q = NULL;
			t->qcap = 0;
			t->trim = true;
		}
	}
	return out;
}

int wdbtap_notify_fd(struct wdbtap *t)
{
	int fd = t->notify_r < 0 ? -1 : fcntl(t->notify_r, F_DUPFD_CLOEXEC, 0);
	return fd < 0 ? fail(t, -errno, "notify pipe: %s", strerror(errno)) : fd;
}

int wdbtap_take(struct wdbtap *t, uint8_t *buf, uint32_t cap, uint32_t *more)
{
	uint32_t out;
	bool held = true; /* the reader is in a round: what it holds is not known here */
	int rc;

	*more = 0;
	if (cap < 4 + sizeof(struct wdbtap_record) + WDBTAP_CHUNK)
		return fail(t, -EINVAL, "take buffer smaller than one record");
	/* The queue empty as this take begins: every record the last release moved out was copied by an
	 * earlier call, and the controller, single-threaded, handled those before it called again. A
	 * round that takes once (see *more) counts its records here, at the next round's take. */
	pthread_mutex_lock(&t->mu);
	if (t->qhead == t->qlen)
		t->delivered_wm = t->released_wm;
	pthread_mutex_unlock(&t->mu);
	/* A round of the controller's own: what the rings hold, in order. Should the reader be in one
	 * (a ring filled up), what it moves is in the queue all the same: no waiting for it. */
	if (pthread_mutex_trylock(&t->cmu) == 0) {
		release_locked(t);
		/* Held back: by the order watermark (a write was in flight), or by the fast path (a keepalive
		 * waits for its reply). Both are usually out by the time this batch has been handled. */
		held = t->held.n > 0 || (t->fp && fastpath_holding(t->fp) > 0);
		pthread_mutex_unlock(&t->cmu);
	}
	pthread_mutex_lock(&t->mu);
	out = drain(t, buf, cap);
	/* Nothing to copy: the same, for this take's own release. */
	if (!out)
		t->delivered_wm = t->released_wm;
	*more = t->qhead < t->qlen || held;
	pthread_mutex_unlock(&t->mu);
	/* Nothing left and the reader failed: its failure is the caller's to hear. */
	rc = __atomic_load_n(&t->reader_rc, __ATOMIC_ACQUIRE);
	if (!out && rc)
		return fail(t, rc, "perf buffer poll: %s", strerror(-rc));
	return (int)out;
}

int wdbtap_delivered(struct wdbtap *t, uint64_t *out)
{
	uint64_t v;

	/* Since that take, a request the fast path held for its reply may have gone to the queue (whole,
	 * or as a tick): the oldest of what it holds and of what the queue holds count too. The fast path
	 * is the rounds' (cmu): while the reader is in one — a full release after a stall, milliseconds —
	 * nothing is known, and 0 says so (the caller asks again) rather than the controller's thread
	 * waiting for it. */
	if (pthread_mutex_trylock(&t->cmu)) {
		*out = 0;
		return 0;
	}
	pthread_mutex_lock(&t->mu);
	v = t->delivered_wm;
	if (!t->qmin.broken) {
		uint64_t oldest = minq_min(&t->qmin, v);
		if (oldest < v)
			v = oldest;
	}
	for (size_t at = t->qmin.broken ? t->qhead : t->qlen; at < t->qlen;) { /* the walk, without qmin */
		uint32_t len;
		uint64_t ts;
		memcpy(&len, t->q + at, 4);
		memcpy(&ts, t->q + at + 4 + offsetof(struct wdbtap_record, ts_ns), sizeof(ts));
		if (ts < v)
			v = ts;
		at += 4 + len;
	}
	if (t->fp)
		v = fastpath_oldest_held(t->fp, v);
	pthread_mutex_unlock(&t->mu);
	pthread_mutex_unlock(&t->cmu);
	*out = v;
	return 0;
}

int wdbtap_rest(struct wdbtap *t)
{
	bool empty;

	/* Arm the bell first, then look once more: a record written before the bell was armed is in a
	 * ring and this round takes it; one written after rings the bell (the reader then rings us). */
	if (set_idle(t, 1))
		return fail(t, -errno, "arming the reader's bell: %s", strerror(errno));
	/* The reader is in a round (a full release after a stall takes milliseconds): what it moves is in
	 * the queue when it is done, so the controller takes again rather than waiting for it here, on its
	 * only thread. */
	if (pthread_mutex_trylock(&t->cmu)) {
		set_idle(t, 0);
		return 0;
	}
	release_locked(t);
	pthread_mutex_lock(&t->mu);
	empty = t->qhead == t->qlen && t->held.n == 0;
	t->armed = empty;
	pthread_mutex_unlock(&t->mu);
	pthread_mutex_unlock(&t->cmu);
	if (!empty)
		set_idle(t, 0); /* records came meanwhile: the controller goes on taking */
	return empty ? 1 : 0;
}

int wdbtap_counters(struct wdbtap *t, uint64_t *out, uint32_t n)
{
	__u64 vals[MAX_CPUS];
	uint32_t w = 0;

	for (__u32 k = 0; k < WDBTAP_NCOUNTERS && w < n; k++, w++) {
		out[w] = 0;
		if (bpf_map_lookup_elem(t->fd_counters, &k, vals))
			return fail(t, -errno, "counters: %s", strerror(errno));
		for (int c = 0; c < t->ncpus; c++)
			out[w] += vals[c];
	}
	if (w < n) {
		out[w] = 0;
		for (int c = 0; c < t->ncpus; c++)
			out[w] += __atomic_load_n(&t->lost[c], __ATOMIC_RELAXED);
		w++;
	}
	if (w < n)
		out[w++] = __atomic_load_n(&t->queue_drops, __ATOMIC_RELAXED);
	if (w < n)
		out[w++] = __atomic_load_n(&t->late_wakes, __ATOMIC_RELAXED);
	return (int)w;
}

int wdbtap_lost_per_cpu(struct wdbtap *t, uint64_t *out, uint32_t n)
{
	int c;
	for (c = 0; c < t->ncpus && (uint32_t)c < n; c++)
		out[c] = __atomic_load_n(&t->lost[c], __ATOMIC_RELAXED);
	return c;
}

void wdbtap_set_fastpath(struct wdbtap *t, int on)
{
	__atomic_store_n(&t->fp_on, on ? 1 : 0, __ATOMIC_RELAXED);
}

void wdbtap_forget_key(struct wdbtap *t, uint32_t key)
{
	if (t->fp)
		fastpath_forget(t->fp, key);
}

int wdbtap_fastpath_stats(struct wdbtap *t, uint64_t *out, uint32_t n)
{
	struct fastpath_stats st = {};
	uint64_t v[5];

	if (t->fp)
		fastpath_stats(t->fp, &st);
	v[0] = st.ticks;
	v[1] = st.keyed;
	v[2] = st.slow_connections;
	v[3] = st.held;
	v[4] = st.expired;
	const uint32_t nv = sizeof(v) / sizeof(v[0]);
	for (uint32_t i = 0; i < n && i < nv; i++)
		out[i] = v[i];
	return n < nv ? (int)n : (int)nv;
}

uint32_t wdbtap_record_size(void)
{
	return sizeof(struct wdbtap_record);
}

const char *wdbtap_last_error(struct wdbtap *t)
{
	return t ? t->err : "";
}

void wdbtap_close(struct wdbtap *t)
{
	if (!t)
		return;
	wdbtap_detach(t);
	if (t->reader_started) {
		__atomic_store_n(&t->stop, 1, __ATOMIC_RELEASE);
		pthread_join(t->reader, NULL); /* within its 100 ms poll */
	}
	perf_buffer__free(t->pb);
	perf_buffer__free(t->bell);
	bpf_object__close(t->obj);
	reorder_free(&t->held);
	if (t->notify_r >= 0)
		close(t->notify_r);
	if (t->notify_w >= 0)
		close(t->notify_w);
	fastpath_free(t->fp);
	free(t->q);
	minq_free(&t->qmin);
	pthread_mutex_destroy(&t->mu);
	pthread_mutex_destroy(&t->cmu);
	pthread_mutex_destroy(&t->lmu);
	free(t);
}
