// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * wdbtap: capture the frames written on Wazuh's wazuh-db socket (queue/db/wdb).
 *
 * sys_enter decides, before any copy, whether this write matters: the writer
 * is a target (a daemon of this Wazuh home, marked at its exec), the fd is an
 * AF_UNIX socket, and the socket is this home's wazuh-db socket (wazuh-db's
 * side) or connected to it (a client's side), by filesystem identity, never
 * by the text given to bind(). Only then is the user buffer remembered;
 * sys_exit copies exactly the bytes the syscall reports written into perf
 * records.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>
#include "wdbtap.h"

#define AF_UNIX 1
#define S_IFMT 00170000
#define S_IFSOCK 0140000
#define SOCK_DGRAM 2

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* Target processes, by tgid (and the thread ids seen at fork, removed at exit) → daemon id. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, __u32);
	__type(value, __u32);
} target_tgids SEC(".maps");

/*
 * The same set as a flag per pid, for the write path: an array lookup is
 * inlined by the verifier into an address computation, where a hash lookup is
 * a call. Every process that makes a hooked syscall pays this test, so it is
 * the whole cost of the tap to them. The value is the daemon id (0: not a
 * target). Sized to pid_max by the loader; a pid above it (pid_max raised
 * later) is looked up in target_tgids instead (target_of).
 */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 32768);
	__type(key, __u32);
	__type(value, __u32);
} target_mark SEC(".maps");

/* Executable basenames of the target daemons → daemon id, full length (5.x
 * names exceed the 15-character comm); consulted at exec only. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, WDBTAP_MAX_DAEMONS);
	__type(key, char[WDBTAP_NAME_LEN]);
	__type(value, __u32);
} target_names SEC(".maps");

/*
 * The directories a target's executable must be in (this home's bin/, the
 * bundled Python of wazuh-clusterd), by identity. Value 0: the executable's
 * name must be in target_names; else every executable of that directory is
 * that daemon (python3, python3.10, … of the framework).
 */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, WDBTAP_MAX_EXE_DIRS);
	__type(key, struct wdbtap_fsid);
	__type(value, __u32);
} exe_dirs SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct wdbtap_config);
} tap_config SEC(".maps");

/*
 * When each wazuh-db thread last finished a recvfrom (CLOCK_MONOTONIC ns). wazuh-db's worker reads a
 * request (its length, then its payload: two recvfrom), applies it, and writes the reply from that same
 * thread (WAZUH-PROTOCOL §2): the reply's record says when the read ended (read_ago). The request was
 * applied between that read and the reply, so the read orders exchanges where the request's write
 * cannot: a worker woken late reads, and applies, after a later request of another connection. Task
 * storage: one slot a thread, gone with it. Only the threads of a daemon that answers on this home's wdb
 * socket (server_daemons) note their reads: remoted reads every reply (and every agent's message), and
 * noting those cost 145 ns a recvfrom (make bench ONLY=programs), where a target test that fails is less.
 */
struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, __u64);
} read_at SEC(".maps");

/*
 * Daemon ids (target_names) whose processes have answered on this home's wdb socket: wazuh-db (4.x's or
 * 5.x's name). Set at such a process's first reply and kept across its restarts (the same name, the same
 * id): from then on every thread of theirs notes its reads, a new worker's first request's too. An array
 * (an inlined lookup), indexed by the daemon id.
 */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, WDBTAP_MAX_DAEMONS + 1);
	__type(key, __u32);
	__type(value, __u32);
} server_daemons SEC(".maps");

/* The `global` commands whose requests (and replies) user space wants, by their first 8 bytes. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, __u64);
	__type(value, __u8);
} wanted_cmds SEC(".maps");

/* LRU: an entry whose thread died inside the syscall must not stay forever. Sized by the shim
 * (pending_entries()): the order watermark reads it whole every round. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, __u64);
	__type(value, struct pending_write);
} pending SEC(".maps");

/* Framing state of one direction of a connection. */
struct stream {
	__u32 remaining;  /* bytes of the current frame still to come */
	__u8 keep;        /* the current frame goes to user space */
	__u8 have;        /* bytes of the next frame's head gathered in head[] */
	__u8 dropped;     /* a write was filtered out since the last record */
	__u8 precounted;  /* sys_enter already counted this frame's reply in want */
	__u8 head[64];    /* u32 length + the payload's first bytes (WDBTAP_REQ_HEAD at most); room to read into */
};

struct conn_state {
	struct stream req, rep;
	__u32 want;       /* kept requests whose reply has not been seen */
	__u32 _pad;
};

/* Keyed by the client socket's inode; LRU because Wazuh closes nothing explicitly. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, __u64);
	__type(value, struct conn_state);
} conns SEC(".maps");

/*
 * What the loops below (bpf_loop callbacks) change from one step to the next.
 * They live in map memory, not on the stack: the verifier checks a callback as
 * a loop until its states repeat, and values it tracks on the stack (a position
 * growing by each step's take) never repeat, so every step's range was a new
 * state — on Linux 6.18.44 every exit program went past the verifier's million
 * instructions (the frame walk alone, in sendto's: 146,124; with this, 10,760).
 * A value read from a map is any value within the checks that follow, the same
 * at every step.
 */
struct walk_vars {
	__u64 p;
	__u32 n;
	__u32 pos;
	__u32 first_off;
	__u32 pre;   /* reply: the first frame's decision taken at sys_enter (0: none, 1: drop, 2: keep) */
	__u8 req;
	__u8 emit;
	__u8 unframed;
	__u8 _pad[5];
};

struct iov_vars {
	__u64 iov;
	__u64 count;
	__u32 total;
	__u32 done;
	__u32 pre;
	__u8 req;
	__u8 _pad[3];
};

/*
 * A record is too large for the BPF stack: build it in a buffer of this CPU.
 * An array with one slot per CPU (sized by the loader), not a per-CPU array,
 * whose values are limited to 32 KiB. Tracepoint programs do not migrate.
 */
