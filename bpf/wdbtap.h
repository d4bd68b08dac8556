/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The record layout shared by the BPF program (wdbtap.bpf.c), the libbpf shim
 * (shim/wdbtap_shim.c) and the controller (controller/src/capture/record-layout.ts).
 * Change one, change all three: the shim checks the size at compile time and the
 * controller checks it at run time (wdbtap_record_size()).
 */
#ifndef WDBTAP_H
#define WDBTAP_H

/* A large write is sent as several chunks, since a perf sample is at most
 * 64 KiB with its headers. wazuh-db's largest reply is 65,536 bytes of payload
 * plus 4 of header: three chunks cover it. A power of two, so the verifier can
 * be shown the bound with a mask. */
#define WDBTAP_RECORD_SIZE 88
#define WDBTAP_CHUNK      32768
#define WDBTAP_MAX_CHUNKS 3

#define WDBTAP_COMM_LEN   16
#define WDBTAP_NAME_LEN   64 /* executable basename of a target daemon */
#define WDBTAP_MAX_DAEMONS 255 /* daemon ids are 1..255 (0: not a target) */
#define WDBTAP_CMD_KEY    8   /* a `global` command is told apart by its first 8 bytes */
#define WDBTAP_REQ_HEAD   (7 + WDBTAP_CMD_KEY) /* `global ` + those */
#define WDBTAP_MAX_EXE_DIRS 8

enum wdbtap_direction {
	WDBTAP_DIR_REQUEST = 1, /* a client writes to wazuh-db */
	WDBTAP_DIR_REPLY = 2,   /* wazuh-db writes to a client */
};

enum wdbtap_flags {
	WDBTAP_F_TRUNCATED = 1, /* the write was longer than the chunks carry: on the last record sent of
				 * it (or of its iovec), whose end is where the bytes sent end */
	WDBTAP_F_LAST = 2,      /* the last record of this write */
	WDBTAP_F_GAP = 4,       /* writes of this stream were filtered out since the last record:
				 * drop any partial frame; the first frame starts at frame_off */
	WDBTAP_F_KEYED = 8,     /* set by the shim: an update-agent-data sent whole, with its key and hash */
	WDBTAP_F_TICK = 16,     /* set by the shim: the request of key/hash, unchanged, answered ok;
				 * data: the reply's ts_ns (u64) — see shim/fastpath.h */
};

/* wdb framing (WAZUH-PROTOCOL.md §1): u32 little-endian length, then the payload. */
#define WDBTAP_MAX_FRAME  65536
/* Frames one write is walked through (3 loop steps each at most): a write of more (40 KiB of the
 * smallest frames) is passed on unframed. The loop's state is in map memory: the verifier checks one
 * step whatever the count, and a write costs the steps its frames take, not this bound. At 16, a
 * client's pipeline of 20 requests in one write had the replies to the last 4 dropped as unwanted. */
#define WDBTAP_MAX_FRAMES_PER_WRITE 8192
/* Iovecs a writev/sendmsg is followed through: UIO_MAXIOV, all the kernel accepts (it refuses more
 * with EINVAL/EMSGSIZE). The loop's state is in map memory (wdbtap.bpf.c): the verifier checks one step
 * whatever the count; only the iovecs a wanted write has are walked. */
#define WDBTAP_MAX_IOV 1024

enum wdbtap_syscall {
	WDBTAP_SYS_SENDTO = 1,
	WDBTAP_SYS_WRITE = 2,
	WDBTAP_SYS_SENDMSG = 3,
	WDBTAP_SYS_WRITEV = 4,
};

