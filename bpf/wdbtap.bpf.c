// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * wdbtap: capture the frames written on Wazuh's wazuh-db socket (queue/db/wdb).
 *
 * sys_enter decides, before any copy, whether this write matters: the writer
 * is a target (tgid or comm), the fd is an AF_UNIX socket, and the socket's own
 * bound path (wazuh-db's side) or its peer's (a client's side) matches the
 * configured wdb path. Only then is the user buffer remembered; sys_exit copies
 * exactly the bytes the syscall reports written into perf records.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>
#include "wdbtap.h"

#define AF_UNIX 1
#define S_IFMT 00170000
#define S_IFSOCK 0140000

char LICENSE[] SEC("license") = "Dual BSD/GPL";

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u32);
	__type(value, __u32);
} target_tgids SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, char[WDBTAP_COMM_LEN]);
	__type(value, __u32);
} target_comms SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct wdbtap_config);
} tap_config SEC(".maps");

/* What sys_enter learnt, for sys_exit of the same thread. */
struct pending_write {
	__u64 buf;
	__u64 len;
	__u64 ts_ns;
	__u64 local_ino;
	__u64 peer_ino;
	__u32 direction;
	__u32 syscall;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, __u64);
	__type(value, struct pending_write);
} pending SEC(".maps");

/* A record is too large for the BPF stack: build it in a per-CPU buffer. */
struct scratch_buf {
	__u8 bytes[sizeof(struct wdbtap_record) + WDBTAP_CHUNK];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct scratch_buf);
} scratch SEC(".maps");

/* 128 bytes, not 108, so that an index masked with 127 is provably in bounds. */
struct path_buf {
	char own[128];
	char peer[128];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct path_buf);
} paths SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, WDBTAP_NCOUNTERS);
	__type(key, __u32);
	__type(value, __u64);
} counters SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERF_EVENT_ARRAY);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, sizeof(__u32));
} events SEC(".maps");

static __always_inline void count(__u32 which)
{
	__u64 *v = bpf_map_lookup_elem(&counters, &which);
	if (v)
		*v += 1;
}

static __always_inline bool is_target(__u64 pid_tgid)
{
	__u32 tgid = pid_tgid >> 32;
	char comm[WDBTAP_COMM_LEN];

	if (bpf_map_lookup_elem(&target_tgids, &tgid))
		return true;
	if (bpf_get_current_comm(comm, sizeof(comm)))
		return false;
	return bpf_map_lookup_elem(&target_comms, comm) != NULL;
}

/* Read the bound path of a unix socket into out; returns its length (0: unbound or abstract). */
static __always_inline int unix_path(struct sock *sk, char *out)
{
	struct unix_address *addr;
	int n;

	if (!sk)
		return 0;
	addr = BPF_CORE_READ((struct unix_sock *)sk, addr);
	if (!addr)
		return 0;
	n = bpf_probe_read_kernel_str(out, WDBTAP_PATH_MAX, &addr->name[0].sun_path);
	if (n <= 1)
		return 0; /* abstract sockets start with a NUL: never the wdb socket */
	return n - 1;
}

static __always_inline bool path_matches(const char *path, int plen, const struct wdbtap_path *want)
{
	__u32 wlen = want->len;
	__u32 start;

	if (wlen == 0 || wlen >= WDBTAP_PATH_MAX || plen <= 0 || plen >= WDBTAP_PATH_MAX)
		return false;
	if (want->exact ? (__u32)plen != wlen : (__u32)plen < wlen)
		return false;
	start = plen - wlen;
	/* A suffix must start at a path boundary: "xqueue/db/wdb" is not "queue/db/wdb". */
	if (start > 0 && path[(start - 1) & 127] != '/')
		return false;
	for (__u32 i = 0; i < WDBTAP_PATH_MAX; i++) {
		if (i >= wlen)
			break;
		if (path[(start + i) & 127] != want->path[i & 127])
			return false;
	}
	return true;
}

static __always_inline bool any_path_matches(const char *path, int plen, const struct wdbtap_config *cfg)
{
	if (plen <= 0)
		return false;
	for (__u32 i = 0; i < WDBTAP_MAX_PATHS; i++) {
		if (i >= cfg->npaths)
			break;
		if (path_matches(path, plen, &cfg->paths[i]))
			return true;
	}
	return false;
}

static __always_inline __u64 sock_ino(struct sock *sk)
{
	if (!sk)
		return 0;
	return BPF_CORE_READ(sk, sk_socket, file, f_inode, i_ino);
}