struct scratch_buf {
	struct walk_vars walk;
	struct iov_vars iov;
	__u8 bytes[sizeof(struct wdbtap_record) + WDBTAP_CHUNK];
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1); /* set to the number of possible CPUs before load */
	__type(key, __u32);
	__type(value, struct scratch_buf);
} scratch SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, WDBTAP_NCOUNTERS);
	__type(key, __u32);
	__type(value, __u64);
} counters SEC(".maps");

/*
 * The records, one ring per CPU. The rings wake their reader only when half
 * full: the reader comes by itself every millisecond while records flow, and
 * sleeps when none do — then the first record rings the `bell` below.
 */
struct {
	__uint(type, BPF_MAP_TYPE_PERF_EVENT_ARRAY);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, sizeof(__u32));
} events SEC(".maps");

/* A ring that wakes its reader at every sample: rung once when the reader sleeps. */
struct {
	__uint(type, BPF_MAP_TYPE_PERF_EVENT_ARRAY);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, sizeof(__u32));
} bell SEC(".maps");

/* 1 while the reader sleeps waiting for the bell (set by the shim, cleared by whoever rings). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64); /* 64 bits: the atomic exchange of BPF's base instruction set */
} reader_idle SEC(".maps");

/*
 * After a record is out: wake the reader if it sleeps. The exchange is atomic
 * (a full barrier): the record is in its ring before the flag is read, so a
 * reader that armed the flag after its last look is always rung.
 */
static __always_inline void ring_if_idle(void *ctx)
{
	__u32 zero = 0, one = 1;
	__u64 *idle = bpf_map_lookup_elem(&reader_idle, &zero);

	if (idle && __sync_lock_test_and_set(idle, 0))
		bpf_perf_event_output(ctx, &bell, BPF_F_CURRENT_CPU, &one, sizeof(one));
}

static __always_inline void count(__u32 which)
{
	__u64 *v = bpf_map_lookup_elem(&counters, &which);
	if (v)
		*v += 1;
}

/* The write path's only test for a process that is not a target: one array load. Returns its daemon id. */
static __always_inline __u32 target_of(__u64 pid_tgid)
{
	__u32 tgid = pid_tgid >> 32;
	__u32 *mark = bpf_map_lookup_elem(&target_mark, &tgid);
	if (mark)
		return *mark;
	/*
	 * A pid past the marks: kernel.pid_max raised since the loader sized them. The set
	 * itself holds every target; only such pids pay its hash lookup.
	 */
	mark = bpf_map_lookup_elem(&target_tgids, &tgid);
	return mark ? *mark : 0;
}

static __always_inline bool is_target(__u64 pid_tgid)
{
	return target_of(pid_tgid) != 0;
}

static __always_inline void set_target(__u32 pid, __u32 daemon)
{
	if (daemon)
		bpf_map_update_elem(&target_tgids, &pid, &daemon, BPF_ANY);
	else
		bpf_map_delete_elem(&target_tgids, &pid);
	bpf_map_update_elem(&target_mark, &pid, &daemon, BPF_ANY);
}

static __always_inline bool same_dir(const struct wdbtap_fsid *a, const struct wdbtap_fsid *b)
{
	return a->ino == b->ino && a->dev == b->dev;
}

/*
 * btrfs's own inode, for the device stat(2) reports. Local types (the suffix is dropped
 * when CO-RE matches them): btrfs may be a module, absent from the vmlinux.h built here,
 * and it may not be loaded at all (bpf_core_type_exists is then false, the branch dead).
 */
#define BTRFS_SUPER_MAGIC 0x9123683EUL
struct btrfs_root___wdbtap {
	dev_t anon_dev;
} __attribute__((preserve_access_index));
struct btrfs_inode___wdbtap {
	struct btrfs_root___wdbtap *root;
	struct inode vfs_inode;
} __attribute__((preserve_access_index));

/*
 * The device of an inode as stat(2) reports it, which is what user space hands
 * the maps (targets.ts). The superblock's s_dev, except on btrfs: there every
 * subvolume, the top one too, reports a device of its own (btrfs_getattr:
 * root->anon_dev), and its inode numbers are its own — s_dev never matched, so
 * nothing was captured, and s_dev with the inode number would not tell one
 * subvolume's directory from another's of the same number.
 */
static __always_inline __u32 dev_of(struct inode *inode)
{
	struct super_block *sb = BPF_CORE_READ(inode, i_sb);

	if (bpf_core_type_exists(struct btrfs_inode___wdbtap) &&
	    BPF_CORE_READ(sb, s_magic) == BTRFS_SUPER_MAGIC) {
		struct btrfs_inode___wdbtap *bi = (void *)((char *)inode -
			bpf_core_field_offset(struct btrfs_inode___wdbtap, vfs_inode));

		return BPF_CORE_READ(bi, root, anon_dev);
	}
	return BPF_CORE_READ(sb, s_dev);
}

/* The identity of the directory that holds dentry d. */
static __always_inline void parent_of(struct dentry *d, struct wdbtap_fsid *out)
{
	struct inode *dir = BPF_CORE_READ(d, d_parent, d_inode);

	out->ino = BPF_CORE_READ(dir, i_ino);
	out->dev = dev_of(dir);
	out->_pad = 0;
}

/*
 * Is this unix socket this home's wazuh-db socket? Its path (bound, or the
 * listener's for an accepted socket) must be the entry "wdb" of <home>/queue/db.
 * An entry named wdb elsewhere is another home's: counted, never captured.
 */
static __always_inline bool is_wdb(struct sock *sk, const struct wdbtap_config *cfg, __u8 *other)
{
	struct dentry *d;
	struct wdbtap_fsid dir;
	char name[4] = {};

	if (!sk)
		return false;
	d = BPF_CORE_READ((struct unix_sock *)sk, path.dentry);
	if (!d || BPF_CORE_READ(d, d_name.len) != 3)
		return false;
	if (bpf_probe_read_kernel(name, 3, BPF_CORE_READ(d, d_name.name)) ||
	    name[0] != 'w' || name[1] != 'd' || name[2] != 'b')
		return false;
	parent_of(d, &dir);
	if (cfg->set && same_dir(&dir, &cfg->wdb_dir))
		return true;
	count(WDBTAP_C_OTHER_WDB);
	*other = 1;
	return false;
}