/* Kernel-side counters, one per-CPU slot each; the shim sums the CPUs. */
enum wdbtap_counter {
	WDBTAP_C_SEEN = 0,        /* writes by target processes on the hooked syscalls */
	WDBTAP_C_CAPTURED,        /* records sent to user space */
	WDBTAP_C_FILTERED,        /* target writes rejected by the socket filters */
	WDBTAP_C_TRUNCATED,       /* writes longer than WDBTAP_MAX_CHUNKS chunks */
	WDBTAP_C_SCRATCH_FAIL,    /* map or user-memory read failures */
	WDBTAP_C_OUTPUT_FAIL,     /* perf output refused (buffer full) */
	WDBTAP_C_INFLIGHT_FULL,   /* no room to remember a pending syscall */
	WDBTAP_C_FAILED_WRITES,   /* matched writes whose syscall returned <= 0 */
	WDBTAP_C_CONTENT_DROPPED, /* wdb writes holding no wanted `global` request or its reply */
	WDBTAP_C_UNFRAMED,        /* writes the kernel could not frame: passed to user space whole */
	WDBTAP_C_TARGETS_EXEC,    /* target processes picked up at exec */
	WDBTAP_C_OTHER_WDB,       /* target writes on a socket named wdb of another directory (another home) */
	WDBTAP_NCOUNTERS,
};

struct wdbtap_record {
	__u64 ts_ns;      /* bpf_ktime_get_ns() at syscall entry (CLOCK_MONOTONIC) */
	__u64 local_ino;  /* inode of the writer's socket */
	__u64 peer_ino;   /* inode of the peer socket: pairs both ends */
	__u32 tgid;
	__u32 tid;
	__u32 bytes;      /* the syscall's return value: bytes really written */
	__u32 offset;     /* offset of this chunk within the write */
	__u32 cap_len;    /* payload bytes that follow */
	__u16 direction;  /* enum wdbtap_direction */
	__u16 flags;      /* enum wdbtap_flags */
	__u16 syscall;    /* enum wdbtap_syscall */
	__u16 daemon;     /* the writer's daemon id (target_names), resolved at its exec */
	__u32 frame_off;  /* with WDBTAP_F_GAP: where the first whole frame starts in this write */
	__u64 hash;       /* set by the shim (F_KEYED, F_TICK): the update-agent-data payload's hash */
	__u32 key;        /* set by the shim: the agent id of that payload */
	__u32 read_ago;   /* reply: ns before ts_ns (a tick: before its reply's ts_ns) that the writing thread
			   * last finished a recvfrom — wazuh-db read the request then and applied it after;
			   * 0: unknown (no read seen, or 4.29 s or more before) */
	char comm[WDBTAP_COMM_LEN];
	__u8 data[];
};

/* What sys_enter learnt, for sys_exit of the same thread (map `pending`, keyed by
 * pid_tgid). The shim reads ts_ns of the writes in flight to order records. */
struct pending_write {
	__u64 buf;        /* the buffer, or for writev/sendmsg the iovec array */
	__u64 len;        /* its length, or the iovec count */
	__u64 ts_ns;      /* bpf_ktime_get_ns() at sys_enter: the record's ts_ns */
	__u64 local_ino;
	__u64 peer_ino;
	__u32 direction;
	__u32 syscall;
	__u32 is_iov;
	__u32 precounted; /* request: sys_enter counted the first frame's reply in want;
			   * reply: sys_enter decided its first frame (1: drop, 2: keep, one taken from want) */
};

/*
 * A filesystem object as the kernel names it: the inode number and the
 * superblock's device (kernel encoding, MKDEV: major << 20 | minor). Identity,
 * not a path: the same text in another home, another container or another
 * mount namespace is another object.
 */
struct wdbtap_fsid {
	__u64 ino;
	__u32 dev;
	__u32 _pad;
};

/*
 * The one manager this tap follows (one tap per Wazuh home):
 * - wdb_dir: the directory <home>/queue/db. A socket is wazuh-db's when the
 *   path the kernel keeps for it (struct unix_sock.path: set at bind, and
 *   copied from the listener to every socket accept() creates) is the entry
 *   "wdb" of that directory. Only wazuh and root can create entries there, and
 *   a socket wazuh-db re-creates at a restart is the same entry at once.
 * Target executables are kept in the exe_dirs map (their directories) and
 * target_names (their names).
 */
struct wdbtap_config {
	struct wdbtap_fsid wdb_dir;
	__u32 set;        /* wdb_dir is known (the home exists): else nothing matches */
	__u32 all_global; /* every `global` request, not only wanted_cmds (the `capture` command) */
};

#endif