/* Classify fd: fills direction and the connection's inodes, or returns false. */
static __always_inline bool classify_fd(int fd, struct pending_write *pw)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct fdtable *fdt = BPF_CORE_READ(task, files, fdt);
	struct file **fds;
	struct file *file = NULL;
	struct socket *sock;
	struct sock *sk, *peer;
	struct wdbtap_config *cfg;
	struct path_buf *pb;
	__u32 zero = 0;
	umode_t mode;
	int n;

	if (!fdt || fd < 0 || (unsigned int)fd >= BPF_CORE_READ(fdt, max_fds))
		return false;
	fds = BPF_CORE_READ(fdt, fd);
	if (bpf_probe_read_kernel(&file, sizeof(file), &fds[fd]) || !file)
		return false;
	mode = BPF_CORE_READ(file, f_inode, i_mode);
	if ((mode & S_IFMT) != S_IFSOCK)
		return false;
	sock = BPF_CORE_READ(file, private_data);
	sk = BPF_CORE_READ(sock, sk);
	if (!sk || BPF_CORE_READ(sk, __sk_common.skc_family) != AF_UNIX)
		return false;

	cfg = bpf_map_lookup_elem(&tap_config, &zero);
	pb = bpf_map_lookup_elem(&paths, &zero);
	if (!cfg || !pb) {
		count(WDBTAP_C_SCRATCH_FAIL);
		return false;
	}
	peer = BPF_CORE_READ((struct unix_sock *)sk, peer);

	/* wazuh-db's accepted sockets carry the listener's address: a write there is a reply. */
	n = unix_path(sk, pb->own);
	if (any_path_matches(pb->own, n, cfg)) {
		pw->direction = WDBTAP_DIR_REPLY;
	} else {
		n = unix_path(peer, pb->peer);
		if (!any_path_matches(pb->peer, n, cfg))
			return false;
		pw->direction = WDBTAP_DIR_REQUEST;
	}
	pw->local_ino = BPF_CORE_READ(file, f_inode, i_ino);
	pw->peer_ino = sock_ino(peer);
	return true;
}

static __always_inline int on_enter(int fd, __u64 buf, __u64 len, __u32 syscall)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	struct pending_write pw = {};

	if (!is_target(pid_tgid))
		return 0;
	count(WDBTAP_C_SEEN);
	if (!classify_fd(fd, &pw)) {
		count(WDBTAP_C_FILTERED);
		return 0;
	}
	pw.buf = buf;
	pw.len = len;
	pw.ts_ns = bpf_ktime_get_ns();
	pw.syscall = syscall;
	if (bpf_map_update_elem(&pending, &pid_tgid, &pw, BPF_ANY))
		count(WDBTAP_C_INFLIGHT_FULL);
	return 0;
}

static __always_inline int on_exit(void *ctx, long ret)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	struct pending_write *pwp = bpf_map_lookup_elem(&pending, &pid_tgid);
	struct pending_write pw;
	struct scratch_buf *sb;
	struct wdbtap_record *rec;
	__u32 zero = 0;
	__u64 total, cap;

	if (!pwp)
		return 0;
	pw = *pwp;
	bpf_map_delete_elem(&pending, &pid_tgid);
	if (ret <= 0) {
		count(WDBTAP_C_FAILED_WRITES);
		return 0;
	}
	sb = bpf_map_lookup_elem(&scratch, &zero);
	if (!sb) {
		count(WDBTAP_C_SCRATCH_FAIL);
		return 0;
	}
	rec = (struct wdbtap_record *)sb->bytes;
	/* Only the bytes the syscall wrote count; a partial write's tail comes in a later write. */
	total = (__u64)ret;
	if (total > pw.len)
		total = pw.len;
	cap = total;
	if (cap > (__u64)WDBTAP_CHUNK * WDBTAP_MAX_CHUNKS) {
		cap = (__u64)WDBTAP_CHUNK * WDBTAP_MAX_CHUNKS;
		count(WDBTAP_C_TRUNCATED);
	}

	rec->ts_ns = pw.ts_ns;
	rec->local_ino = pw.local_ino;
	rec->peer_ino = pw.peer_ino;
	rec->tgid = pid_tgid >> 32;
	rec->tid = (__u32)pid_tgid;
	rec->bytes = (__u32)total;
	rec->direction = pw.direction;
	rec->syscall = pw.syscall;
	rec->_pad = 0;
	bpf_get_current_comm(rec->comm, sizeof(rec->comm));

	for (__u32 i = 0; i < WDBTAP_MAX_CHUNKS; i++) {
		__u64 off = (__u64)i * WDBTAP_CHUNK;
		__u64 n;

		if (off >= cap)
			break;
		n = cap - off;
		if (n > WDBTAP_CHUNK)
			n = WDBTAP_CHUNK;
		rec->offset = off;
		rec->cap_len = n;
		rec->flags = 0;
		if (off + n >= cap)
			rec->flags |= WDBTAP_F_LAST | (cap < total ? WDBTAP_F_TRUNCATED : 0);
		asm volatile("" : "+r"(n));
		if (n > WDBTAP_CHUNK)
			return 0;
		if (bpf_probe_read_user(rec->data, n, (void *)(pw.buf + off))) {
			count(WDBTAP_C_SCRATCH_FAIL);
			return 0;
		}
		if (bpf_perf_event_output(ctx, &events, BPF_F_CURRENT_CPU, sb,
					  sizeof(struct wdbtap_record) + n)) {
			count(WDBTAP_C_OUTPUT_FAIL);
			return 0;
		}
		count(WDBTAP_C_CAPTURED);
	}
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_sendto")
int tp_enter_sendto(struct trace_event_raw_sys_enter *ctx)
{
	return on_enter((int)ctx->args[0], ctx->args[1], ctx->args[2], WDBTAP_SYS_SENDTO);
}

SEC("tracepoint/syscalls/sys_exit_sendto")
int tp_exit_sendto(struct trace_event_raw_sys_exit *ctx)
{
	return on_exit(ctx, ctx->ret);
}

SEC("tracepoint/syscalls/sys_enter_write")
int tp_enter_write(struct trace_event_raw_sys_enter *ctx)
{
	return on_enter((int)ctx->args[0], ctx->args[1], ctx->args[2], WDBTAP_SYS_WRITE);
}

SEC("tracepoint/syscalls/sys_exit_write")
int tp_exit_write(struct trace_event_raw_sys_exit *ctx)
{
	return on_exit(ctx, ctx->ret);
}