static __always_inline __u64 sock_ino(struct sock *sk)
{
	if (!sk)
		return 0;
	return BPF_CORE_READ(sk, sk_socket, file, f_inode, i_ino);
}

/*
 * What classify_fd decided for one connected AF_UNIX stream socket: fixed
 * from connect/accept to close (its peer, and the paths of both ends). The
 * decision was ~30 kernel reads at every write of a target's (half of its
 * sys_enter program's time); a hit is three and a lookup. Not kept: a
 * datagram socket (it can connect elsewhere), an unconnected one, a client
 * whose peer wazuh-db has not accepted yet (no inode until then), and what is
 * not an AF_UNIX socket — a few reads decide it, and remoted's TCP sockets to
 * thousands of agents would only churn the map.
 */
struct fd_class {
	__u64 inode;      /* the file's inode (address) and its number: a file */
	__u64 ino;        /*   reusing the slot is another inode, or a socket inode number not yet reused */
	struct wdbtap_fsid wdb_dir; /* the configuration it was decided under */
	__u64 peer_ino;
	__u8 direction;   /* WDBTAP_DIR_*, 0: not this home's wazuh-db */
	__u8 other_wdb;   /* a socket named wdb of another directory: counted at every write, as before */
	__u8 _pad[6];
};

/* Keyed by the struct file's address, which never leaves the kernel; LRU: files close without telling us. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, __u64);
	__type(value, struct fd_class);
} fd_classes SEC(".maps");

/* Classify fd: fills direction and the connection's inodes, or returns false. */
static __always_inline bool classify_fd(int fd, struct pending_write *pw)
{
	/* A BTF pointer: its fields are loads the JIT guards, not a helper call each (Linux >= 5.11). */
	struct task_struct *task = bpf_get_current_task_btf();
	struct files_struct *files = task->files;
	struct fdtable *fdt = files ? files->fdt : NULL;
	struct file **fds;
	struct file *file = NULL;
	struct inode *inode;
	struct socket *sock;
	struct sock *sk, *peer;
	struct wdbtap_config *cfg;
	struct fd_class c = {}, *hit;
	__u64 key;
	__u32 zero = 0;
	umode_t mode;

	cfg = bpf_map_lookup_elem(&tap_config, &zero);
	if (!cfg) {
		count(WDBTAP_C_SCRATCH_FAIL);
		return false;
	}
	if (!fdt || fd < 0 || (unsigned int)fd >= fdt->max_fds)
		return false;
	fds = fdt->fd;
	if (bpf_probe_read_kernel(&file, sizeof(file), &fds[fd]) || !file)
		return false;
	inode = BPF_CORE_READ(file, f_inode);
	c.inode = (__u64)inode;
	c.ino = BPF_CORE_READ(inode, i_ino);
	c.wdb_dir = cfg->wdb_dir;
	key = (__u64)file;
	hit = bpf_map_lookup_elem(&fd_classes, &key);
	if (hit && hit->inode == c.inode && hit->ino == c.ino && same_dir(&hit->wdb_dir, &c.wdb_dir)) {
		if (hit->other_wdb)
			count(WDBTAP_C_OTHER_WDB);
		if (!hit->direction)
			return false;
		pw->direction = hit->direction;
		pw->local_ino = hit->ino;
		pw->peer_ino = hit->peer_ino;
		return true;
	}

	mode = BPF_CORE_READ(inode, i_mode);
	if ((mode & S_IFMT) != S_IFSOCK)
		return false;
	sock = BPF_CORE_READ(file, private_data);
	sk = BPF_CORE_READ(sock, sk);
	if (!sk || BPF_CORE_READ(sk, __sk_common.skc_family) != AF_UNIX)
		return false;
	peer = BPF_CORE_READ((struct unix_sock *)sk, peer);

	/* wazuh-db's accepted sockets carry the listener's path: a write there is a reply.
	 * A client's socket is unbound; its peer (the accepted socket) carries it. */
	if (is_wdb(sk, cfg, &c.other_wdb))
		c.direction = WDBTAP_DIR_REPLY;
	else if (is_wdb(peer, cfg, &c.other_wdb))
		c.direction = WDBTAP_DIR_REQUEST;
	if (c.direction)
		c.peer_ino = sock_ino(peer);
	/* Kept once it cannot change (see fd_class). */
	if (cfg->set && peer && (!c.direction || c.peer_ino) && BPF_CORE_READ(sk, sk_type) != SOCK_DGRAM)
		bpf_map_update_elem(&fd_classes, &key, &c, BPF_ANY);
	if (!c.direction)
		return false;
	pw->direction = c.direction;
	pw->local_ino = c.ino;
	pw->peer_ino = c.peer_ino;
	return true;
}

static __always_inline __u32 head_len(const struct stream *s)
{
	return (__u32)s->head[0] | (__u32)s->head[1] << 8 | (__u32)s->head[2] << 16 | (__u32)s->head[3] << 24;
}

static __always_inline bool is_global(const __u8 *p)
{
	return p[0] == 'g' && p[1] == 'l' && p[2] == 'o' && p[3] == 'b' && p[4] == 'a' && p[5] == 'l' && p[6] == ' ';
}

/*
 * A request the tap wants: `global <command>` with a command of wanted_cmds
 * (the ones that change or tell an agent's status; or every `global` one when
 * tap_config.all_global, for `capture`). Commands are told apart by their first
 * 8 bytes, one hash lookup and no loop: the verifier's work, and a frame's cost,
 * stay flat. p holds the payload's first n bytes, n = min(frame length,
 * WDBTAP_REQ_HEAD). What is not wanted (remoted's select-agent-group with every
 * keepalive, analysisd's get-labels…) costs no copy, nor does its reply.
 */
static __always_inline bool wanted_request(const __u8 *p, __u32 n)
{
	struct wdbtap_config *cfg;
	__u32 zero = 0;
	__u64 key;

	if (n < 7 || !is_global(p))
		return false;
	cfg = bpf_map_lookup_elem(&tap_config, &zero);
	if (cfg && cfg->all_global)
		return true;
	if (n < WDBTAP_REQ_HEAD)
		return false; /* shorter than any wanted command */
	__builtin_memcpy(&key, &p[7], sizeof(key));
	return bpf_map_lookup_elem(&wanted_cmds, &key) != NULL;
}

/* Bytes of head a frame start needs: its length, and for a request the payload's first bytes. */
static __always_inline __u32 head_need(const struct stream *s, bool req)
{
	__u32 len;

	if (s->have < 4 || !req)
		return 4;
	len = head_len(s);
	return 4 + (len < WDBTAP_REQ_HEAD ? len : WDBTAP_REQ_HEAD);
}

/* Append take (1..REQ_HEAD+4) bytes at user address p to the head being gathered: one read, no loop. */
static __always_inline bool read_head(struct stream *s, __u64 p, __u32 take)
{
	__u32 at = s->have;

	if (take == 0 || take > WDBTAP_REQ_HEAD + 4 || at > WDBTAP_REQ_HEAD + 4)
		return false;
	/* Show the verifier at < 32 and 1 <= take <= 32: the read stays inside head[64]. */
	asm volatile("" : "+r"(take), "+r"(at));
	take = ((take - 1) & 31) + 1;
	at &= 31;
	if (bpf_probe_read_user(&s->head[at], take, (void *)p))
		return false;
	s->have += take;
	return true;
}

/*
 * Whether the frame whose head is in s->head (length len) goes to user space:
 * a wanted request (its reply counted, unless sys_enter did), or a reply one is
 * wanted for. pre: wazuh-db's sys_enter already decided this reply (see
 * prekeep_reply; 1 drop, 2 keep, want already taken), 0: decide here.
 */
static __always_inline void decide(struct stream *s, struct conn_state *cs, bool req, __u32 len, __u32 pre)
{
	if (req) {
		s->keep = wanted_request(&s->head[4], len < WDBTAP_REQ_HEAD ? len : WDBTAP_REQ_HEAD);
		if (s->keep && !s->precounted)
			__sync_fetch_and_add(&cs->want, 1);
		s->precounted = 0;
	} else if (pre) {
		s->keep = pre == 2;
	} else {
		s->keep = cs->want > 0;
		if (s->keep)
			__sync_fetch_and_add(&cs->want, -1);
	}
}

/* walk()'s loop context: pointers only, the same at every step; what changes is in *v. */
struct walk_ctx {
	struct stream *s;
	struct conn_state *cs;
	struct walk_vars *v;
};

/* One step of walk(): a frame body, or a frame head. Returns 1 to stop. */
static long walk_step(__u32 index, void *data)
{
	struct walk_ctx *wc = data;
	struct stream *s = wc->s;
	struct conn_state *cs = wc->cs;
	struct walk_vars *w = wc->v;
	__u32 need, len, take;

	if (!s || !cs || !w)
		return 1;
	if (w->pos >= w->n) {
		w->emit |= s->have > 0; /* the write ended inside a head: undecided, let user space see it */
		return 1;
	}
	if (s->remaining) {
		take = w->n - w->pos;
		if (take > s->remaining)
			take = s->remaining;
		w->emit |= s->keep;
		s->remaining -= take;
		w->pos += take;
		return 0;
	}
	if (s->have == 0 && w->first_off == w->n)
		w->first_off = w->pos;
	need = head_need(s, w->req);
	if (s->have < need) {
		take = need - s->have;
		if (take > w->n - w->pos)
			take = w->n - w->pos;
		if (!read_head(s, w->p + w->pos, take)) {
			w->unframed = true;
			return 1;
		}
		w->pos += take;
		if (s->have < need) {
			w->emit = true; /* the write ends inside a head: undecided, let user space see it */
			return 1;
		}
		if (need == 4 && w->req)
			return 0; /* the length is known: next, the payload's first bytes */
	}
	len = head_len(s);
	if (len == 0 || len > WDBTAP_MAX_FRAME) {
		w->unframed = true;
		return 1;
	}
	if (!w->req && w->first_off == 0 && w->pre) {
		decide(s, cs, false, len, w->pre);
		w->pre = 0;
	} else {
		decide(s, cs, w->req, len, 0);
	}
	w->emit |= s->keep;
	s->remaining = 4 + len - s->have;
	s->have = 0;
	return 0;
}

/*
 * The usual write: one whole frame, from a frame boundary (Wazuh writes each
 * frame with one sendto). Decided from one read of its head, as walk_step
 * would decide it, without the loop: whether it is kept, or -1 when walk()
 * must follow the write. Not for an iovec (walk's `whole`): a piece of a
 * writev is rarely a frame, and its loop's stack has no room left.
 */
static __always_inline int one_frame(struct stream *s, struct conn_state *cs, __u64 p, __u32 n, bool req, __u32 pre)
{
	__u32 len;

	/* Read into s->head: free at a frame boundary, and map memory, not the stack the loops need. */
	if (s->have || s->remaining)
		return -1;
	if (req ? n < 4 + WDBTAP_REQ_HEAD || bpf_probe_read_user(s->head, 4 + WDBTAP_REQ_HEAD, (void *)p)
		: n <= 4 || bpf_probe_read_user(s->head, 4, (void *)p))
		return -1;
	len = head_len(s);
	if (len != n - 4 || len > WDBTAP_MAX_FRAME)
		return -1;
	decide(s, cs, req, len, pre);
	return s->keep;
}

/*
 * Follow the frames of n bytes written at p on one direction of a connection
 * and say whether the write holds any byte user space needs: a `global `
 * request, a reply to one, or a frame start not yet decided. *first_off gets
 * the offset of the first frame that starts in this write (n when none does).
 * bpf_loop keeps the verifier's work to one step, however many frames.
 */
static __always_inline bool walk(struct walk_vars *w, struct stream *s, struct conn_state *cs, __u64 p,
				 __u32 n, bool req, __u32 *first_off, __u32 pre, const bool whole)
{
	struct walk_ctx wc = { .s = s, .cs = cs, .v = w };
	int keep = whole ? one_frame(s, cs, p, n, req, pre) : -1;
	long steps;

	if (keep >= 0) {
		*first_off = 0;
		return keep;
	}
	*w = (struct walk_vars){ .p = p, .n = n, .first_off = n, .req = req, .pre = pre };
	steps = bpf_loop(WDBTAP_MAX_FRAMES_PER_WRITE * 3, walk_step, &wc, 0);
	*first_off = w->first_off;
	if (w->pre == 2)
		__sync_fetch_and_add(&cs->want, 1); /* decided for a frame this write did not start: given back */
	if (steps >= WDBTAP_MAX_FRAMES_PER_WRITE * 3 && w->pos < w->n)
		w->unframed = true; /* more frames in one write than the walk follows */
	if (!w->unframed)
		return w->emit;
	/* Pass the write on whole and resync at the next one. */
	count(WDBTAP_C_UNFRAMED);
	s->have = 0;
	s->remaining = 0;
	s->keep = 0;
	return true;
}

/* head: a frame's 4-byte length and its payload's first n bytes. Counts the reply a wanted request wants. */
static __always_inline bool count_if_wanted(struct conn_state *cs, const __u8 *head, __u32 n)
{
	if (!wanted_request(&head[4], n))
		return false;
	__sync_fetch_and_add(&cs->want, 1);
	cs->req.precounted = 1;
	return true;
}

/* A frame's length from its 4-byte head (0: not a plausible frame length). */
static __always_inline __u32 frame_len(const __u8 *head)
{
	__u32 flen = head[0] | head[1] << 8 | head[2] << 16 | (__u32)head[3] << 24;

	return flen > WDBTAP_MAX_FRAME ? 0 : flen;
}

/* The payload bytes a request's decision needs (0: not a plausible frame length). */
static __always_inline __u32 decision_bytes(const __u8 *head)
{
	__u32 flen = frame_len(head);

	return flen < WDBTAP_REQ_HEAD ? flen : WDBTAP_REQ_HEAD;
}

/* Read n (1..REQ_HEAD) bytes at user address p into tmp[4..]. */
static __always_inline bool read_payload_head(__u8 *tmp, __u64 p, __u32 n)
{
	asm volatile("" : "+r"(n));
	n = ((n - 1) & 15) + 1;
	if (n > WDBTAP_REQ_HEAD)
		return false;
	return bpf_probe_read_user(&tmp[4], n, (void *)p) == 0;
}

/*
 * At sys_enter, count the reply wanted by a request that starts this write,
 * before wazuh-db can possibly answer it (the reply may be written before this
 * syscall's sys_exit runs). Only when the write holds the whole head; otherwise
 * the walk at sys_exit decides. Returns whether it counted.
 */
static __always_inline bool precount_request(struct conn_state *cs, __u64 buf, __u64 len)
{
	struct stream *s = &cs->req;
	__u8 tmp[24] = {};
	__u32 have = s->have, off = 0, n;

	if (s->remaining || (have != 0 && have != 4))
		return false;
	if (have == 4) {
		/* the length came alone in the previous write (5.x): the payload starts here */
		for (int i = 0; i < 4; i++)
			tmp[i] = s->head[i];
	} else {
		if (len < 4 || bpf_probe_read_user(tmp, 4, (void *)buf))
			return false;
		off = 4;
	}
	n = decision_bytes(tmp);
	if (n == 0 || len < off + n || !read_payload_head(tmp, buf + off, n))
		return false;
	return count_if_wanted(cs, tmp, n);
}

/* The same for writev/sendmsg: the head is in the first iovec, or split as length | payload. */
static __always_inline bool precount_iov(struct conn_state *cs, __u64 iovp, __u64 cnt)
{
	struct iovec iov0 = {}, iov1 = {};
	__u8 tmp[24] = {};
	__u32 n;

	if (cs->req.remaining || cs->req.have || cnt == 0)
		return false;
	if (bpf_probe_read_user(&iov0, sizeof(iov0), (void *)iovp) || iov0.iov_len < 4 ||
	    bpf_probe_read_user(tmp, 4, iov0.iov_base))
		return false;
	n = decision_bytes(tmp);
	if (n == 0)
		return false;
	if (iov0.iov_len >= 4 + n)
		return read_payload_head(tmp, (__u64)iov0.iov_base + 4, n) && count_if_wanted(cs, tmp, n);
	if (iov0.iov_len != 4 || cnt < 2 ||
	    bpf_probe_read_user(&iov1, sizeof(iov1), (void *)(iovp + sizeof(iov1))) || iov1.iov_len < n)
		return false;
	return read_payload_head(tmp, (__u64)iov1.iov_base, n) && count_if_wanted(cs, tmp, n);
}

/*
 * At wazuh-db's sys_enter, decide whether the reply it begins to write is wanted
 * (one taken from want), before the client can read it and write its next
 * request: decided at sys_exit, a sender preempted between its copy and its exit
 * would see the next request's count and keep the wrong reply (and drop the
 * right one). wazuh-db writes each reply in one sendto, starting with its length.
 * The decision travels with this thread's pending write (several wazuh-db
 * threads answer one connection). Returns 0 (no decision), 1 (drop), 2 (keep).
 */
static __always_inline __u32 prekeep_reply(struct conn_state *cs, __u64 buf, __u64 len)
{
	__u8 head[4] = {};

	if (len < 4 || bpf_probe_read_user(head, 4, (void *)buf) || !frame_len(head))
		return 0;
	if (cs->want == 0)
		return 1;
	__sync_fetch_and_add(&cs->want, -1);
	return 2;
}

/*
 * A new connection's state: copied from this never-written entry rather than
 * from a zeroed one on the stack (152 bytes the exit programs' loops need).
 */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct conn_state);
} conn_zero SEC(".maps");

static __always_inline struct conn_state *conn_of(__u64 client_ino)
{
	struct conn_state *cs, *zero;
	__u32 k = 0;

	if (!client_ino)
		return NULL;
	cs = bpf_map_lookup_elem(&conns, &client_ino);
	if (cs)
		return cs;
	zero = bpf_map_lookup_elem(&conn_zero, &k);
	if (!zero)
		return NULL;
	bpf_map_update_elem(&conns, &client_ino, zero, BPF_NOEXIST);
	return bpf_map_lookup_elem(&conns, &client_ino);
}

static __always_inline int on_enter(int fd, __u64 buf, __u64 len, __u32 syscall, __u32 is_iov)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	struct pending_write pw = {};
	struct conn_state *cs;

	if (!is_target(pid_tgid))
		return 0;
	count(WDBTAP_C_SEEN);
	if (!classify_fd(fd, &pw)) {
		count(WDBTAP_C_FILTERED);
		return 0;
	}
	pw.buf = buf;
	pw.len = len;
	pw.ts_ns = bpf_ktime_get_ns(); /* a lower bound until the entry is in: see below */
	pw.syscall = syscall;
	pw.is_iov = is_iov;
	if (pw.direction == WDBTAP_DIR_REQUEST) {
		cs = conn_of(pw.local_ino);
		if (cs)
			pw.precounted = is_iov ? precount_iov(cs, buf, len) : precount_request(cs, buf, len);
	} else if (!is_iov) {
		cs = conn_of(pw.peer_ino);
		if (cs)
			pw.precounted = prekeep_reply(cs, buf, len);
	}
	if (bpf_map_update_elem(&pending, &pid_tgid, &pw, BPF_ANY)) {
		count(WDBTAP_C_INFLIGHT_FULL);
		return 0;
	}
	/*
	 * The write's time is taken once its entry is in the map, not before: the shim's order
	 * watermark (inflight_min) passes every record older than its `now` unless an entry older
	 * than it is in flight, and a time taken before the entry is in could be older than a `now`
	 * whose scan did not find the entry yet (an interrupt, or the hypervisor taking the vCPU,
	 * between the two) — that write's records would come after later ones. Taken after, a time
	 * older than `now` has its entry seen by the scan; and the entry's first time, taken before
	 * it went in, is never later than this one, so a scan that reads it holds the watermark below
	 * the write either way.
	 */
	struct pending_write *in = bpf_map_lookup_elem(&pending, &pid_tgid);
	if (in)
		in->ts_ns = bpf_ktime_get_ns();
	return 0;
}

/*
 * Send n bytes at user address p (offset off within the write) as records of at most one chunk.
 * flags (F_GAP) ride on the first record; F_TRUNCATED and F_LAST on the last one sent: what
 * follows that record is gone, and the chunks before it carry whole frames user space keeps.
 */
static __always_inline void emit_bytes(void *ctx, struct wdbtap_record *rec, struct stream *s, __u64 p, __u32 off,
				       __u32 n, __u16 flags, bool last)
{
	const bool cut = n > WDBTAP_MAX_CHUNKS * WDBTAP_CHUNK;

	for (__u32 i = 0; i < WDBTAP_MAX_CHUNKS; i++) {
		__u32 done = i * WDBTAP_CHUNK;
		__u32 c;
		bool end;

		if (done >= n)
			return;
		c = n - done;
		if (c > WDBTAP_CHUNK)
			c = WDBTAP_CHUNK;
		/* 1 <= c <= WDBTAP_CHUNK, written so the verifier can see it; the barrier
		 * keeps clang from folding the expression back into c. */
		asm volatile("" : "+r"(c));
		c = ((c - 1) & (WDBTAP_CHUNK - 1)) + 1;
		rec->offset = off + done;
		rec->cap_len = c;
		end = done + c >= n || i == WDBTAP_MAX_CHUNKS - 1;
		rec->flags = (i == 0 ? flags : 0) | (end && cut ? WDBTAP_F_TRUNCATED : 0) | (end && last ? WDBTAP_F_LAST : 0);
		/*
		 * A record not sent: the walk has already moved the stream's framing past these bytes, so
		 * its next record must say the stream lost some (F_GAP, and where its first frame starts).
		 * Without it, a lost write that held part of a frame had the next writes appended to that
		 * frame's start in user space, whole requests and replies swallowed with it.
		 */
		if (bpf_probe_read_user(rec->data, c, (void *)(p + done))) {
			count(WDBTAP_C_SCRATCH_FAIL);
			s->dropped = 1;
			return;
		}
		if (bpf_perf_event_output(ctx, &events, BPF_F_CURRENT_CPU, rec, sizeof(*rec) + c)) {
			count(WDBTAP_C_OUTPUT_FAIL);
			s->dropped = 1;
			return;
		}
		count(WDBTAP_C_CAPTURED);
		ring_if_idle(ctx);
	}
	if (n > WDBTAP_MAX_CHUNKS * WDBTAP_CHUNK)
		count(WDBTAP_C_TRUNCATED);
}

/* Walk one contiguous piece of a write and send it when it holds anything wanted. */
static __always_inline void piece(void *ctx, struct scratch_buf *sb, struct conn_state *cs, bool req,
				  __u64 p, __u32 off, __u32 n, bool last, __u32 pre, const bool whole)
{
	struct wdbtap_record *rec = (struct wdbtap_record *)sb->bytes;
	struct stream *s = req ? &cs->req : &cs->rep;
	__u32 first = n;
	__u16 flags = 0;

	if (!walk(&sb->walk, s, cs, p, n, req, &first, pre, whole)) {
		s->dropped = 1;
		count(WDBTAP_C_CONTENT_DROPPED);
		return;
	}
	if (s->dropped) {
		flags |= WDBTAP_F_GAP;
		s->dropped = 0;
	}
	/* Past the chunks, the write's bytes are not sent: the stream's next record says where its
	 * first frame starts (the walk above followed every byte). */
	if (n > WDBTAP_MAX_CHUNKS * WDBTAP_CHUNK)
		s->dropped = 1;
	rec->frame_off = off + first;
	emit_bytes(ctx, rec, s, p, off, n, flags, last);
}

/* The iovec loop's context: pointers only; what changes is in sb->iov. */
struct iov_ctx {
	void *ctx;
	struct scratch_buf *sb;
	struct conn_state *cs;
};

static long iov_step(__u32 i, void *data)
{
	struct iov_ctx *c = data;
	struct iov_vars *ic;
	struct iovec iov;
	__u32 n;

	if (!c->sb || !c->cs)
		return 1;
	ic = &c->sb->iov;
	if (i >= ic->count || ic->done >= ic->total)
		return 1;
	if (bpf_probe_read_user(&iov, sizeof(iov), (void *)(ic->iov + i * sizeof(iov)))) {
		count(WDBTAP_C_SCRATCH_FAIL);
		return 1;
	}
	n = iov.iov_len > ic->total - ic->done ? ic->total - ic->done : iov.iov_len;
	if (n)
		piece(c->ctx, c->sb, c->cs, ic->req, (__u64)iov.iov_base, ic->done, n,
		      ic->done + n >= ic->total, ic->done == 0 ? ic->pre : 0, false);
	ic->done += n;
	return 0;
}

static __always_inline void finish_write(void *ctx, long ret, __u64 pid_tgid, __u32 daemon,
					 const struct pending_write *pwp, const bool is_iov)
{
	struct pending_write pw = *pwp;
	struct conn_state *cs;
	struct scratch_buf *sb;
	struct wdbtap_record *rec;
	__u32 cpu;
	__u64 total;
	bool req;

	req = pw.direction == WDBTAP_DIR_REQUEST;
	cs = conn_of(req ? pw.local_ino : pw.peer_ino);
	if (ret <= 0) {
		if (cs && pw.precounted && req) { /* nothing was written: no reply will come */
			__sync_fetch_and_add(&cs->want, -1);
			cs->req.precounted = 0;
		}
		if (cs && pw.precounted == 2 && !req) /* nothing was written: the reply it was kept for is still due */
			__sync_fetch_and_add(&cs->want, 1);
		count(WDBTAP_C_FAILED_WRITES);
		return;
	}
	cpu = bpf_get_smp_processor_id();
	sb = bpf_map_lookup_elem(&scratch, &cpu);
	if (!sb || !cs) {
		count(WDBTAP_C_SCRATCH_FAIL);
		return;
	}
	rec = (struct wdbtap_record *)sb->bytes;
	/* Only the bytes the syscall wrote count; a partial write's tail comes in a later write. */
	total = (__u64)ret;
	if (!is_iov && total > pw.len)
		total = pw.len;
	if (total > 0xffffffffULL)
		total = 0xffffffffULL;

	rec->ts_ns = pw.ts_ns;
	rec->local_ino = pw.local_ino;
	rec->peer_ino = pw.peer_ino;
	rec->tgid = pid_tgid >> 32;
	rec->tid = (__u32)pid_tgid;
	rec->bytes = (__u32)total;
	rec->direction = pw.direction;
	rec->syscall = pw.syscall;
	rec->daemon = daemon;
	rec->read_ago = 0;
	if (!req) {
		__u32 *server = bpf_map_lookup_elem(&server_daemons, &daemon);
		__u64 *at = bpf_task_storage_get(&read_at, bpf_get_current_task_btf(), 0, 0);
		__u64 ago = at && *at && *at < pw.ts_ns ? pw.ts_ns - *at : 0;

		if (server && !*server)
			*server = 1; /* this daemon answers: its threads' reads are noted from now on */

		rec->read_ago = ago <= 0xffffffffULL ? (__u32)ago : 0;
	}
	bpf_get_current_comm(rec->comm, sizeof(rec->comm));

	if (!is_iov) {
		piece(ctx, sb, cs, req, pw.buf, 0, (__u32)total, true, req ? 0 : pw.precounted, true);
		return;
	}
	/* writev/sendmsg: each iovec is a piece; only the first `total` bytes were written. */
	struct iov_ctx ic = { .ctx = ctx, .sb = sb, .cs = cs };

	sb->iov = (struct iov_vars){ .iov = pw.buf, .count = pw.len, .total = (__u32)total, .req = req,
				     .pre = req ? 0 : pw.precounted };
	bpf_loop(WDBTAP_MAX_IOV, iov_step, &ic, 0);
	if (sb->iov.done < sb->iov.total) {
		/*
		 * Bytes written but not followed: an iovec unreadable (counted), or more of them than
		 * WDBTAP_MAX_IOV (none: the kernel refuses more). The stream's framing stopped mid-write:
		 * left so, its next frame was mis-walked and the reply to it dropped. Framing starts again
		 * at the next write, whose record says the stream lost bytes.
		 */
		struct stream *s = req ? &cs->req : &cs->rep;

		s->have = 0;
		s->remaining = 0;
		s->keep = 0;
		s->dropped = 1;
		if (pw.len > WDBTAP_MAX_IOV)
			count(WDBTAP_C_TRUNCATED);
	}
}

/*
 * The pending entry is deleted only once the records are out: user space's
 * order watermark (the shim) reads the entries of syscalls in flight, so a write
 * is always either in flight there or already in its CPU's ring, never neither.
 */
static __always_inline int on_exit(void *ctx, long ret, const __u32 syscall)
{
	/* Known when each program is built: sendto's and write's carry no iovec loop. */
	const bool is_iov = syscall == WDBTAP_SYS_WRITEV || syscall == WDBTAP_SYS_SENDMSG;
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	struct pending_write *pwp;
	__u32 daemon = target_of(pid_tgid);

	if (!daemon)
		return 0; /* the cheap test first: a non-target never reaches the hash below */
	pwp = bpf_map_lookup_elem(&pending, &pid_tgid);
	if (!pwp)
		return 0;
	/* Another syscall's entry (its exit ran before this program was attached): nothing was written. */
	finish_write(ctx, pwp->syscall == syscall ? ret : -1, pid_tgid, daemon, pwp, is_iov);
	bpf_map_delete_elem(&pending, &pid_tgid);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_sendto")
int tp_enter_sendto(struct trace_event_raw_sys_enter *ctx)
{
	return on_enter((int)ctx->args[0], ctx->args[1], ctx->args[2], WDBTAP_SYS_SENDTO, 0);
}

SEC("tracepoint/syscalls/sys_exit_sendto")
int tp_exit_sendto(struct trace_event_raw_sys_exit *ctx)
{
	return on_exit(ctx, ctx->ret, WDBTAP_SYS_SENDTO);
}

SEC("tracepoint/syscalls/sys_enter_write")
int tp_enter_write(struct trace_event_raw_sys_enter *ctx)
{
	return on_enter((int)ctx->args[0], ctx->args[1], ctx->args[2], WDBTAP_SYS_WRITE, 0);
}

SEC("tracepoint/syscalls/sys_exit_write")
int tp_exit_write(struct trace_event_raw_sys_exit *ctx)
{
	return on_exit(ctx, ctx->ret, WDBTAP_SYS_WRITE);
}

SEC("tracepoint/syscalls/sys_enter_writev")
int tp_enter_writev(struct trace_event_raw_sys_enter *ctx)
{
	return on_enter((int)ctx->args[0], ctx->args[1], ctx->args[2], WDBTAP_SYS_WRITEV, 1);
}

SEC("tracepoint/syscalls/sys_exit_writev")
int tp_exit_writev(struct trace_event_raw_sys_exit *ctx)
{
	return on_exit(ctx, ctx->ret, WDBTAP_SYS_WRITEV);
}

SEC("tracepoint/syscalls/sys_enter_sendmsg")
int tp_enter_sendmsg(struct trace_event_raw_sys_enter *ctx)
{
	struct user_msghdr msg;

	/* Cheap test first: the msghdr is read only for targets. */
	if (!is_target(bpf_get_current_pid_tgid()))
		return 0;
	if (bpf_probe_read_user(&msg, sizeof(msg), (void *)ctx->args[1]))
		return 0;
	return on_enter((int)ctx->args[0], (__u64)msg.msg_iov, msg.msg_iovlen, WDBTAP_SYS_SENDMSG, 1);
}

SEC("tracepoint/syscalls/sys_exit_sendmsg")
int tp_exit_sendmsg(struct trace_event_raw_sys_exit *ctx)
{
	return on_exit(ctx, ctx->ret, WDBTAP_SYS_SENDMSG);
}

/*
 * The daemon id of the image this task just exec'd: its executable (the file
 * the kernel mapped, symlinks resolved, not the path text given to execve)
 * must be in one of this home's executable directories, under a daemon's name
 * unless that directory makes every file a target. 0: not a target.
 */
static __always_inline __u32 exec_daemon(void)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct dentry *d = BPF_CORE_READ(task, mm, exe_file, f_path.dentry);
	char name[WDBTAP_NAME_LEN] = {};
	struct wdbtap_fsid dir;
	__u32 *any, *id, len;

	if (!d)
		return 0;
	parent_of(d, &dir);
	any = bpf_map_lookup_elem(&exe_dirs, &dir);
	if (!any)
		return 0;
	if (*any)
		return *any;
	len = BPF_CORE_READ(d, d_name.len);
	if (len == 0 || len >= WDBTAP_NAME_LEN)
		return 0;
	if (bpf_probe_read_kernel(name, len & (WDBTAP_NAME_LEN - 1), BPF_CORE_READ(d, d_name.name)))
		return 0;
	id = bpf_map_lookup_elem(&target_names, name);
	return id ? *id : 0;
}

/* A wazuh-db thread read from a socket: when (see read_at). Every recvfrom of the machine pays the
 * mark's test, a target's a second array load. */
SEC("tracepoint/syscalls/sys_exit_recvfrom")
int tp_exit_recvfrom(struct trace_event_raw_sys_exit *ctx)
{
	__u32 daemon;
	__u32 *server;
	__u64 *at;

	if (ctx->ret <= 0)
		return 0;
	daemon = target_of(bpf_get_current_pid_tgid());
	if (!daemon)
		return 0;
	server = bpf_map_lookup_elem(&server_daemons, &daemon);
	if (!server || !*server)
		return 0;
	at = bpf_task_storage_get(&read_at, bpf_get_current_task_btf(), 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (at)
		*at = bpf_ktime_get_ns();
	return 0;
}

/* A target daemon started (or restarted by wazuh-control): follow it from its first syscall. */
SEC("tracepoint/sched/sched_process_exec")
int tp_exec(struct trace_event_raw_sched_process_exec *ctx)
{
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	__u32 old = BPF_CORE_READ(ctx, old_pid);
	__u32 daemon = exec_daemon();

	/*
	 * A thread other than the leader exec'd: it took the process's id (de_thread), and its own
	 * thread id, marked when it was created (tp_fork), names no task any more. No exit comes for
	 * that id to clear it: left, the next process given it was a target.
	 */
	if (old != tgid && is_target((__u64)old << 32))
		set_target(old, 0);
	if (!daemon) {
		/* exec replaces a target's image: it is a target no more */
		if (is_target((__u64)tgid << 32))
			set_target(tgid, 0);
		return 0;
	}
	set_target(tgid, daemon);
	count(WDBTAP_C_TARGETS_EXEC);
	return 0;
}

/* Daemons fork to go to the background: the child of a target is a target. */
SEC("tracepoint/sched/sched_process_fork")
int tp_fork(struct trace_event_raw_sched_process_fork *ctx)
{
	__u32 daemon = target_of(bpf_get_current_pid_tgid());
	__u32 child = BPF_CORE_READ(ctx, child_pid);

	if (daemon)
		set_target(child, daemon);
	return 0;
}

SEC("tracepoint/sched/sched_process_exit")
int tp_exit_task(void *ctx)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	__u32 pid = (__u32)pid_tgid, tgid = pid_tgid >> 32;
	struct task_struct *task = bpf_get_current_task_btf();

	/* A thread's id was added at fork when it could have been a process: removed as it ends. */
	if (pid != tgid && is_target((__u64)pid << 32))
		set_target(pid, 0);
	/*
	 * The process only once its last thread ends (do_exit counts signal->live down before this
	 * tracepoint): the leader may end first (main() ending in pthread_exit) while the others go on
	 * writing, and the rescan cannot mark it again — a zombie leader's /proc/<pid>/exe reads ENOENT.
	 */
	if (BPF_CORE_READ(task, signal, live.counter) == 0 && is_target((__u64)tgid << 32))
		set_target(tgid, 0);
	return 0;
}
