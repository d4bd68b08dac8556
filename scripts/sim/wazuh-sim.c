/*
 * wazuh-sim: a stand-in for the Wazuh manager daemons (4.x, and 5.x's names), for tests of the tap.
 *
 * The tap filters by comm and by the wdb socket path and decodes exact bytes, so
 * this program reproduces what WAZUH-PROTOCOL.md records of a real 4.7.5 manager:
 * the names (one binary copied under each daemon name, role from argv[0]), the
 * relative socket path `queue/db/wdb`, one sendto() per frame carrying header and
 * payload, the 4.x trailing NUL on requests and none on replies, and the same
 * look-alike traffic (datagrams to queue/sockets/queue, TCP frames to agents)
 * that the tap must ignore. The `wazuh-manager-*` names behave as 5.x: sorted
 * JSON keys, no NUL, one sendto(MSG_NOSIGNAL) per frame on a non-blocking socket;
 * `python3` (wazuh-clusterd) sends no NUL either. wazuh-db keeps the agent table's
 * state as the real statements do, answers from a pool of worker threads (one
 * connection's successive requests in different threads), each reply one sendto()
 * with flags 0. --split cuts client frames into several writes, for reassembly tests. The --bg-*
 * options (SimManager's `background`) add the manager's own traffic of §2: remoted's and analysisd's
 * polls of the active agents, remoted's get-distinct-groups and its 4 worker connections, monitord's
 * get-agent-info after a sweep's hits.
 *
 * Build: gcc -std=c11 -O2 -Wall -Wextra -pthread -o wazuh-sim wazuh-sim.c
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <semaphore.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define WDB_PATH "queue/db/wdb"
#define QUEUE_PATH "queue/sockets/queue"
/* wazuh-db accepts up to OS_MAXSTR-ish payloads; anything bigger is hostile. */
#define MAX_FRAME 65536
/* Enough for the 100,000-agent benchmark (make bench); rows are touched only when used. */
#define MAX_AGENTS 131072
/* Agent ids below this are found through a direct index, not a scan. */
#define ID_INDEX 262144

static const char *g_home;
static int g_no_reset;
static const char *g_state; /* wazuh-db --state FILE: the table kept across a restart (global.db's part) */
/* wazuh-db: rows per list reply before answering `due`; a reply also ends before 64 KiB (the real one
 * pages when its response buffer is full). */
static long g_page_rows = 100000;
/* Clients: 5.x behaviour (nlohmann::json sorted keys, no NUL, a non-blocking socket written with
 * MSG_NOSIGNAL, an unsent tail resent). Set by the `wazuh-manager-*` names or --5x. */
static int g_5x;
/* Clients: how a request frame is cut into writes (--split). Real daemons write a frame whole (4.x: one
 * blocking send; 5.x: one non-blocking send, and only an unsent tail goes in another write), so `none` is
 * the default; the others are for tests of reassembly: `halves` the header alone, then the payload in two
 * halves; `random:<seed>` one to three cuts anywhere in the frame (inside the header too), from a PRNG
 * seeded with <seed>, so a run can be repeated. */
enum { SPLIT_NONE, SPLIT_HALVES, SPLIT_RANDOM };
/* Clients: whether a request carries the trailing NUL (WAZUH-PROTOCOL §1: 4.x C daemons count and send
 * one; Python clients — wazuh-clusterd and the API, comm python3, or --python — and 5.x send none). */
static int g_nul = 1;
static int g_split = SPLIT_NONE;
static uint64_t g_split_seed;
/* Which syscall a client's wdb frames go through (--syscall): Wazuh's C daemons use
 * sendto; other clients may write, writev or sendmsg. writev and sendmsg carry the
 * header and the payload as two iovecs, as a client assembling a frame would. */
enum { SYS_SENDTO, SYS_WRITE, SYS_WRITEV, SYS_SENDMSG };
static int g_syscall = SYS_SENDTO;
/* The manager's background traffic (WAZUH-PROTOCOL §2, "Seen on a running 4.7.5 manager"), off unless
 * asked for (SimManager's `background`): --bg-poll-ms (remoted: its poll of the active agents on a
 * long-lived connection of its own, while it tracks an agent; analysisd: the same poll on its own
 * connection), --bg-groups-ms (remoted: a short connection for get-distinct-groups), --bg-workers
 * (remoted: each agent message from one of 4 worker threads, each with its own long-lived connection,
 * opened on first use), --bg-monitord (monitord: a sweep's hits followed by get-agent-info <id>). */
static long g_bg_poll_ms, g_bg_groups_ms;
static int g_bg_workers, g_bg_monitord;

static void die(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "wazuh-sim: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    exit(2);
}

static void mkdir_p(const char *path) {
    char buf[512];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *p = buf + 1; *p; p++) {
        if (*p == '/') {
            *p = 0;
            mkdir(buf, 0770);
            *p = '/';
        }
    }
    mkdir(buf, 0770);
}

static int send_all_once(int fd, const void *buf, size_t len, int flags) {
    /* One sendto per frame, as Wazuh does: the tap relies on "one write, one frame"
     * for 4.x traffic. A short write on a blocking UNIX stream socket does not
     * happen below the socket buffer size, so a single call is faithful. */
    ssize_t n;
    size_t head = len < 4 ? len : 4;
    struct iovec iov[2] = {{(void *)buf, head}, {(char *)buf + head, len - head}};
    struct msghdr msg = {.msg_iov = iov, .msg_iovlen = 2};
    switch (g_syscall) {
    case SYS_WRITE: n = write(fd, buf, len); break;
    case SYS_WRITEV: n = writev(fd, iov, 2); break;
    case SYS_SENDMSG: n = sendmsg(fd, &msg, flags); break;
    default: n = sendto(fd, buf, len, flags, NULL, 0); break;
    }
    return n == (ssize_t)len ? 0 : -1;
}

static int recv_exact(int fd, void *buf, size_t len) {
    size_t got = 0;
    while (got < len) {
        ssize_t n = recv(fd, (char *)buf + got, len - got, 0);
        if (n == 0) return -1;
        if (n < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) { /* a 5.x client's non-blocking socket: wait */
                struct pollfd pfd = {.fd = fd, .events = POLLIN};
                (void)poll(&pfd, 1, -1);
                continue;
            }
            return -1;
        }
        got += (size_t)n;
    }
    return 0;
}

static void put_le32(unsigned char *p, uint32_t v) {
    p[0] = v & 0xff; p[1] = (v >> 8) & 0xff; p[2] = (v >> 16) & 0xff; p[3] = (v >> 24) & 0xff;
}

static uint32_t get_le32(const unsigned char *p) {
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

/* ------------------------------------------------------------------------ */
/* Minimal JSON: a validator and top-level member lookup.                   */
/* Enough for the compact objects cJSON prints; bounded by [p, e) always.   */

static const char *j_ws(const char *p, const char *e) {
    while (p < e && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')) p++;
    return p;
}

static const char *j_string(const char *p, const char *e) {
    if (p >= e || *p != '"') return NULL;
    p++;
    while (p < e) {
        unsigned char c = (unsigned char)*p;
        if (c == '"') return p + 1;
        if (c < 0x20) return NULL;
        if (c == '\\') {
            p++;
            if (p >= e) return NULL;
            if (*p == 'u') {
                for (int i = 1; i <= 4; i++)
                    if (p + i >= e || !strchr("0123456789abcdefABCDEF", p[i]) || p[i] == 0) return NULL;
                p += 5;
                continue;
            }
            if (!strchr("\"\\/bfnrt", *p) || *p == 0) return NULL;
        }
        p++;
    }
    return NULL;
}

static const char *j_number(const char *p, const char *e) {
    const char *s = p;
    if (p < e && *p == '-') p++;
    if (p >= e || *p < '0' || *p > '9') return NULL;
    while (p < e && *p >= '0' && *p <= '9') p++;
    if (p < e && *p == '.') {
        p++;
        if (p >= e || *p < '0' || *p > '9') return NULL;
        while (p < e && *p >= '0' && *p <= '9') p++;
    }
    if (p < e && (*p == 'e' || *p == 'E')) {
        p++;
        if (p < e && (*p == '+' || *p == '-')) p++;
        if (p >= e || *p < '0' || *p > '9') return NULL;
        while (p < e && *p >= '0' && *p <= '9') p++;
    }
    return p > s ? p : NULL;
}

static const char *j_value(const char *p, const char *e, int depth);

static const char *j_object(const char *p, const char *e, int depth) {
    if (depth > 32 || p >= e || *p != '{') return NULL;
    p = j_ws(p + 1, e);
    if (p < e && *p == '}') return p + 1;
    for (;;) {
        p = j_string(j_ws(p, e), e);
        if (!p) return NULL;
        p = j_ws(p, e);
        if (p >= e || *p != ':') return NULL;
        p = j_value(j_ws(p + 1, e), e, depth + 1);
        if (!p) return NULL;
        p = j_ws(p, e);
        if (p >= e) return NULL;
        if (*p == '}') return p + 1;
        if (*p != ',') return NULL;
        p++;
    }
}

static const char *j_array(const char *p, const char *e, int depth) {
    if (depth > 32 || p >= e || *p != '[') return NULL;
    p = j_ws(p + 1, e);
    if (p < e && *p == ']') return p + 1;
    for (;;) {
        p = j_value(j_ws(p, e), e, depth + 1);
        if (!p) return NULL;
        p = j_ws(p, e);
        if (p >= e) return NULL;
        if (*p == ']') return p + 1;
        if (*p != ',') return NULL;
        p++;
    }
}

static const char *j_lit(const char *p, const char *e, const char *lit) {
    size_t n = strlen(lit);
    if ((size_t)(e - p) < n || memcmp(p, lit, n) != 0) return NULL;
    return p + n;
}

static const char *j_value(const char *p, const char *e, int depth) {
    if (p >= e) return NULL;
    switch (*p) {
    case '{': return j_object(p, e, depth);
    case '[': return j_array(p, e, depth);
    case '"': return j_string(p, e);
    case 't': return j_lit(p, e, "true");
    case 'f': return j_lit(p, e, "false");
    case 'n': return j_lit(p, e, "null");
    default: return j_number(p, e);
    }
}

/* The whole text must be exactly one object (cJSON_Parse rejects trailing junk). */
static int json_valid_object(const char *s) {
    const char *e = s + strlen(s);
    const char *p = j_object(j_ws(s, e), e, 0);
    return p && j_ws(p, e) == e;
}

/* Finds a top-level member of an object already checked by json_valid_object. */
static const char *json_find(const char *s, const char *key, const char **vend) {
    const char *e = s + strlen(s);
    const char *p = j_ws(s, e) + 1;
    size_t klen = strlen(key);
    p = j_ws(p, e);
    if (p < e && *p == '}') return NULL;
    while (p < e) {
        const char *ks = p + 1;
        const char *ke = j_string(p, e);
        if (!ke) return NULL;
        p = j_ws(j_ws(ke, e) + 1, e);
        const char *ve = j_value(p, e, 1);
        if (!ve) return NULL;
        if ((size_t)(ke - 1 - ks) == klen && memcmp(ks, key, klen) == 0) {
            *vend = ve;
            return p;
        }
        p = j_ws(ve, e);
        if (p >= e || *p != ',') return NULL;
        p = j_ws(p + 1, e);
    }
    return NULL;
}

static int json_int(const char *s, const char *key, long long *out) {
    const char *ve;
    const char *v = json_find(s, key, &ve);
    if (!v || !(*v == '-' || (*v >= '0' && *v <= '9'))) return 0;
    char tmp[32];
    size_t n = (size_t)(ve - v);
    if (n >= sizeof tmp) return 0;
    memcpy(tmp, v, n);
    tmp[n] = 0;
    char *end;
    errno = 0;
    long long x = strtoll(tmp, &end, 10);
    if (errno || *end) return 0;
    *out = x;
    return 1;
}

/* Decodes a string member into out (truncated to cap-1). Non-ASCII \u escapes
 * become '?': the sim only echoes these values back, it never interprets them. */
static int json_str(const char *s, const char *key, char *out, size_t cap) {
    const char *ve;
    const char *v = json_find(s, key, &ve);
    if (!v || *v != '"' || cap == 0) return 0;
    size_t o = 0;
    for (const char *p = v + 1; p < ve - 1; p++) {
        char c = *p;
        if (c == '\\') {
            p++;
            switch (*p) {
            case 'n': c = '\n'; break;
            case 't': c = '\t'; break;
            case 'r': c = '\r'; break;
            case 'b': c = '\b'; break;
            case 'f': c = '\f'; break;
            case 'u': {
                char hex[5] = {p[1], p[2], p[3], p[4], 0};
                long cp = strtol(hex, NULL, 16);
                c = (cp > 0 && cp < 0x80) ? (char)cp : '?';
                p += 4;
                break;
            }
            default: c = *p; break;
            }
        }
        if (o + 1 < cap) out[o++] = c;
    }
    out[o] = 0;
    return 1;
}

/* ------------------------------------------------------------------------ */
/* Growable output buffer for replies.                                      */

struct sb {
    char *b;
    size_t len, cap;
};

static void sb_add(struct sb *s, const char *fmt, ...) {
    va_list ap;
    for (;;) {
        size_t room = s->cap - s->len;
        va_start(ap, fmt);
        int n = vsnprintf(s->b + s->len, room, fmt, ap);
        va_end(ap);
        if (n < 0) return;
        if ((size_t)n < room) {
            s->len += (size_t)n;
            return;
        }
        size_t nc = s->cap * 2 + (size_t)n;
        char *nb = realloc(s->b, nc);
        if (!nb) return;
        s->b = nb;
        s->cap = nc;
    }
}

static void sb_json_str(struct sb *s, const char *v) {
    sb_add(s, "\"");
    for (const unsigned char *p = (const unsigned char *)v; *p; p++) {
        if (*p == '"' || *p == '\\') sb_add(s, "\\%c", *p);
        else if (*p == '\n') sb_add(s, "\\n");
        else if (*p < 0x20) sb_add(s, "\\u%04x", *p);
        else sb_add(s, "%c", *p);
    }
    sb_add(s, "\"");
}

/* ------------------------------------------------------------------------ */
/* wazuh-db                                                                  */

struct agent {
    int used;
    long long id;
    char name[128], ip[64], register_ip[64], internal_key[65];
    char version[64], config_sum[64], merged_sum[64], manager_host[128], node_name[128];
    char os_name[128], os_version[64], os_major[32], os_codename[64], os_platform[64];
    char os_uname[256], os_arch[64];
    char connection_status[24], sync_status[32], group_config_status[24];
    long long date_add, last_keepalive, disconnection_time;
    long long status_code;
    char group[128];   /* `group` column: comma-separated names; empty = NULL (registered, never connected) */
    char labels[1024]; /* the labels table's rows of this agent, as update-agent-data sends them: key:value\n… */
};

static struct agent g_agents[MAX_AGENTS];
static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;

static struct agent *g_index[ID_INDEX];
static int g_high; /* rows below this have been used at some time */

static struct agent *agent_get(long long id) {
    if (id >= 0 && id < ID_INDEX) {
        struct agent *a = g_index[id];
        return a && a->used && a->id == id ? a : NULL;
    }
    for (int i = 0; i < g_high; i++)
        if (g_agents[i].used && g_agents[i].id == id) return &g_agents[i];
    return NULL;
}

static void fake_key(long long id, char out[65]) {
    uint64_t x = (uint64_t)id * 0x9e3779b97f4a7c15ULL + 0x5eed;
    for (int i = 0; i < 4; i++) {
        x += 0x9e3779b97f4a7c15ULL;
        uint64_t z = x;
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
        z ^= z >> 31;
        snprintf(out + i * 16, 17, "%016llx", (unsigned long long)z);
    }
}

static struct agent *agent_new(long long id) {
    /* A fresh row at the high-water mark first, so a large table fills in O(1) per agent. */
    for (int i = g_high < MAX_AGENTS ? g_high : 0; i < MAX_AGENTS; i++) {
        if (!g_agents[i].used) {
            struct agent *a = &g_agents[i];
            if (i >= g_high) g_high = i + 1;
            if (id >= 0 && id < ID_INDEX) g_index[id] = a;
            memset(a, 0, sizeof *a);
            a->used = 1;
            a->id = id;
            a->date_add = (long long)time(NULL);
            snprintf(a->connection_status, sizeof a->connection_status, "never_connected");
            snprintf(a->sync_status, sizeof a->sync_status, "synced");
            snprintf(a->group_config_status, sizeof a->group_config_status, "not synced");
            fake_key(id, a->internal_key);
            return a;
        }
    }
    return NULL;
}

/* Ids delete-agent removed (below ID_INDEX): an update of one touches no row, as the real UPDATE …
 * WHERE id = ?, until insert-agent registers that id again. */
static unsigned char g_deleted[ID_INDEX / 8];
static int was_deleted(long long id) {
    return id >= 0 && id < ID_INDEX && (g_deleted[id / 8] >> (id % 8)) & 1;
}
static void mark_deleted(long long id, int on) {
    if (id < 0 || id >= ID_INDEX) return;
    if (on) g_deleted[id / 8] |= (unsigned char)(1u << (id % 8));
    else g_deleted[id / 8] &= (unsigned char)~(1u << (id % 8));
}

/* Real wazuh-db runs UPDATE ... WHERE id = ?, which is a no-op for unknown ids. The sim creates the row
 * of an id it never saw, so tests need not register agents first; a removed agent's id stays removed
 * (*gone set, NULL): a keepalive does not bring it back. */
static struct agent *agent_upsert(long long id, int *gone) {
    struct agent *a = agent_get(id);
    *gone = !a && was_deleted(id);
    return a || *gone ? a : agent_new(id);
}

#define SETSTR(field, json, key) (void)json_str(json, key, a->field, sizeof a->field)

/* Seeds the table like a persistent global.db: the manager (id 0) and every
 * live entry of etc/client.keys, never_connected. */
static void seed_agents(void) {
    struct agent *a = agent_new(0);
    snprintf(a->name, sizeof a->name, "vm");
    snprintf(a->ip, sizeof a->ip, "127.0.0.1");
    snprintf(a->register_ip, sizeof a->register_ip, "127.0.0.1");
    snprintf(a->version, sizeof a->version, "Wazuh v4.7.5");
    snprintf(a->manager_host, sizeof a->manager_host, "vm");
    snprintf(a->node_name, sizeof a->node_name, "node01");
    snprintf(a->connection_status, sizeof a->connection_status, "active");
    snprintf(a->group_config_status, sizeof a->group_config_status, "synced");
    a->last_keepalive = 253402300799LL; /* what Wazuh stores for the manager */

    FILE *f = fopen("etc/client.keys", "r");
    if (!f) return;
    char line[1024];
    while (fgets(line, sizeof line, f)) {
        char *save = NULL;
        char *sid = strtok_r(line, " \t\r\n", &save);
        char *name = strtok_r(NULL, " \t\r\n", &save);
        char *ip = strtok_r(NULL, " \t\r\n", &save);
        char *key = strtok_r(NULL, " \t\r\n", &save);
        if (!sid || !name || !ip || name[0] == '!' || name[0] == '#') continue;
        char *end;
        long long id = strtoll(sid, &end, 10);
        if (*end || id <= 0 || agent_get(id)) continue;
        if (!(a = agent_new(id))) break;
        snprintf(a->name, sizeof a->name, "%s", name);
        snprintf(a->ip, sizeof a->ip, "%s", ip);
        snprintf(a->register_ip, sizeof a->register_ip, "%s", ip);
        if (key && strlen(key) == 64 && strspn(key, "0123456789abcdefABCDEF") == 64)
            snprintf(a->internal_key, sizeof a->internal_key, "%s", key);
    }
    fclose(f);
}

/* group_hash: the one the document shows for `default`; another list's, a stand-in (FNV-1a). */
static const char *group_hash(const char *groups) {
    static __thread char h[9];
    if (!strcmp(groups, "default")) return "37a8eec1";
    uint32_t x = 2166136261u;
    for (const unsigned char *p = (const unsigned char *)groups; *p; p++) x = (x ^ *p) * 16777619u;
    snprintf(h, sizeof h, "%08x", x);
    return h;
}

/* The groups wazuh-db knows (table `group`): `default` from the install, then every name set on an agent. */
static char g_groups[64][64] = {"default"};
static int g_ngroups = 1;

static int group_id(const char *name) {
    for (int i = 0; i < g_ngroups; i++)
        if (!strcmp(g_groups[i], name)) return i + 1;
    return 0;
}

static void group_add(const char *name) {
    if (!group_id(name) && g_ngroups < 64 && strlen(name) < sizeof g_groups[0]) snprintf(g_groups[g_ngroups++], sizeof g_groups[0], "%s", name);
}

/* An agent's labels as get-labels rows, ordered by key (the table's primary key is (id, key)). */
static void labels_json(struct sb *o, const struct agent *a) {
    char copy[sizeof a->labels];
    const char *keys[64], *vals[64];
    int n = 0;
    snprintf(copy, sizeof copy, "%s", a->labels);
    char *save = NULL;
    for (char *l = strtok_r(copy, "\n", &save); l && n < 64; l = strtok_r(NULL, "\n", &save)) {
        char *c = strchr(l, ':');
        if (!c) continue; /* wazuh-db skips a label without ':' */
        *c = 0;
        int at = n++;
        while (at > 0 && strcmp(keys[at - 1], l) > 0) {
            keys[at] = keys[at - 1];
            vals[at] = vals[at - 1];
            at--;
        }
        keys[at] = l;
        vals[at] = c + 1;
    }
    sb_add(o, "[");
    for (int i = 0; i < n; i++) {
        sb_add(o, "%s{\"id\":%lld,\"key\":", i ? "," : "", a->id);
        sb_json_str(o, keys[i]);
        sb_add(o, ",\"value\":");
        sb_json_str(o, vals[i]);
        sb_add(o, "}");
    }
    sb_add(o, "]");
}

static void row_json(struct sb *o, const struct agent *a) {
#define OPT_STR(k, v) do { if ((v)[0]) { sb_add(o, ",\"" k "\":"); sb_json_str(o, v); } } while (0)
    sb_add(o, "{\"id\":%lld", a->id);
    OPT_STR("name", a->name);
    OPT_STR("ip", a->ip);
    OPT_STR("register_ip", a->register_ip);
    OPT_STR("internal_key", a->internal_key);
    OPT_STR("os_name", a->os_name);
    OPT_STR("os_version", a->os_version);
    OPT_STR("os_major", a->os_major);
    OPT_STR("os_codename", a->os_codename);
    OPT_STR("os_platform", a->os_platform);
    OPT_STR("os_uname", a->os_uname);
    OPT_STR("os_arch", a->os_arch);
    OPT_STR("version", a->version);
    OPT_STR("config_sum", a->config_sum);
    OPT_STR("merged_sum", a->merged_sum);
    OPT_STR("manager_host", a->manager_host);
    OPT_STR("node_name", a->node_name);
    sb_add(o, ",\"date_add\":%lld", a->date_add);
    if (a->last_keepalive) sb_add(o, ",\"last_keepalive\":%lld", a->last_keepalive);
    if (a->group[0]) {
        sb_add(o, ",\"group\":");
        sb_json_str(o, a->group);
        sb_add(o, ",\"group_hash\":\"%s\"", group_hash(a->group));
    }
    sb_add(o, ",\"group_sync_status\":\"synced\"");
    OPT_STR("sync_status", a->sync_status);
    OPT_STR("connection_status", a->connection_status);
    sb_add(o, ",\"disconnection_time\":%lld", a->disconnection_time);
    OPT_STR("group_config_status", a->group_config_status);
    sb_add(o, ",\"status_code\":%lld}", a->status_code);
#undef OPT_STR
}

static int parse_ll(const char *s, long long *out) {
    char *end;
    if (!s || !*s) return 0;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || (*end && *end != ' ')) return 0;
    *out = v;
    return 1;
}

static int is_live(const struct agent *a) {
    return !strcmp(a->connection_status, "active") || !strcmp(a->connection_status, "pending");
}

static void set_disconnected(struct agent *a, long long code, long long now) {
    snprintf(a->connection_status, sizeof a->connection_status, "disconnected");
    a->status_code = code;
    a->disconnection_time = now;
}

static int agent_cmp(const void *x, const void *y) {
    const struct agent *a = *(struct agent *const *)x, *b = *(struct agent *const *)y;
    return a->id < b->id ? -1 : a->id > b->id;
}

/* Answers one query (NUL-terminated text) into o. Caller holds no lock. */
static void wdb_dispatch(const char *q, struct sb *o) {
    long long now = (long long)time(NULL);
    if (!strncmp(q, "agent ", 6)) {
        sb_add(o, "ok");
        return;
    }
    if (!strncmp(q, "task ", 5)) {
        /* modulesd's task manager (§9): set_timeout answers the time its interval ends; the others ok. */
        long long now_arg = 0, interval = 0;
        const char *j = strchr(q + 5, ' ');
        if (!strncmp(q + 5, "set_timeout ", 12) && j && json_valid_object(j + 1) && json_int(j + 1, "now", &now_arg) &&
            json_int(j + 1, "interval", &interval))
            sb_add(o, "ok {\"error\":0,\"timestamp\":%lld}", now_arg + interval);
        else
            sb_add(o, "ok {\"error\":0}");
        return;
    }
    if (strncmp(q, "global ", 7) != 0) goto syntax;

    const char *cmd = q + 7;
    const char *sp = strchr(cmd, ' ');
    size_t clen = sp ? (size_t)(sp - cmd) : strlen(cmd);
    const char *arg = sp ? sp + 1 : "";
#define IS(name) (clen == strlen(name) && !memcmp(cmd, name, clen))

    int json_cmd = IS("update-keepalive") || IS("update-agent-data") ||
                   IS("update-connection-status") || IS("update-status-code") || IS("insert-agent");
    if (json_cmd) {
        long long id;
        if (!json_valid_object(arg)) {
            sb_add(o, "err Invalid JSON syntax, near '%.20s'", arg);
            return;
        }
        if (!json_int(arg, "id", &id)) {
            sb_add(o, "err Invalid JSON data, near '%.20s'", arg);
            return;
        }
        pthread_mutex_lock(&g_lock);
        struct agent *a;
        int gone = 0;
        if (IS("insert-agent")) {
            if (agent_get(id)) {
                pthread_mutex_unlock(&g_lock);
                sb_add(o, "err Cannot execute Global database query; UNIQUE constraint failed: agent.id");
                return;
            }
            a = agent_new(id);
            if (a) {
                mark_deleted(id, 0);
                SETSTR(name, arg, "name");
                SETSTR(ip, arg, "ip");
                SETSTR(register_ip, arg, "register_ip");
                SETSTR(internal_key, arg, "internal_key");
                SETSTR(group, arg, "groups"); /* authd -G; none: NULL until remoted sets it at the first connection */
                (void)json_int(arg, "date_add", &a->date_add);
            }
        } else if ((a = agent_upsert(id, &gone)) != NULL) {
            char cs[24] = "";
            (void)json_str(arg, "connection_status", cs, sizeof cs);
            if (cs[0]) snprintf(a->connection_status, sizeof a->connection_status, "%s", cs);
            SETSTR(sync_status, arg, "sync_status");
            if (IS("update-keepalive")) {
                /* WDB_STMT_GLOBAL_UPDATE_AGENT_KEEPALIVE: the only update that clears the reason and the
                 * disconnection time (`disconnection_time = 0, status_code = 0`). */
                a->last_keepalive = now;
                a->disconnection_time = 0;
                a->status_code = 0;
            }
            if (IS("update-agent-data")) {
                /* WDB_STMT_GLOBAL_UPDATE_AGENT_VERSION(_IP): os_*, version, config_sum, merged_sum,
                 * manager_host, node_name, last_keepalive, [ip], connection_status, sync_status and
                 * group_config_status; neither status_code nor disconnection_time (an agent that comes back
                 * with a keepalive keeps the reason it went away for). A member the request leaves out is
                 * bound as NULL (here: empty, and left out of get-agent-info rows), but for ip (its own
                 * statement without it) and, sim's choices where the document is silent, node_name (5.x
                 * sends none; a standalone manager is node01) and the NOT NULL columns connection_status
                 * and group_config_status (kept, where a 4.x wazuh-db would answer a constraint err). */
                a->last_keepalive = id == 0 ? 253402300799LL : now;
                if (!json_str(arg, "sync_status", a->sync_status, sizeof a->sync_status))
                    snprintf(a->sync_status, sizeof a->sync_status, "synced");
#define SETSTR_OR_NULL(field, key) do { if (!json_str(arg, key, a->field, sizeof a->field)) a->field[0] = 0; } while (0)
                SETSTR_OR_NULL(version, "version");
                SETSTR_OR_NULL(config_sum, "config_sum");
                SETSTR_OR_NULL(merged_sum, "merged_sum");
                SETSTR_OR_NULL(manager_host, "manager_host");
                SETSTR_OR_NULL(os_name, "os_name");
                SETSTR_OR_NULL(os_version, "os_version");
                SETSTR_OR_NULL(os_major, "os_major");
                SETSTR_OR_NULL(os_codename, "os_codename");
                SETSTR_OR_NULL(os_platform, "os_platform");
                SETSTR_OR_NULL(os_uname, "os_uname");
                SETSTR_OR_NULL(os_arch, "os_arch");
#undef SETSTR_OR_NULL
                if (!json_str(arg, "node_name", a->node_name, sizeof a->node_name))
                    snprintf(a->node_name, sizeof a->node_name, "node01");
                SETSTR(ip, arg, "agent_ip");
                SETSTR(group_config_status, arg, "group_config_status");
                /* The agent's labels are replaced by the request's, or removed when it sends none. */
                if (!json_str(arg, "labels", a->labels, sizeof a->labels)) a->labels[0] = 0;
            }
            if (IS("update-connection-status")) {
                /* disconnection_time: now for disconnected, else 0 (wdb_global_update_agent_connection_status). */
                (void)json_int(arg, "status_code", &a->status_code);
                a->disconnection_time = !strcmp(a->connection_status, "disconnected") ? now : 0;
            }
            if (IS("update-status-code")) (void)json_int(arg, "status_code", &a->status_code);
            if (IS("update-status-code")) SETSTR(version, arg, "version");
        }
        pthread_mutex_unlock(&g_lock);
        if (!a && !gone) sb_add(o, "err Cannot execute Global database query; table full");
        else sb_add(o, "ok");
        return;
    }

    if (IS("reset-agents-connection")) {
        /* reset-agents-connection <sync_status>: the agents' sync_status becomes the argument (a worker's
         * syncreq), as WDB_STMT_GLOBAL_RESET_CONNECTION_STATUS sets it. */
        char sync[32] = "";
        if (*arg && strlen(arg) < sizeof sync) snprintf(sync, sizeof sync, "%s", arg);
        pthread_mutex_lock(&g_lock);
        for (int i = 0; i < g_high; i++)
            if (g_agents[i].used && g_agents[i].id != 0 && is_live(&g_agents[i])) {
                set_disconnected(&g_agents[i], 5, now);
                if (sync[0]) snprintf(g_agents[i].sync_status, sizeof g_agents[i].sync_status, "%s", sync);
            }
        pthread_mutex_unlock(&g_lock);
        sb_add(o, "ok");
        return;
    }
    if (IS("get-distinct-groups")) {
        sb_add(o, "ok [{\"group\":\"default\",\"group_hash\":\"37a8eec1\"}]");
        return;
    }
    if (IS("select-agent-group")) {
        /* SELECT `group` FROM agent WHERE id = ?: no row `ok []`; a NULL group (never connected) `ok [{}]`. */
        long long id;
        if (!parse_ll(arg, &id)) goto syntax;
        pthread_mutex_lock(&g_lock);
        struct agent *a = agent_get(id);
        if (!a) sb_add(o, "ok []");
        else if (!a->group[0]) sb_add(o, "ok [{}]");
        else {
            sb_add(o, "ok [{\"group\":");
            sb_json_str(o, a->group);
            sb_add(o, "}]");
        }
        pthread_mutex_unlock(&g_lock);
        return;
    }
    if (IS("set-agent-groups")) {
        /* {"mode":"empty_only|override|append|remove","sync_status":…,"data":[{"id":N,"groups":["g",…]},…]}
         * (remoted at an agent's first connection: empty_only, default). Unknown ids are passed over. */
        char mode[16] = "";
        const char *dend, *data;
        if (!json_valid_object(arg)) {
            sb_add(o, "err Invalid JSON syntax, near '%.20s'", arg);
            return;
        }
        if (!json_str(arg, "mode", mode, sizeof mode) || !(data = json_find(arg, "data", &dend)) || *data != '[' ||
            (strcmp(mode, "empty_only") && strcmp(mode, "override") && strcmp(mode, "append") && strcmp(mode, "remove"))) {
            sb_add(o, "err Invalid JSON data, near '%.20s'", arg);
            return;
        }
        pthread_mutex_lock(&g_lock);
        for (const char *p = j_ws(data + 1, dend); p < dend && *p == '{';) {
            const char *oe = j_object(p, dend, 1);
            if (!oe) break;
            char obj[4096];
            long long id;
            size_t on = (size_t)(oe - p);
            struct agent *a;
            if (on < sizeof obj) {
                memcpy(obj, p, on);
                obj[on] = 0;
                const char *gend, *g = json_find(obj, "groups", &gend);
                if (json_int(obj, "id", &id) && (a = agent_get(id)) != NULL && g && *g == '[') {
                    char list[sizeof a->group] = "";
                    if (!strcmp(mode, "append") || !strcmp(mode, "remove")) snprintf(list, sizeof list, "%s", a->group);
                    for (const char *q = j_ws(g + 1, gend); q < gend && *q == '"';) {
                        const char *qe = j_string(q, gend);
                        if (!qe) break;
                        char name[64];
                        size_t nl = (size_t)(qe - q - 2);
                        if (nl < sizeof name) {
                            memcpy(name, q + 1, nl);
                            name[nl] = 0;
                            if (!strcmp(mode, "remove")) {
                                char kept[sizeof a->group] = "", *save = NULL;
                                for (char *t = strtok_r(list, ",", &save); t; t = strtok_r(NULL, ",", &save))
                                    if (strcmp(t, name)) snprintf(kept + strlen(kept), sizeof kept - strlen(kept), "%s%s", kept[0] ? "," : "", t);
                                snprintf(list, sizeof list, "%s", kept);
                            } else {
                                size_t ll = strlen(list);
                                snprintf(list + ll, sizeof list - ll, "%s%s", ll ? "," : "", name);
                                group_add(name);
                            }
                        }
                        q = j_ws(qe, gend);
                        if (q < gend && *q == ',') q = j_ws(q + 1, gend);
                    }
                    if (strcmp(mode, "empty_only") || !a->group[0]) snprintf(a->group, sizeof a->group, "%s", list);
                }
            }
            p = j_ws(oe, dend);
            if (p < dend && *p == ',') p = j_ws(p + 1, dend);
        }
        pthread_mutex_unlock(&g_lock);
        sb_add(o, "ok");
        return;
    }
    if (IS("find-agent")) {
        /* {"name":…,"ip":…}: SELECT id FROM agent WHERE name = ? AND (register_ip = ? OR register_ip LIKE ?||'/_%') */
        char name[128], ip[64];
        if (!json_valid_object(arg)) {
            sb_add(o, "err Invalid JSON syntax, near '%.20s'", arg);
            return;
        }
        if (!json_str(arg, "name", name, sizeof name) || !json_str(arg, "ip", ip, sizeof ip)) {
            sb_add(o, "err Invalid JSON data, near '%.20s'", arg);
            return;
        }
        size_t il = strlen(ip);
        int rows = 0;
        sb_add(o, "ok [");
        pthread_mutex_lock(&g_lock);
        for (int i = 0; i < g_high; i++) {
            struct agent *a = &g_agents[i];
            if (!a->used || strcmp(a->name, name)) continue;
            if (strcmp(a->register_ip, ip) && !(strncmp(a->register_ip, ip, il) == 0 && a->register_ip[il] == '/' && a->register_ip[il + 1])) continue;
            sb_add(o, "%s{\"id\":%lld}", rows++ ? "," : "", a->id);
        }
        pthread_mutex_unlock(&g_lock);
        sb_add(o, "]");
        return;
    }
    if (IS("select-groups")) {
        sb_add(o, "ok [");
        pthread_mutex_lock(&g_lock);
        for (int i = 0; i < g_ngroups; i++) sb_add(o, "%s{\"name\":\"%s\"}", i ? "," : "", g_groups[i]);
        pthread_mutex_unlock(&g_lock);
        sb_add(o, "]");
        return;
    }
    if (IS("find-group")) {
        pthread_mutex_lock(&g_lock);
        int gid = group_id(arg);
        pthread_mutex_unlock(&g_lock);
        if (gid) sb_add(o, "ok [{\"id\":%d}]", gid);
        else sb_add(o, "ok []");
        return;
    }
    if (IS("sync-agent-info-get")) {
        /* [last_id <n>]: a worker's rows to send to the master, those marked syncreq*, each then synced
         * (WDB_STMT_GLOBAL_SYNC_REQ_GET + SYNC_SET), with the agent's labels. */
        long long last_id = 0;
        if (*arg && (strncmp(arg, "last_id ", 8) || !parse_ll(arg + 8, &last_id))) goto syntax;
        static struct agent *sorted_s[MAX_AGENTS];
        pthread_mutex_lock(&g_lock);
        int count = 0;
        for (int i = 0; i < g_high; i++)
            if (g_agents[i].used && g_agents[i].id > last_id && !strncmp(g_agents[i].sync_status, "syncreq", 7)) sorted_s[count++] = &g_agents[i];
        qsort(sorted_s, (size_t)count, sizeof sorted_s[0], agent_cmp);
        struct sb list = {malloc(256), 0, 256};
        if (!list.b) {
            pthread_mutex_unlock(&g_lock);
            sb_add(o, "err Cannot execute Global database query; out of memory");
            return;
        }
        list.b[0] = 0;
        int due = 0;
        for (int i = 0; i < count; i++) {
            struct agent *a = sorted_s[i];
            size_t before = list.len;
            if (i) sb_add(&list, ",");
            sb_add(&list, "{\"id\":%lld,\"name\":", a->id);
            sb_json_str(&list, a->name);
#define SYNC_STR(k, v) do { if ((v)[0]) { sb_add(&list, ",\"" k "\":"); sb_json_str(&list, v); } } while (0)
            SYNC_STR("ip", a->ip);
            SYNC_STR("os_name", a->os_name);
            SYNC_STR("os_version", a->os_version);
            SYNC_STR("os_major", a->os_major);
            SYNC_STR("os_codename", a->os_codename);
            SYNC_STR("os_platform", a->os_platform);
            SYNC_STR("os_uname", a->os_uname);
            SYNC_STR("os_arch", a->os_arch);
            SYNC_STR("version", a->version);
            SYNC_STR("config_sum", a->config_sum);
            SYNC_STR("merged_sum", a->merged_sum);
            SYNC_STR("manager_host", a->manager_host);
            SYNC_STR("node_name", a->node_name);
#undef SYNC_STR
            sb_add(&list, ",\"last_keepalive\":%lld,\"connection_status\":\"%s\",\"disconnection_time\":%lld,"
                   "\"group_config_status\":\"%s\",\"status_code\":%lld,\"labels\":",
                   a->last_keepalive, a->connection_status, a->disconnection_time, a->group_config_status, a->status_code);
            labels_json(&list, a);
            sb_add(&list, "}");
            if (list.len > MAX_FRAME - 512) { /* the reply is full: this row waits for the next page */
                list.len = before;
                list.b[before] = 0;
                due = 1;
                break;
            }
            snprintf(a->sync_status, sizeof a->sync_status, "synced");
        }
        pthread_mutex_unlock(&g_lock);
        sb_add(o, "%s [%s]", due ? "due" : "ok", list.b);
        free(list.b);
        return;
    }
    if (IS("get-agents-by-connection-status") || IS("disconnect-agents") || IS("get-all-agents")) {
        /* get-agents-by-connection-status <last_id> <status> [<node> [<limit>]]
         * disconnect-agents <last_id> <threshold> [<sync_status>]
         * get-all-agents last_id <n>
         * Rows in ascending id order; at most g_page_rows per reply, then `due` (the client asks again
         * from the last id it got), as wazuh-db does when its 64 KiB reply buffer fills up. */
        long long last_id, second = 0;
        char status[24] = "", node[128] = "";
        const char *p2 = NULL;
        if (IS("get-all-agents")) {
            if (strncmp(arg, "last_id ", 8) || !parse_ll(arg + 8, &last_id)) goto syntax;
        } else {
            if (!parse_ll(arg, &last_id) || !(p2 = strchr(arg, ' '))) goto syntax;
            p2++;
            if (IS("disconnect-agents")) {
                if (!parse_ll(p2, &second)) goto syntax;
                const char *p3 = strchr(p2, ' '); /* [<sync_status>]: set on each agent disconnected */
                if (p3 && p3[1] && strlen(p3 + 1) < sizeof status) snprintf(status, sizeof status, "%s", p3 + 1);
            } else {
                size_t n = strcspn(p2, " ");
                if (n == 0 || n >= sizeof status) goto syntax;
                memcpy(status, p2, n);
                status[n] = 0;
                const char *p3 = p2 + n;
                if (*p3 == ' ') {
                    p3++;
                    size_t m = strcspn(p3, " ");
                    if (m >= sizeof node) goto syntax;
                    memcpy(node, p3, m);
                    node[m] = 0;
                }
            }
        }
        static struct agent *sorted[MAX_AGENTS];
        pthread_mutex_lock(&g_lock);
        int count = 0;
        for (int i = 0; i < g_high; i++)
            if (g_agents[i].used && g_agents[i].id > last_id) sorted[count++] = &g_agents[i];
        qsort(sorted, (size_t)count, sizeof sorted[0], agent_cmp);
        long rows = 0;
        int due = 0;
        struct sb list = {malloc(256), 0, 256};
        if (!list.b) {
            pthread_mutex_unlock(&g_lock);
            sb_add(o, "err Cannot execute Global database query; out of memory");
            return;
        }
        list.b[0] = 0;
        for (int i = 0; i < count; i++) {
            struct agent *a = sorted[i];
            if (IS("disconnect-agents")) {
                if (a->id == 0 || !is_live(a) || a->last_keepalive >= second) continue;
            } else if (status[0] && strcmp(a->connection_status, status) != 0) {
                continue;
            } else if (node[0] && strcmp(a->node_name, node) != 0) {
                continue;
            }
            /* A page ends at g_page_rows rows or when the next row might not fit in one reply
             * (WDB_MAX_RESPONSE_SIZE: OS_MAXSTR - 512 bytes), whichever comes first. */
            if (rows == g_page_rows || list.len + 32 > MAX_FRAME - 512) {
                due = 1;
                break;
            }
            if (IS("disconnect-agents")) {
                set_disconnected(a, 4, now);
                if (status[0]) snprintf(a->sync_status, sizeof a->sync_status, "%s", status);
            }
            sb_add(&list, "%s{\"id\":%lld}", rows ? "," : "", a->id);
            rows++;
        }
        pthread_mutex_unlock(&g_lock);
        sb_add(o, "%s [%s]", due ? "due" : "ok", list.b);
        free(list.b);
        return;
    }
    if (IS("sync-agent-info-set")) {
        /* wazuh-clusterd on the master: [{"id":1,"name":…,"connection_status":…,…},…]. The sim
         * handles the objects one by one with the same lookups (top-level members of each). */
        const char *e = arg + strlen(arg);
        const char *p = j_ws(arg, e);
        if (!j_array(p, e, 0) || j_ws(j_array(p, e, 0), e) != e) {
            sb_add(o, "err Invalid JSON syntax, near '%.20s'", arg);
            return;
        }
        p = j_ws(p + 1, e);
        pthread_mutex_lock(&g_lock);
        while (p < e && *p == '{') {
            const char *oe = j_object(p, e, 1);
            if (!oe) break;
            size_t n = (size_t)(oe - p);
            char *obj = malloc(n + 1);
            if (!obj) break;
            memcpy(obj, p, n);
            obj[n] = 0;
            long long id;
            struct agent *a;
            int gone;
            if (json_int(obj, "id", &id) && id > 0 && (a = agent_upsert(id, &gone)) != NULL) {
                SETSTR(name, obj, "name");
                SETSTR(ip, obj, "ip");
                SETSTR(version, obj, "version");
                SETSTR(node_name, obj, "node_name");
                SETSTR(connection_status, obj, "connection_status");
                SETSTR(os_name, obj, "os_name");
                SETSTR(os_platform, obj, "os_platform");
                (void)json_int(obj, "last_keepalive", &a->last_keepalive);
                (void)json_int(obj, "status_code", &a->status_code);
                snprintf(a->sync_status, sizeof a->sync_status, "synced");
            }
            free(obj);
            p = j_ws(oe, e);
            if (p < e && *p == ',') p = j_ws(p + 1, e);
        }
        pthread_mutex_unlock(&g_lock);
        sb_add(o, "ok");
        return;
    }
    if (IS("update-agent-name")) {
        long long id;
        char name[128] = "";
        if (!json_valid_object(arg)) {
            sb_add(o, "err Invalid JSON syntax, near '%.20s'", arg);
            return;
        }
        if (!json_int(arg, "id", &id) || !json_str(arg, "name", name, sizeof name)) {
            sb_add(o, "err Invalid JSON data, near '%.20s'", arg);
            return;
        }
        pthread_mutex_lock(&g_lock);
        struct agent *a = agent_get(id);
        if (a) snprintf(a->name, sizeof a->name, "%s", name);
        pthread_mutex_unlock(&g_lock);
        sb_add(o, "ok");
        return;
    }
    if (IS("get-agent-info")) {
        long long id;
        if (!parse_ll(arg, &id)) goto syntax;
        sb_add(o, "ok [");
        pthread_mutex_lock(&g_lock);
        struct agent *a = agent_get(id);
        if (a) row_json(o, a);
        pthread_mutex_unlock(&g_lock);
        sb_add(o, "]");
        return;
    }
    if (IS("delete-agent")) {
        long long id;
        if (!parse_ll(arg, &id)) goto syntax;
        pthread_mutex_lock(&g_lock);
        struct agent *a = agent_get(id);
        if (a) a->used = 0;
        mark_deleted(id, 1);
        pthread_mutex_unlock(&g_lock);
        sb_add(o, "ok");
        return;
    }
    if (IS("get-labels")) {
        long long id;
        if (!parse_ll(arg, &id)) goto syntax;
        sb_add(o, "ok ");
        pthread_mutex_lock(&g_lock);
        struct agent *a = agent_get(id);
        if (a) labels_json(o, a);
        else sb_add(o, "[]");
        pthread_mutex_unlock(&g_lock);
        return;
    }
#undef IS
syntax:
    sb_add(o, "err Invalid DB query syntax, near '%.20s'", q);
}

/* The real wazuh-db's cost per request (--cpu-per-request-us, for make bench; 0: none, as the tests run).
 * A real 4.7.5 wazuh-db spends ~33 us of CPU on each global request (SQLite, cJSON; SPEC §9) and serves
 * them one at a time: wdb_open_global() takes the global DB's mutex and wdb_leave() gives it back, so its
 * worker pool never runs two global queries at once, and a saturated wazuh-db is one busy core (~26,000
 * requests/s, ~13,000 keepalives/s on a 2-core VM). With a cost set, each request here burns that much of
 * its thread's CPU time (CLOCK_THREAD_CPUTIME_ID: CPU, not time: a thread that waits for a core still owes
 * it) under one lock, then is answered as before; the reply is sent after the lock is released, as the real
 * one sends it after wdb_leave(). */
static long long g_cost_ns;
/* --late-reply MATCH US: a worker that applied a request containing MATCH waits US µs before it sends
 * the reply, as a real worker preempted between applying a request and its sendto: a later request of
 * another connection is answered first (the tap must still apply them in wazuh-db's order). */
static const char *g_late_match;
static long g_late_us;
/* --late-read MATCH US: a worker handed a connection whose next request contains MATCH waits US µs before
 * it reads it, as a real worker woken late (preempted before its recvfrom on a loaded host): a later
 * request of another connection is read, and applied, first. It looks with recvmsg(MSG_PEEK), which is
 * no recvfrom: for the tap, the request is read when wazuh-db's recvfrom returns it (bpf read_at). */
static const char *g_lateread_match;
static long g_lateread_us;
static pthread_mutex_t g_global_db = PTHREAD_MUTEX_INITIALIZER;

static long long thread_cpu_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return (long long)t.tv_sec * 1000000000LL + t.tv_nsec;
}

/* Spins until this thread has used ns more CPU time. The clock is read every ~0.3 us of work (it is a
 * system call: its own time counts in the budget, so the total stays what was asked). */
static void burn_cpu(long long ns) {
    long long end = thread_cpu_ns() + ns;
    uint64_t x = (uint64_t)end | 1;
    do {
        for (int i = 0; i < 256; i++) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
        }
        __asm__ volatile("" : "+r"(x)); /* keeps the loop: the compiler cannot see x unused */
    } while (thread_cpu_ns() < end);
}

/* Serves one request of a connection: reads its frame, answers it. 0: the connection is done (end of
 * file, an error, a length over the cap, or a zero-length frame, which the real one takes as the client
 * leaving: OS_RecvSecureTCP returns 0, `Client %d disconnected.`, close). The reply goes out in one
 * send with flags 0 (OS_SendSecureTCP): SIGPIPE is ignored by the process instead. */
static int wdb_serve_one(int fd, unsigned char *buf, struct sb *o) {
    unsigned char hdr[4];
    if (g_lateread_match) {
        struct iovec iov = {buf, MAX_FRAME};
        struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
        ssize_t n = recvmsg(fd, &mh, MSG_PEEK);
        if (n > 4) {
            buf[n] = 0;
            if (strstr((const char *)buf + 4, g_lateread_match)) usleep((useconds_t)g_lateread_us);
        }
    }
    if (recv_exact(fd, hdr, 4) < 0) return 0;
    uint32_t len = get_le32(hdr);
    if (len == 0 || len > MAX_FRAME) return 0; /* hostile or desynchronised: drop the connection */
    if (recv_exact(fd, buf, len) < 0) return 0;
    /* The query is a C string: the 4.x trailing NUL, or the first embedded NUL, ends it. */
    buf[len] = 0;
    o->len = 4;
    int late = g_late_match && strstr((const char *)buf, g_late_match) != NULL;
    if (g_cost_ns > 0) {
        pthread_mutex_lock(&g_global_db);
        burn_cpu(g_cost_ns);
        wdb_dispatch((const char *)buf, o);
        pthread_mutex_unlock(&g_global_db);
    } else {
        wdb_dispatch((const char *)buf, o);
    }
    size_t plen = o->len - 4;
    if (plen > MAX_FRAME) { /* a real wazuh-db would page with `due`; never reached here */
        plen = MAX_FRAME;
        o->len = 4 + plen;
    }
    put_le32((unsigned char *)o->b, (uint32_t)plen);
    if (late) usleep((useconds_t)g_late_us);
    return send_all_once(fd, o->b, o->len, 0) == 0;
}

/* The worker pool (src/wazuh_db/main.c: a main thread watches the listening socket and every idle
 * connection; a ready connection is queued, and a worker takes it, reads one request, answers it and
 * gives the connection back to the watch). So successive requests of one connection are answered by
 * different threads: here the ready connection goes to the worker idle the longest, which is never
 * the one that just answered while another is idle. */
#define WDB_WORKERS 8
struct wdb_worker {
    pthread_t t;
    sem_t go;
    int fd;
};
static struct wdb_worker g_workers[WDB_WORKERS];
static pthread_mutex_t g_pool_lock = PTHREAD_MUTEX_INITIALIZER;
static int g_idle[WDB_WORKERS], g_idle_at, g_idle_n; /* ring of idle workers, the longest idle first */
static int *g_ready, g_ready_cap, g_ready_at, g_ready_n; /* ring of ready connections no worker took yet */
static int g_epfd;

/* A ready connection to the longest-idle worker, or to the queue. */
static void pool_hand(int fd) {
    pthread_mutex_lock(&g_pool_lock);
    if (g_idle_n > 0) {
        int w = g_idle[g_idle_at];
        g_idle_at = (g_idle_at + 1) % WDB_WORKERS;
        g_idle_n--;
        pthread_mutex_unlock(&g_pool_lock);
        g_workers[w].fd = fd;
        sem_post(&g_workers[w].go);
        return;
    }
    /* A connection is watched one-shot, so it is queued once at most: fewer than g_ready_cap. */
    g_ready[(g_ready_at + g_ready_n++) % g_ready_cap] = fd;
    pthread_mutex_unlock(&g_pool_lock);
}

static void *wdb_worker(void *arg) {
    int me = (int)(intptr_t)arg;
    struct wdb_worker *w = &g_workers[me];
    unsigned char *buf = malloc(MAX_FRAME + 1);
    struct sb o = {malloc(1024), 0, 1024};
    if (!buf || !o.b) die("out of memory");
    int fd = -1;
    for (;;) {
        if (fd < 0) {
            pthread_mutex_lock(&g_pool_lock);
            if (g_ready_n > 0) {
                fd = g_ready[g_ready_at];
                g_ready_at = (g_ready_at + 1) % g_ready_cap;
                g_ready_n--;
                pthread_mutex_unlock(&g_pool_lock);
            } else {
                g_idle[(g_idle_at + g_idle_n++) % WDB_WORKERS] = me;
                pthread_mutex_unlock(&g_pool_lock);
                while (sem_wait(&w->go) < 0 && errno == EINTR)
                    ;
                fd = w->fd;
            }
        }
        if (wdb_serve_one(fd, buf, &o)) {
            struct epoll_event ev = {.events = EPOLLIN | EPOLLONESHOT, .data.fd = fd};
            if (epoll_ctl(g_epfd, EPOLL_CTL_MOD, fd, &ev) < 0) close(fd);
        } else {
            (void)epoll_ctl(g_epfd, EPOLL_CTL_DEL, fd, NULL);
            close(fd);
        }
        fd = -1;
    }
    return NULL;
}

static sigset_t g_termset;
static const char *g_unlink_on_exit;
static void (*g_before_exit)(void);

static void *signal_thread(void *arg) {
    (void)arg;
    int sig;
    sigwait(&g_termset, &sig);
    if (g_before_exit) g_before_exit();
    if (g_unlink_on_exit) unlink(g_unlink_on_exit);
    _exit(0);
}

/* Termination is handled by a dedicated thread so no handler races a worker. */
static void start_signal_thread(const char *path) {
    g_unlink_on_exit = path;
    sigemptyset(&g_termset);
    sigaddset(&g_termset, SIGTERM);
    sigaddset(&g_termset, SIGINT);
    pthread_sigmask(SIG_BLOCK, &g_termset, NULL);
    pthread_t t;
    if (pthread_create(&t, NULL, signal_thread, NULL) != 0) die("pthread_create: %s", strerror(errno));
    pthread_detach(t);
}

static int bind_unix(int type, const char *path) {
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof sa.sun_path, "%s", path);
    unlink(path);
    int fd = socket(AF_UNIX, type, 0);
    if (fd < 0) die("socket: %s", strerror(errno));
    if (bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0) die("bind %s: %s", path, strerror(errno));
    return fd;
}

/* --state FILE: what a real wazuh-db keeps in global.db across a restart. Written at SIGTERM with
 * g_lock taken and never given back, so no request is answered after the table was written: every
 * `ok` a client read is in the file, and a request cut by the stop is retried by its client on the
 * new wazuh-db (as wdbc_query_ex does). Read at start instead of seeding from client.keys. */
static void state_save(void) {
    pthread_mutex_lock(&g_lock);
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp", g_state);
    FILE *f = fopen(tmp, "wb");
    if (!f) return;
    int ok = 1;
    for (int i = 0; i < g_high && ok; i++)
        if (g_agents[i].used) ok = fwrite(&g_agents[i], sizeof g_agents[i], 1, f) == 1;
    if (fclose(f) != 0 || !ok || rename(tmp, g_state) != 0) unlink(tmp);
}

static int state_load(void) {
    FILE *f = fopen(g_state, "rb");
    if (!f) return 0;
    struct agent a;
    while (g_high < MAX_AGENTS && fread(&a, sizeof a, 1, f) == 1) {
        if (!a.used) continue;
        g_agents[g_high] = a;
        if (a.id >= 0 && a.id < ID_INDEX) g_index[a.id] = &g_agents[g_high];
        g_high++;
    }
    fclose(f);
    return 1;
}

static _Noreturn void run_db(void) {
    mkdir_p("queue/db");
    if (!g_state || !state_load()) seed_agents();
    if (g_state) g_before_exit = state_save;
    signal(SIGPIPE, SIG_IGN); /* replies are sent with flags 0, as the real one's */
    start_signal_thread(WDB_PATH);
    int lfd = bind_unix(SOCK_STREAM, WDB_PATH);
    chmod(WDB_PATH, 0660);
    if (listen(lfd, 128) < 0) die("listen: %s", strerror(errno));
    struct rlimit rl;
    g_ready_cap = getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < (1u << 20) ? (int)rl.rlim_cur + 1 : 1 << 20;
    if (!(g_ready = calloc((size_t)g_ready_cap, sizeof *g_ready))) die("out of memory");
    if ((g_epfd = epoll_create1(EPOLL_CLOEXEC)) < 0) die("epoll_create1: %s", strerror(errno));
    struct epoll_event lev = {.events = EPOLLIN, .data.fd = lfd};
    if (epoll_ctl(g_epfd, EPOLL_CTL_ADD, lfd, &lev) < 0) die("epoll_ctl: %s", strerror(errno));
    for (int i = 0; i < WDB_WORKERS; i++) {
        sem_init(&g_workers[i].go, 0, 0);
        if (pthread_create(&g_workers[i].t, NULL, wdb_worker, (void *)(intptr_t)i) != 0) die("pthread_create: %s", strerror(errno));
    }
    printf("ready\n");
    fflush(stdout);
    for (;;) {
        struct epoll_event ev[64];
        int n = epoll_wait(g_epfd, ev, 64, -1);
        if (n < 0) {
            if (errno == EINTR) continue;
            die("epoll_wait: %s", strerror(errno));
        }
        for (int i = 0; i < n; i++) {
            if (ev[i].data.fd != lfd) {
                pool_hand(ev[i].data.fd); /* one-shot: not watched again until its worker answered */
                continue;
            }
            int c = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
            if (c < 0) {
                if (errno == EMFILE || errno == ENFILE) usleep(10000); /* out of descriptors: wait, do not spin */
                else if (errno != EINTR && errno != ECONNABORTED && errno != EAGAIN) die("accept: %s", strerror(errno));
                continue;
            }
            struct epoll_event cev = {.events = EPOLLIN | EPOLLONESHOT, .data.fd = c};
            if (epoll_ctl(g_epfd, EPOLL_CTL_ADD, c, &cev) < 0) close(c);
        }
    }
}

/* wazuh-analysisd: the datagram socket remoted sends events to (ignored), and the alerts it
 * writes, as the real one does (WAZUH-PROTOCOL §7): one JSON object per line appended through
 * buffered stdio to the day's file logs/alerts/<year>/<Mon>/ossec-alerts-<dd>.json, with
 * logs/alerts/alerts.json a hard link to it; at a new day the file is closed, the next day's is
 * opened and alerts.json linked to it again. The stdio buffer is small and flushed only when full
 * or at the end of a command, so a write() ends anywhere in a line.
 *
 * Commands on stdin, one reply line each (`ok <n> <first>-<last>` or `err <n> <why>`):
 *   alerts <count> <level> <interval_us>   count alerts of that level, interval_us apart
 *   raw <hex>                              these bytes as they are (a broken or long line)
 *   rotate                                 the next day: close, open the new day's file, relink
 *   flush                                  fflush the stdio buffer
 *   poll-active                            get-agents-by-connection-status 0 active node01 -1, paged, on its
 *                                          own wdb connection: `ok <n> <ids>`
 *   labels <id>                            get-labels <id> on that connection: `ok <n> <reply>`
 */
static int hexval(int c);
static FILE *g_alerts;
static char g_alerts_day[256];
static int g_day;
static unsigned long g_alert_seq;
static long g_alert_offset;
static const char *MONTHS[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

static void *analysisd_queue(void *arg) {
    int fd = (int)(intptr_t)arg;
    char buf[65536];
    for (;;) {
        if (recv(fd, buf, sizeof buf, 0) < 0 && errno != EINTR) die("recv: %s", strerror(errno));
    }
    return NULL;
}

static int alerts_open_day(void) {
    time_t now = time(NULL);
    struct tm tm;
    localtime_r(&now, &tm);
    char dir[128];
    snprintf(dir, sizeof dir, "logs/alerts/%d/%s", tm.tm_year + 1900, MONTHS[tm.tm_mon]);
    mkdir_p(dir);
    snprintf(g_alerts_day, sizeof g_alerts_day, "%s/ossec-alerts-%02d.json", dir, g_day);
    if (g_alerts) fclose(g_alerts);
    g_alerts = fopen(g_alerts_day, "a");
    if (!g_alerts) return -1;
    /* A small buffer, flushed when full: writes cut lines anywhere, as analysisd's do. */
    setvbuf(g_alerts, NULL, _IOFBF, 4096);
    g_alert_offset = ftell(g_alerts);
    unlink("logs/alerts/alerts.json");
    return link(g_alerts_day, "logs/alerts/alerts.json");
}

/* Agent names as analysisd knows them: from etc/client.keys (`ID NAME IP KEY`, a removed agent's
 * name starts with '!'); read again before each `alerts` command, since authd may have added one.
 * An agent missing from it is named agent<N>. */
static char g_agent_names[4][64];

static void load_agent_names(void) {
    for (int i = 1; i <= 3; i++) snprintf(g_agent_names[i], sizeof g_agent_names[i], "agent%d", i);
    FILE *f = fopen("etc/client.keys", "r");
    if (!f) return;
    char line[512];
    while (fgets(line, sizeof line, f)) {
        int id = 0;
        char name[64];
        if (sscanf(line, "%d %63s", &id, name) == 2 && id >= 1 && id <= 3 && name[0] != '!') {
            size_t ok = strspn(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.");
            if (ok == strlen(name)) snprintf(g_agent_names[id], sizeof g_agent_names[id], "%s", name);
        }
    }
    fclose(f);
}

static void alert_write(int level) {
    unsigned long n = ++g_alert_seq;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    localtime_r(&ts.tv_sec, &tm);
    char when[64], zone[8], logtime[32];
    strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%S", &tm);
    strftime(zone, sizeof zone, "%z", &tm);
    strftime(logtime, sizeof logtime, "%b %d %H:%M:%S", &tm);
    int agent = (int)(n % 3) + 1;
    int len = fprintf(g_alerts,
        "{\"timestamp\":\"%s.%03ld%s\",\"rule\":{\"level\":%d,\"description\":\"sshd: authentication success.\","
        "\"id\":\"5715\",\"firedtimes\":%lu,\"mail\":false,\"groups\":[\"syslog\",\"sshd\",\"authentication_success\"],"
        "\"pci_dss\":[\"10.2.5\"],\"gdpr\":[\"IV_32.2\"],\"mitre\":{\"id\":[\"T1078\"],\"tactic\":[\"Defense Evasion\"]}},"
        "\"agent\":{\"id\":\"%03d\",\"name\":\"%s\",\"ip\":\"10.0.0.%d\"},\"manager\":{\"name\":\"node01\"},"
        "\"id\":\"%ld.%ld\",\"full_log\":\"%s %s sshd[%lu]: Accepted password for admin from 192.168.1.50 port %lu ssh2\","
        "\"predecoder\":{\"program_name\":\"sshd\",\"timestamp\":\"%s\",\"hostname\":\"%s\"},"
        "\"decoder\":{\"parent\":\"sshd\",\"name\":\"sshd\"},\"data\":{\"srcip\":\"192.168.1.50\",\"srcport\":\"%lu\",\"dstuser\":\"admin\"},"
        "\"location\":\"/var/log/auth.log\"}\n",
        when, ts.tv_nsec / 1000000, zone, level, n, agent, g_agent_names[agent], agent, (long)ts.tv_sec, g_alert_offset,
        logtime, g_agent_names[agent], n, n, logtime, g_agent_names[agent], n);
    if (len > 0) g_alert_offset += len;
}

static int wdb_connect(void);
static int wdb_query(int fd, const char *query, char *reply, size_t cap);

/* analysisd's own wdb connection (WAZUH-PROTOCOL §2: it polls the active agents every 5 s on its own
 * connection, and asks get-labels for agent events), opened on first use and kept. */
static int wdb_connect_once(void);
/* `patient`: wait for wazuh-db's socket (a command of the harness); the background poll does not: with
 * wazuh-db away it would hold the connection's lock — and the command loop behind it — for ~10 s of
 * connect attempts. It tries again at its next interval, as analysisd's poll does. */
static int analysisd_wdb(const char *query, char *reply, size_t cap, int patient) {
    static int fd = -1;
    for (int attempt = 0; attempt < 2; attempt++) {
        if (fd < 0 && (fd = patient ? wdb_connect() : wdb_connect_once()) < 0) return -1;
        if (wdb_query(fd, query, reply, cap) == 0) return 0;
        close(fd);
        fd = -1;
    }
    return -1;
}

/* The command loop and the background poll share that connection: one holds it for a whole request
 * (a paged listing included), so each one's pages follow each other on it as one thread's do. */
static pthread_mutex_t g_an_lock = PTHREAD_MUTEX_INITIALIZER;

static void sleep_ms(long ms) {
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

/* --bg-poll-ms: analysisd polls `get-agents-by-connection-status 0 active node01 -1` (paged on `due`)
 * on its own connection, whether or not any agent is active (§2 names no condition, unlike remoted's).
 * Its first poll one interval after the start. The reply's ids are not used: the simulated analysisd
 * keeps no agent list. */
static void *analysisd_bg_poll(void *arg) {
    (void)arg;
    static char q[128], reply[MAX_FRAME + 1];
    for (;;) {
        sleep_ms(g_bg_poll_ms);
        pthread_mutex_lock(&g_an_lock);
        for (long long last = 0, page = 0; page < 100000; page++) {
            snprintf(q, sizeof q, "global get-agents-by-connection-status %lld active node01 -1", last);
            if (analysisd_wdb(q, reply, sizeof reply, 0) < 0) break;
            for (const char *r = strstr(reply, "\"id\":"); r; r = strstr(r + 5, "\"id\":")) last = strtoll(r + 5, NULL, 10);
            if (strncmp(reply, "due ", 4)) break;
        }
        pthread_mutex_unlock(&g_an_lock);
    }
    return NULL;
}

static _Noreturn void run_analysisd(void) {
    /* As every Wazuh daemon (StartSIG): a write on a connection wazuh-db closed (it restarted) is an
     * error to retry, not the end of the process — analysisd's background poll meets one at each restart. */
    signal(SIGPIPE, SIG_IGN);
    mkdir_p("queue/sockets");
    mkdir_p("logs/alerts");
    start_signal_thread(QUEUE_PATH);
    int fd = bind_unix(SOCK_DGRAM, QUEUE_PATH);
    pthread_t t;
    if (pthread_create(&t, NULL, analysisd_queue, (void *)(intptr_t)fd) != 0) die("pthread_create: %s", strerror(errno));
    pthread_detach(t);
    time_t now = time(NULL);
    struct tm tm;
    localtime_r(&now, &tm);
    g_day = tm.tm_mday;
    if (alerts_open_day() < 0) die("cannot open %s: %s", g_alerts_day, strerror(errno));
    if (g_bg_poll_ms > 0) {
        pthread_t bg;
        if (pthread_create(&bg, NULL, analysisd_bg_poll, NULL) != 0) die("pthread_create: %s", strerror(errno));
        pthread_detach(bg);
    }
    printf("ready\n");
    fflush(stdout);

    char *line = NULL;
    size_t lcap = 0;
    ssize_t ll;
    unsigned long n = 0;
    while ((ll = getline(&line, &lcap, stdin)) >= 0) {
        while (ll > 0 && (line[ll - 1] == '\n' || line[ll - 1] == '\r')) line[--ll] = 0;
        n++;
        char verb[16] = "";
        long count = 0, level = 0, interval = 0;
        int fields = sscanf(line, "%15s %ld %ld %ld", verb, &count, &level, &interval);
        if (!strcmp(verb, "alerts")) {
            if (fields != 4 || count < 0 || count > 10000000 || level < 0 || level > 15 || interval < 0 || interval > 1000000) {
                printf("err %lu usage: alerts <count> <level 0-15> <interval_us>\n", n);
            } else {
                unsigned long first = g_alert_seq + 1;
                load_agent_names();
                for (long i = 0; i < count; i++) {
                    alert_write((int)level);
                    if (interval) usleep((useconds_t)interval);
                }
                fflush(g_alerts);
                printf("ok %lu %lu-%lu\n", n, first, g_alert_seq);
            }
        } else if (!strcmp(verb, "raw")) {
            const char *h = line + 3 + strspn(line + 3, " ");
            size_t hl = strlen(h);
            int bad = hl % 2 != 0;
            for (size_t i = 0; !bad && i < hl; i += 2) {
                int a = hexval(h[i]), b = hexval(h[i + 1]);
                if (a < 0 || b < 0) bad = 1;
                else fputc(a * 16 + b, g_alerts);
            }
            if (!bad) g_alert_offset += (long)(hl / 2);
            fflush(g_alerts);
            if (bad) printf("err %lu bad hex\n", n);
            else printf("ok %lu\n", n);
        } else if (!strcmp(verb, "rotate")) {
            g_day = g_day % 28 + 1;
            if (alerts_open_day() < 0) printf("err %lu rotate: %s\n", n, strerror(errno));
            else printf("ok %lu %s\n", n, g_alerts_day);
        } else if (!strcmp(verb, "flush")) {
            fflush(g_alerts);
            printf("ok %lu\n", n);
        } else if (!strcmp(verb, "poll-active") || !strcmp(verb, "labels")) {
            static char q[256], reply[MAX_FRAME + 1];
            struct sb ids = {malloc(4096), 0, 4096};
            const char *e = NULL;
            if (!ids.b) e = "out of memory";
            else ids.b[0] = 0;
            pthread_mutex_lock(&g_an_lock);
            if (!e && !strcmp(verb, "labels")) {
                if (fields < 2 || count < 0) e = "usage: labels <id>";
                else if (snprintf(q, sizeof q, "global get-labels %ld", count), analysisd_wdb(q, reply, sizeof reply, 1) < 0) e = "wdb request failed";
                else sb_add(&ids, "%s", reply);
            }
            for (long long last = 0; !e && !strcmp(verb, "poll-active");) {
                snprintf(q, sizeof q, "global get-agents-by-connection-status %lld active node01 -1", last);
                if (analysisd_wdb(q, reply, sizeof reply, 1) < 0) e = "wdb request failed";
                else if (strncmp(reply, "ok ", 3) && strncmp(reply, "due ", 4)) e = "wazuh-db answered an error";
                for (const char *r = e ? NULL : strstr(reply, "\"id\":"); r; r = strstr(r + 5, "\"id\":")) {
                    last = strtoll(r + 5, NULL, 10);
                    sb_add(&ids, "%s%lld", ids.len ? "," : "", last);
                }
                if (e || strncmp(reply, "due ", 4)) break;
            }
            pthread_mutex_unlock(&g_an_lock);
            if (e) printf("err %lu %s\n", n, e);
            else printf(ids.len ? "ok %lu %s\n" : "ok %lu\n", n, ids.b);
            free(ids.b);
        } else {
            printf("err %lu unknown command\n", n);
        }
        fflush(stdout);
    }
    /* The harness went away: end like the daemon would, with what is buffered written. */
    fflush(g_alerts);
    exit(0);
}

/* ------------------------------------------------------------------------ */
/* wazuh-remoted (and any client name)                                      */

static int connect_unix(int type, const char *path) {
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof sa.sun_path, "%s", path);
    int fd = socket(AF_UNIX, type, 0);
    if (fd < 0) return -1;
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* One attempt: -1 at once when wazuh-db's socket is not there or refuses. A 5.x client's connection
 * is non-blocking (its sends use MSG_NOSIGNAL and resend a tail). */
static int wdb_connect_once(void) {
    int fd = connect_unix(SOCK_STREAM, WDB_PATH);
    if (fd >= 0 && g_5x) (void)fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    return fd;
}

/* remoted may start before wazuh-db has bound its socket (wazuh-control starts
 * them in order, but nothing waits), so connecting is retried for a while. */
static int wdb_connect(void) {
    for (int i = 0; i < 100; i++) {
        int fd = wdb_connect_once();
        if (fd >= 0) return fd;
        if (errno != ENOENT && errno != ECONNREFUSED) return -1;
        usleep(50 * 1000);
    }
    return -1;
}

/* 5.x: a non-blocking socket with MSG_NOSIGNAL; what the kernel did not take is resent. Each part
 * is written until done, waiting (bounded) for room. */
static int send_part_5x(int fd, const unsigned char *p, size_t len) {
    int waits = 0;
    while (len > 0) {
        ssize_t n = sendto(fd, p, len, MSG_NOSIGNAL, NULL, 0);
        if (n > 0) {
            p += n;
            len -= (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) && waits++ < 50) {
            struct pollfd pfd = {.fd = fd, .events = POLLOUT};
            (void)poll(&pfd, 1, 100);
            continue;
        }
        return -1;
    }
    return 0;
}

/* One write of a client's frame (or of a part of it): 4.x one blocking send, flags 0; 5.x one
 * non-blocking send with MSG_NOSIGNAL, and a tail the kernel did not take is sent again. */
static int send_part(int fd, const unsigned char *p, size_t len) {
    return g_5x ? send_part_5x(fd, p, len) : send_all_once(fd, p, len, 0);
}

/* The next number of a client thread's --split random:<seed> PRNG (splitmix64). */
static uint64_t split_rand(void) {
    static __thread uint64_t state;
    static __thread int seeded;
    static unsigned long threads;
    if (!seeded) {
        state = g_split_seed ^ (0x9e3779b97f4a7c15ULL * __atomic_add_fetch(&threads, 1, __ATOMIC_RELAXED));
        seeded = 1;
    }
    uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* Writes a whole frame (header included) as --split says: whole (the default), or in parts. */
static int send_frame(int fd, const unsigned char *buf, size_t total) {
    size_t cuts[4];
    int n = 0;
    if (g_split == SPLIT_HALVES && total > 4) {
        cuts[n++] = 4;
        if (total - 4 >= 2) cuts[n++] = 4 + (total - 4) / 2;
    } else if (g_split == SPLIT_RANDOM && total > 1) {
        int want = 1 + (int)(split_rand() % 3);
        for (int i = 0; i < want; i++) {
            size_t c = 1 + (size_t)(split_rand() % (total - 1));
            int j = n;
            while (j > 0 && cuts[j - 1] > c) j--;
            if (j > 0 && cuts[j - 1] == c) continue;
            memmove(&cuts[j + 1], &cuts[j], (size_t)(n - j) * sizeof cuts[0]);
            cuts[j] = c;
            n++;
        }
    }
    size_t at = 0;
    for (int i = 0; i <= n; i++) {
        size_t end = i < n ? cuts[i] : total;
        if (send_part(fd, buf + at, end - at) < 0) return -1;
        at = end;
    }
    return 0;
}

/* One request/reply round trip on fd. 4.x: query + NUL (wdbc_query_ex → OS_SendSecureTCP), header and
 * payload in one blocking sendto, flags 0. Python (python3): the same write without the NUL
 * (WazuhDBConnection: struct.pack('<I', len) + query, one socket.send). 5.x: no NUL, one sendto with
 * MSG_NOSIGNAL on a non-blocking socket (an unsent tail resent). --split cuts the frame into several
 * writes instead. */
static int wdb_query(int fd, const char *query, char *reply, size_t cap) {
    size_t len = strlen(query) + (g_nul ? 1 : 0);
    if (len > MAX_FRAME) return -1;
    unsigned char *buf = malloc(4 + len + 1);
    if (!buf) return -1;
    put_le32(buf, (uint32_t)len);
    memcpy(buf + 4, query, strlen(query) + 1);
    int r = send_frame(fd, buf, 4 + len);
    free(buf);
    if (r < 0) return -1;
    unsigned char hdr[4];
    if (recv_exact(fd, hdr, 4) < 0) return -1;
    uint32_t rlen = get_le32(hdr);
    if (rlen > MAX_FRAME) return -1;
    char *tmp = malloc(rlen + 1);
    if (!tmp) return -1;
    if (recv_exact(fd, tmp, rlen) < 0) {
        free(tmp);
        return -1;
    }
    tmp[rlen] = 0;
    snprintf(reply, cap, "%s", tmp);
    free(tmp);
    return 0;
}

static int g_wdb = -1;   /* long-lived connection, opened on first use as remoted does */
static int g_queue = -1; /* datagrams to analysisd */
static int g_tcp_srv = -1, g_tcp_cli = -1;

static int short_query(const char *query) {
    char reply[256];
    int fd = wdb_connect();
    if (fd < 0) return -1;
    int r = wdb_query(fd, query, reply, sizeof reply);
    close(fd);
    return r;
}

/* `raw` and `recv` on the long-lived connection: the frames `raw` wrote are walked as they go out (a
 * frame may span several `raw` writes), and every complete one is a reply wazuh-db owes; `recv` reads
 * them one by one. While a reply is owed, or a frame is half written, the connection carries no other
 * request (its reply would be the raw frame's): the line commands say so and send nothing, so a test
 * must read what it asked for — one request, one reply, per round trip, as every real client. A frame
 * whose length wazuh-db refuses (0, or over the cap) ends the connection: what follows it is never
 * answered, and the next request opens a new one. */
struct rawwalk {
    unsigned char hdr[4];
    int hdr_n;     /* header bytes seen of the next frame */
    uint32_t left; /* payload bytes still to come of the current frame */
    int doomed;    /* a length wazuh-db refuses went out: it closes the connection there */
};
static struct rawwalk g_rw;
static long g_raw_owed; /* replies to complete raw frames not read yet */

/* Walks bytes written on the connection; how many frames they completed. */
static long raw_walk(struct rawwalk *w, const unsigned char *p, size_t n) {
    long frames = 0;
    size_t i = 0;
    while (i < n && !w->doomed) {
        if (w->left > 0) {
            size_t take = n - i < w->left ? n - i : w->left;
            w->left -= (uint32_t)take;
            i += take;
            if (w->left == 0) frames++;
            continue;
        }
        w->hdr[w->hdr_n++] = p[i++];
        if (w->hdr_n == 4) {
            uint32_t len = get_le32(w->hdr);
            w->hdr_n = 0;
            if (len == 0 || len > MAX_FRAME) w->doomed = 1;
            else w->left = len;
        }
    }
    return frames;
}

/* Replies read while a raw write was in flight, kept for recv in order. A raw write of many frames
 * (the review's 20,000 in one write) would otherwise deadlock: the client blocked in its sendto, reading
 * nothing, and wazuh-db blocked sending replies into the client's full buffer, reading nothing either. So
 * while raw writes, a second thread reads what wazuh-db answers (bounded: RAW_STASH_MAX bytes kept). */
#define RAW_STASH_MAX (64u << 20)
struct raw_stash {
    char **items;
    size_t at, n, cap, bytes;
};
static struct raw_stash g_stash;

static void stash_clear(void) {
    for (size_t i = 0; i < g_stash.n; i++) free(g_stash.items[(g_stash.at + i) % g_stash.cap]);
    free(g_stash.items);
    memset(&g_stash, 0, sizeof g_stash);
}

static int stash_push(char *reply, size_t len) {
    if (g_stash.n == g_stash.cap) {
        size_t nc = g_stash.cap ? g_stash.cap * 2 : 64;
        char **ni = malloc(nc * sizeof *ni);
        if (!ni) return -1;
        for (size_t i = 0; i < g_stash.n; i++) ni[i] = g_stash.items[(g_stash.at + i) % g_stash.cap];
        free(g_stash.items);
        g_stash.items = ni;
        g_stash.at = 0;
        g_stash.cap = nc;
    }
    g_stash.items[(g_stash.at + g_stash.n++) % g_stash.cap] = reply;
    g_stash.bytes += len;
    return 0;
}

struct raw_reader {
    int fd;
    int done;   /* atomic: the write is over; stop between replies */
    int broken; /* the connection ended under the reader */
};

static void *raw_reader_main(void *arg) {
    struct raw_reader *R = arg;
    while (!__atomic_load_n(&R->done, __ATOMIC_ACQUIRE)) {
        struct pollfd pfd = {.fd = R->fd, .events = POLLIN};
        if (g_stash.bytes > RAW_STASH_MAX || poll(&pfd, 1, 10) != 1) { /* full: leave the rest in the socket */
            if (g_stash.bytes > RAW_STASH_MAX) usleep(10000);
            continue;
        }
        unsigned char hdr[4];
        uint32_t rlen;
        char *reply;
        if (recv_exact(R->fd, hdr, 4) < 0 || (rlen = get_le32(hdr)) > MAX_FRAME || !(reply = malloc(rlen + 1))) {
            R->broken = 1;
            break;
        }
        if (recv_exact(R->fd, reply, rlen) < 0 || (reply[rlen] = 0, stash_push(reply, strlen(reply)) < 0)) {
            free(reply);
            R->broken = 1;
            break;
        }
    }
    return NULL;
}

/* A new connection (or none): nothing owed on it. */
static void raw_forget(void) {
    memset(&g_rw, 0, sizeof g_rw);
    g_raw_owed = 0;
    stash_clear();
}

/* Why the long-lived connection cannot carry a request now (NULL: it can). */
static const char *raw_blocker(void) {
    static char why[160];
    if (g_wdb < 0) return NULL;
    if (g_raw_owed > 0) {
        snprintf(why, sizeof why, "%ld repl%s to raw frames not read: recv first", g_raw_owed, g_raw_owed == 1 ? "y" : "ies");
        return why;
    }
    if (!g_rw.doomed && (g_rw.hdr_n || g_rw.left)) {
        snprintf(why, sizeof why, "a raw frame is incomplete (%u bytes to come): raw the rest first",
                 g_rw.left ? g_rw.left : (unsigned)(4 - g_rw.hdr_n));
        return why;
    }
    return NULL;
}

/* Sends on the long-lived connection; a dead connection is reopened once, like wdbc_query_ex does after
 * wazuh-db restarts. Refused while raw frames are owed their replies (g_lq_err says why). */
static const char *g_lq_err;
static int long_query(const char *query, char *reply, size_t cap) {
    g_lq_err = "wdb request failed";
    const char *why = raw_blocker();
    if (why) {
        g_lq_err = why;
        return -1;
    }
    if (g_wdb >= 0 && g_rw.doomed) { /* wazuh-db closed it at the refused length: a new one */
        close(g_wdb);
        g_wdb = -1;
    }
    raw_forget();
    for (int attempt = 0; attempt < 2; attempt++) {
        if (g_wdb < 0 && (g_wdb = wdb_connect()) < 0) return -1;
        if (wdb_query(g_wdb, query, reply, cap) == 0) return 0;
        close(g_wdb);
        g_wdb = -1;
    }
    return -1;
}

static void send_datagram(const char *msg) {
    if (g_queue < 0) g_queue = connect_unix(SOCK_DGRAM, QUEUE_PATH);
    if (g_queue < 0) return;
    if (sendto(g_queue, msg, strlen(msg) + 1, 0, NULL, 0) < 0) {
        close(g_queue);
        g_queue = -1;
    }
}

static void tcp_pair(void) {
    struct sockaddr_in sa = {.sin_family = AF_INET};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t sl = sizeof sa;
    int l = socket(AF_INET, SOCK_STREAM, 0);
    if (l < 0) return;
    if (bind(l, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(l, 1) < 0 ||
        getsockname(l, (struct sockaddr *)&sa, &sl) < 0) {
        close(l);
        return;
    }
    g_tcp_cli = socket(AF_INET, SOCK_STREAM, 0);
    if (g_tcp_cli >= 0 && connect(g_tcp_cli, (struct sockaddr *)&sa, sizeof sa) == 0) {
        g_tcp_srv = accept(l, NULL, NULL);
        fcntl(g_tcp_cli, F_SETFL, O_NONBLOCK);
    }
    close(l);
}

/* remoted → agent frame: same 4-byte LE length framing as wdb, on TCP. */
static void send_tcp_frame(const char *payload) {
    if (g_tcp_srv < 0) return;
    size_t len = strlen(payload);
    unsigned char buf[512];
    if (len > sizeof buf - 4) return;
    put_le32(buf, (uint32_t)len);
    memcpy(buf + 4, payload, len);
    (void)send_all_once(g_tcp_srv, buf, 4 + len, MSG_NOSIGNAL);
    /* Play the agent's side: drain so the loopback buffers never fill up. */
    char sink[4096];
    while (recv(g_tcp_cli, sink, sizeof sink, 0) > 0) {
    }
}

static void json_escape_into(char *out, size_t cap, const char *in) {
    size_t o = 0;
    for (const unsigned char *p = (const unsigned char *)in; *p && o + 7 < cap; p++) {
        if (*p == '"' || *p == '\\') { out[o++] = '\\'; out[o++] = (char)*p; }
        else if (*p < 0x20) o += (size_t)snprintf(out + o, cap - o, "\\u%04x", *p);
        else out[o++] = (char)*p;
    }
    out[o] = 0;
}

static int hexval(int c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

static void printable(char *s) {
    for (; *s; s++)
        if ((unsigned char)*s < 0x20) *s = ' ';
}

/* 32 random bytes as 64 hex digits, as authd's keys are. */
static void random_key(char out[65]) {
    unsigned char b[32];
    size_t got = 0;
    int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        ssize_t n;
        while (got < sizeof b && (n = read(fd, b + got, sizeof b - got)) > 0) got += (size_t)n;
        close(fd);
    }
    if (got < sizeof b) die("cannot read /dev/urandom");
    for (size_t i = 0; i < sizeof b; i++) snprintf(out + 2 * i, 3, "%02x", b[i]);
}

/* etc/client.keys as authd keeps it (WAZUH-PROTOCOL §5: root:wazuh 0640). On any failure these say
 * why in `why` and return -1: the command fails, loudly, rather than go on as if the key were written. */
static int keys_fail(char *why, size_t cap, const char *what) {
    snprintf(why, cap, "%s etc/client.keys: %s", what, strerror(errno));
    return -1;
}

/* authd's registration: the line `ID NAME IP KEY` appended (etc/ and the file made when missing, 0640). */
static int append_key(long long id, const char *name, const char *ip, const char *key, char *why, size_t cap) {
    if (mkdir("etc", 0770) < 0 && errno != EEXIST) return keys_fail(why, cap, "cannot make the directory of");
    int created = 1;
    int fd = open("etc/client.keys", O_WRONLY | O_APPEND | O_CREAT | O_EXCL | O_CLOEXEC, 0640);
    if (fd < 0 && errno == EEXIST) {
        created = 0;
        fd = open("etc/client.keys", O_WRONLY | O_APPEND | O_CLOEXEC);
    }
    if (fd < 0) return keys_fail(why, cap, "cannot open");
    if (created && fchmod(fd, 0640) < 0) { /* whatever the umask */
        close(fd);
        return keys_fail(why, cap, "cannot set the mode of");
    }
    char line[512];
    int n = snprintf(line, sizeof line, "%03lld %s %s %s\n", id, name, ip, key);
    if (n < 0 || (size_t)n >= sizeof line) {
        close(fd);
        errno = ENAMETOOLONG;
        return keys_fail(why, cap, "too long a line for");
    }
    if (write(fd, line, (size_t)n) != n) {
        close(fd);
        return keys_fail(why, cap, "cannot write");
    }
    if (close(fd) < 0) return keys_fail(why, cap, "cannot write");
    return 0;
}

/* authd marks a removed agent's line in etc/client.keys with `!` before the name (rewrite + rename); the
 * new file keeps the old one's mode and owner. No file: nothing to mark. */
static int mark_key_removed(long long id, char *why, size_t cap) {
    FILE *in = fopen("etc/client.keys", "r");
    if (!in) return errno == ENOENT ? 0 : keys_fail(why, cap, "cannot read");
    struct stat st;
    if (fstat(fileno(in), &st) < 0) {
        fclose(in);
        return keys_fail(why, cap, "cannot stat");
    }
    const char *tmp = "etc/client.keys.sim-tmp";
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    FILE *out = fd >= 0 ? fdopen(fd, "w") : NULL;
    if (!out || fchmod(fd, st.st_mode & 07777) < 0 || fchown(fd, st.st_uid, st.st_gid) < 0) {
        int e = errno;
        if (out) fclose(out);
        else if (fd >= 0) close(fd);
        if (fd >= 0) unlink(tmp);
        fclose(in);
        errno = e;
        return keys_fail(why, cap, "cannot rewrite");
    }
    char line[1024];
    while (fgets(line, sizeof line, in)) {
        char *sp = strchr(line, ' ');
        char *end;
        long long x = strtoll(line, &end, 10);
        if (sp && end == sp && x == id && sp[1] != '!' && sp[1] != '#') {
            *sp = 0;
            fprintf(out, "%s !%s", line, sp + 1);
        } else {
            fputs(line, out);
        }
    }
    fclose(in);
    if (fclose(out) != 0 || rename(tmp, "etc/client.keys") < 0) {
        int e = errno;
        unlink(tmp);
        errno = e;
        return keys_fail(why, cap, "cannot rewrite");
    }
    return 0;
}

/* The requests remoted sends for an agent (WAZUH-PROTOCOL.md §2), 4.x or 5.x: the same bytes for the
 * line commands and the load generator. `eip` is the address, already JSON-escaped. */
static void q_startup(char *q, size_t cap, long long id) {
    if (g_5x)
        snprintf(q, cap, "global update-keepalive {\"connection_status\":\"pending\",\"id\":%lld,\"sync_status\":\"synced\"}", id);
    else
        snprintf(q, cap, "global update-keepalive {\"id\":%lld,\"connection_status\":\"pending\",\"sync_status\":\"synced\"}", id);
}

/* What an agent reports about itself at its keepalive (its version, OS, labels; the node it is on, its
 * config sum): the real manager's defaults unless the line command's optional fifth field (hex of
 * `key=value` lines: version, config_sum, node, os_name, os_version, os_major, os_codename, os_platform,
 * os_uname, os_arch, label.<key>) says otherwise. An empty value leaves the member out. */
struct kdata {
    char version[128], config_sum[128], node[128];
    char os_name[256], os_version[128], os_major[64], os_codename[128], os_platform[128], os_uname[512], os_arch[128];
    char labels[4096]; /* the agent's own labels, `key:value` lines */
};

static void kdata_default(struct kdata *k) {
    memset(k, 0, sizeof *k);
    snprintf(k->version, sizeof k->version, "%s", g_5x ? "Wazuh v5.0.0" : "Wazuh v4.7.5");
    snprintf(k->config_sum, sizeof k->config_sum, "ab73af41699f13fdd81903b5f23d8d00");
    snprintf(k->node, sizeof k->node, "node01");
    snprintf(k->os_name, sizeof k->os_name, "Debian GNU/Linux");
    snprintf(k->os_version, sizeof k->os_version, "12");
    snprintf(k->os_major, sizeof k->os_major, "12");
    snprintf(k->os_codename, sizeof k->os_codename, "bookworm");
    snprintf(k->os_platform, sizeof k->os_platform, "debian");
    snprintf(k->os_uname, sizeof k->os_uname, "Linux |vm |6.18.44-fc-v782 |#1 SMP PREEMPT_DYNAMIC @0 |x86_64");
    snprintf(k->os_arch, sizeof k->os_arch, "x86_64");
}

/* The fifth field of a keepalive line; NULL, or why it is refused. */
static const char *kdata_parse(struct kdata *k, const char *hex) {
    static char text[8192];
    size_t hl = strlen(hex), n = hl / 2;
    if (hl % 2 || n >= sizeof text) return "the agent's data: an even number of hex digits, 8 KiB at most";
    for (size_t i = 0; i < n; i++) {
        int a = hexval(hex[2 * i]), b = hexval(hex[2 * i + 1]);
        if (a < 0 || b < 0) return "the agent's data: bad hex";
        text[i] = (char)(a * 16 + b);
    }
    text[n] = 0;
    char *save = NULL;
    for (char *l = strtok_r(text, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
        char *eq = strchr(l, '=');
        if (!eq) return "the agent's data: key=value lines";
        *eq = 0;
        const char *v = eq + 1;
        struct { const char *key; char *dst; size_t cap; } f[] = {
            {"version", k->version, sizeof k->version}, {"config_sum", k->config_sum, sizeof k->config_sum},
            {"node", k->node, sizeof k->node}, {"os_name", k->os_name, sizeof k->os_name},
            {"os_version", k->os_version, sizeof k->os_version}, {"os_major", k->os_major, sizeof k->os_major},
            {"os_codename", k->os_codename, sizeof k->os_codename}, {"os_platform", k->os_platform, sizeof k->os_platform},
            {"os_uname", k->os_uname, sizeof k->os_uname}, {"os_arch", k->os_arch, sizeof k->os_arch},
        };
        int done = 0;
        for (size_t i = 0; i < sizeof f / sizeof f[0] && !done; i++)
            if (!strcmp(l, f[i].key)) {
                if (strlen(v) >= f[i].cap) return "the agent's data: a value too long";
                snprintf(f[i].dst, f[i].cap, "%s", v);
                done = 1;
            }
        if (!done && !strncmp(l, "label.", 6) && l[6]) {
            size_t ll = strlen(k->labels);
            int w = snprintf(k->labels + ll, sizeof k->labels - ll, "%s:%s\n", l + 6, v);
            if (w < 0 || (size_t)w >= sizeof k->labels - ll) return "the agent's data: labels too long";
            done = 1;
        }
        if (!done) return "the agent's data: an unknown key";
    }
    return NULL;
}

/* remoted's update-agent-data for an agent (WAZUH-PROTOCOL §2, §9). `first`: the agent's first connection
 * (4.x: select-agent-group answered `ok [{}]`): no config_sum, merged_sum "x", group_config_status "not
 * synced" (§9, header 553 for id 3). 5.x: nlohmann::json's sorted keys and only these members. */
static void q_keepalive_ex(char *q, size_t cap, long long id, const char *ip, int first, const struct kdata *k) {
    static __thread struct sb o;
    if (!o.b && !(o.b = malloc(o.cap = 4096))) {
        snprintf(q, cap, "global update-agent-data {}");
        return;
    }
    o.len = 0;
    o.b[0] = 0;
#define KSTR(key, v) do { if ((v)[0]) { sb_add(&o, ",\"" key "\":"); sb_json_str(&o, v); } } while (0)
    if (g_5x) {
        sb_add(&o, "global update-agent-data {\"agent_ip\":");
        sb_json_str(&o, ip);
        sb_add(&o, ",\"connection_status\":\"active\",\"id\":%lld", id);
        KSTR("os_arch", k->os_arch);
        KSTR("os_codename", k->os_codename);
        KSTR("os_major", k->os_major);
        KSTR("os_name", k->os_name);
        KSTR("os_platform", k->os_platform);
        KSTR("os_uname", k->os_uname);
        KSTR("os_version", k->os_version);
        sb_add(&o, ",\"sync_status\":\"synced\"");
        KSTR("version", k->version);
        sb_add(&o, "}");
    } else {
        sb_add(&o, "global update-agent-data {\"id\":%lld", id);
        KSTR("version", k->version);
        if (first) sb_add(&o, ",\"merged_sum\":\"x\"");
        else {
            KSTR("config_sum", k->config_sum);
            sb_add(&o, ",\"merged_sum\":\"4a8724b20dee0124ff9656783c490c4e\"");
        }
        sb_add(&o, ",\"manager_host\":\"vm\"");
        KSTR("node_name", k->node);
        sb_add(&o, ",\"agent_ip\":");
        sb_json_str(&o, ip);
        /* The agent's own labels, then the hidden ones remoted adds. */
        char labels[8192];
        snprintf(labels, sizeof labels, "%s#\"_manager_hostname\":vm\n#\"_agent_ip\":%s\n#\"_node_name\":%s\n#\"_wazuh_version\":%s",
                 k->labels, ip, k->node, k->version);
        KSTR("labels", labels);
        sb_add(&o, ",\"connection_status\":\"active\",\"sync_status\":\"synced\",\"group_config_status\":\"%s\"",
               first ? "not synced" : "synced");
        KSTR("os_name", k->os_name);
        KSTR("os_version", k->os_version);
        KSTR("os_major", k->os_major);
        KSTR("os_codename", k->os_codename);
        KSTR("os_platform", k->os_platform);
        KSTR("os_uname", k->os_uname);
        KSTR("os_arch", k->os_arch);
        sb_add(&o, "}");
    }
#undef KSTR
    snprintf(q, cap, "%s", o.b);
}

static void q_keepalive(char *q, size_t cap, long long id, const char *ip) {
    struct kdata k;
    kdata_default(&k);
    q_keepalive_ex(q, cap, id, ip, 0, &k);
}

/* remoted at an agent's first connection (4.x): its groups set on a short connection, `default` if it has none. */
static void q_set_groups(char *q, size_t cap, long long id) {
    snprintf(q, cap, "global set-agent-groups {\"mode\":\"empty_only\",\"sync_status\":\"synced\",\"data\":[{\"id\":%lld,\"groups\":[\"default\"]}]}", id);
}

static void q_shutdown(char *q, size_t cap, long long id) {
    if (g_5x)
        snprintf(q, cap, "global update-connection-status {\"connection_status\":\"disconnected\",\"id\":%lld,\"status_code\":3,\"sync_status\":\"synced\"}", id);
    else
        snprintf(q, cap, "global update-connection-status {\"id\":%lld,\"connection_status\":\"disconnected\",\"sync_status\":\"synced\",\"status_code\":3}", id);
}

/* The first request of remoted's keepalive pair (4.7.5): the agent's groups, before its data. */
static void q_select_group(char *q, size_t cap, long long id) {
    snprintf(q, cap, "global select-agent-group %lld", id);
}

/* An agent address made of a number (the load generator's and reconnect's agents): 10.x.y.z. */
static void ip_tag(char *ip, size_t cap, long long tag) {
    snprintf(ip, cap, "10.%lld.%lld.%lld", (tag >> 16) & 255, (tag >> 8) & 255, tag & 255);
}

/* ------------------------------------------------------------------------ */
/* Load generator (make bench): `load <agents> <rate> <count> <max_ms> <threads> <status_permille> <first_id> <stamps|-> [frame|agent]`.
 * remoted's traffic at a steady rate of frames. A *frame* is what remoted writes to wazuh-db for one message of
 * one agent: frame k (0-based, k < count) is for agent first_id + k % agents, on one of `threads` long-lived
 * connections (remoted's workers each keep one). It is a keepalive except `status_permille` in 1000 —
 * in each thousand frames k = 1000j … 1000j+999, those whose (k % 1000 + 7j) % 1000 < status_permille: the
 * window moves with j, so that with agents a multiple of 1000 (10,000, 100,000) the status frames do not fall
 * on the same agents at every round (they did: 200 of 10,000 agents got nothing but status frames, the same
 * one each time, and after their first no status changed):
 *   - a keepalive is the pair a real 4.7.5 remoted sends (WAZUH-PROTOCOL.md §2, seen): `select-agent-group <id>`
 *     then `update-agent-data {…}` (→ active), each request waiting for its reply: two requests and two
 *     replies on the wire, exactly the `keepalive` line command's;
 *   - a status frame is one request: by turns for each agent, its shutdown (`update-connection-status`,
 *     → disconnected) and its startup (`update-keepalive … pending`), each a status change, and so is that
 *     agent's next keepalive (→ active).
 * Frame k is due at start + k/rate (rate 0: as fast as round trips go), and none is started after max_ms.
 * The keepalive's agent_ip is 10.x.y.z with k in its low 24 bits, so a subscriber can tell which frame an
 * event came from (`frame`, the default); with `agent` it is the agent's own, the same at every keepalive, as
 * a real agent's is (remoted then writes the same bytes every time: what the tap's fast path sees). The stamps file gets, per frame, two u64 (little-endian): CLOCK_MONOTONIC ns just before
 * the write of the request an event comes from (a keepalive's `update-agent-data`, a status frame's only
 * request), and the frame's time on the wire in ns, from its first request's write to its last reply's read
 * (a keepalive: both round trips; 0: not sent). Answers `ok <n> sent=… keepalives=… status=… requests=…
 * errors=… elapsed_ns=…`: frames sent, of them keepalives and status frames, requests written (a keepalive
 * counts two), requests that failed or were not answered `ok`. */
struct load {
    long agents, count, threads, permille, first_id;
    double rate;
    long long start_ns, end_ns;
    long next; /* atomic: the next frame to send */
    long keepalives, status, requests, errors;
    int ip_by_agent;
    uint64_t *stamps;
    unsigned char *turn; /* per agent (k % agents): its next status frame is a startup (1) or a shutdown (0) */
};

static long long mono_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (long long)t.tv_sec * 1000000000LL + t.tv_nsec;
}

/* One request of a load frame on *fd: 1 when wazuh-db answered `ok…`. A broken connection is reopened
 * (then *fd < 0 if wazuh-db is gone). */
static int load_request(int *fd, const char *q, char *reply, long *reqs, long *errs) {
    (*reqs)++;
    int r = wdb_query(*fd, q, reply, MAX_FRAME + 1);
    if (r == 0 && strncmp(reply, "ok", 2) == 0) return 1;
    (*errs)++;
    if (r < 0) {
        close(*fd);
        *fd = wdb_connect();
    }
    return 0;
}

static void *load_worker(void *arg) {
    struct load *L = arg;
    char *q = malloc(8192), *reply = malloc(MAX_FRAME + 1);
    int fd = wdb_connect();
    long ka = 0, st = 0, reqs = 0, errs = 0;
    if (!q || !reply || fd < 0) {
        __atomic_add_fetch(&L->errors, 1, __ATOMIC_RELAXED);
        goto out;
    }
    while (fd >= 0) {
        long k = __atomic_fetch_add(&L->next, 1, __ATOMIC_RELAXED);
        if (k >= L->count) break;
        long long now = mono_ns();
        if (now >= L->end_ns) break; /* behind schedule or not, nothing is sent after max_ms */
        if (L->rate > 0) {
            long long due = L->start_ns + (long long)((double)k * 1e9 / L->rate);
            if (due >= L->end_ns) break;
            if (due > now + 20000) { /* more than 20 µs early: sleep; else send now (small bursts) */
                struct timespec ts = {.tv_sec = due / 1000000000LL, .tv_nsec = due % 1000000000LL};
                while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
                    ;
            }
        }
        long slot = k % L->agents;
        long long id = L->first_id + slot;
        long m = (k % 1000 + 7 * ((k / 1000) % 1000)) % 1000;
        long long first, t0, t1;
        if (m < L->permille) {
            if (__atomic_fetch_xor(&L->turn[slot], 1, __ATOMIC_RELAXED) == 0) q_shutdown(q, 8192, id);
            else q_startup(q, 8192, id);
            st++;
            first = t0 = mono_ns();
            (void)load_request(&fd, q, reply, &reqs, &errs);
            t1 = mono_ns();
        } else {
            ka++;
            q_select_group(q, 8192, id);
            first = mono_ns();
            (void)load_request(&fd, q, reply, &reqs, &errs);
            if (fd < 0) break;
            char ip[32];
            ip_tag(ip, sizeof ip, L->ip_by_agent ? id : (long long)k);
            q_keepalive(q, 8192, id, ip);
            t0 = mono_ns();
            (void)load_request(&fd, q, reply, &reqs, &errs);
            t1 = mono_ns();
        }
        if (L->stamps) {
            L->stamps[2 * k] = (uint64_t)t0;
            L->stamps[2 * k + 1] = (uint64_t)(t1 - first);
        }
    }
out:
    __atomic_add_fetch(&L->keepalives, ka, __ATOMIC_RELAXED);
    __atomic_add_fetch(&L->status, st, __ATOMIC_RELAXED);
    __atomic_add_fetch(&L->requests, reqs, __ATOMIC_RELAXED);
    __atomic_add_fetch(&L->errors, errs, __ATOMIC_RELAXED);
    if (fd >= 0) close(fd);
    free(q);
    free(reply);
    return NULL;
}

/* Runs a `load` command line; writes the answer into out. */
static void run_load(const char *args, char *out, size_t cap) {
    struct load L = {0};
    long max_ms = 0;
    char path[4096] = "", ipmode[16] = "frame";
    if (sscanf(args, "%ld %lf %ld %ld %ld %ld %ld %4095s %15s", &L.agents, &L.rate, &L.count, &max_ms, &L.threads,
               &L.permille, &L.first_id, path, ipmode) < 8 || (strcmp(ipmode, "frame") && strcmp(ipmode, "agent")) ||
        L.agents < 1 || L.rate < 0 || L.count < 1 || L.count > (1L << 24) || max_ms < 1 || L.threads < 1 ||
        L.threads > 64 || L.permille < 0 || L.permille > 1000 || L.first_id < 1) {
        snprintf(out, cap, "err usage: load <agents> <rate> <count<=16777216> <max_ms> <threads<=64> <status_permille> <first_id>=1> <stamps|-> [frame|agent]");
        return;
    }
    L.ip_by_agent = !strcmp(ipmode, "agent");
    if (strcmp(path, "-") && !(L.stamps = calloc((size_t)L.count * 2, sizeof *L.stamps))) {
        snprintf(out, cap, "err out of memory");
        return;
    }
    /* k % agents < min(agents, count): one byte an agent the load reaches. */
    if (!(L.turn = calloc((size_t)(L.agents < L.count ? L.agents : L.count), 1))) {
        free(L.stamps);
        snprintf(out, cap, "err out of memory");
        return;
    }
    pthread_t th[64];
    long long created = mono_ns();
    L.start_ns = created + 1000000; /* 1 ms for the threads to connect */
    L.end_ns = L.start_ns + max_ms * 1000000LL;
    long started = 0;
    for (long i = 0; i < L.threads; i++)
        if (pthread_create(&th[started], NULL, load_worker, &L) == 0) started++; /* joined by index: only those made */
    for (long i = 0; i < started; i++) pthread_join(th[i], NULL);
    /* Paced frames are due from start_ns; unpaced ones go as soon as each thread has connected. */
    long long elapsed = mono_ns() - (L.rate > 0 ? L.start_ns : created);
    long sent = L.keepalives + L.status;
    if (L.stamps) {
        FILE *f = fopen(path, "wb");
        if (!f || fwrite(L.stamps, sizeof *L.stamps, (size_t)L.count * 2, f) != (size_t)L.count * 2) L.errors++;
        if (f) fclose(f);
        free(L.stamps);
    }
    free(L.turn);
    snprintf(out, cap, "sent=%ld keepalives=%ld status=%ld requests=%ld errors=%ld elapsed_ns=%lld", sent, L.keepalives,
             L.status, L.requests, L.errors, elapsed);
}

/* ------------------------------------------------------------------------ */
/* A manager restart as the agents come back (WAZUH-PROTOCOL.md §2, seen on 4.7.5): for each agent,
 * one remoted worker thread writes `update-keepalive … pending` (its startup message) on its own
 * connection, and ~gap later another worker, on another connection, the keepalive pair
 * (`select-agent-group`, then `update-agent-data … active`). The two threads are pinned to two CPUs,
 * so their writes go through two perf rings. `reconnect <agents> <first_id> <gap_us>`: the active pair
 * of an agent starts gap_us after its pending one started, whether or not that one's sendto returned
 * (a sender preempted inside sendto by the wazuh-db it woke returns late), as remoted's threads do.
 * Answers `ok <n> pending=… active=… errors=…`. */
struct reconnect {
    long agents, first_id, gap_us;
    long started; /* atomic: the pending request of the first `started` agents is being written */
    long pending, active; /* each written by its own thread */
    long errors;          /* atomic: both threads count theirs */
};

static void pin_to_cpu(long i) {
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET((int)(i % (n > 0 ? n : 1)), &set);
    (void)pthread_setaffinity_np(pthread_self(), sizeof set, &set);
}

static void *reconnect_pending(void *arg) {
    struct reconnect *R = arg;
    char q[512], *reply = malloc(MAX_FRAME + 1);
    int fd = wdb_connect();
    pin_to_cpu(0);
    for (long i = 0; i < R->agents && reply && fd >= 0; i++) {
        q_startup(q, sizeof q, R->first_id + i);
        __atomic_store_n(&R->started, i + 1, __ATOMIC_RELEASE);
        if (wdb_query(fd, q, reply, MAX_FRAME + 1) < 0 || strncmp(reply, "ok", 2)) __atomic_add_fetch(&R->errors, 1, __ATOMIC_RELAXED);
        else R->pending++;
    }
    __atomic_store_n(&R->started, R->agents, __ATOMIC_RELEASE);
    if (fd >= 0) close(fd);
    free(reply);
    return NULL;
}

static void *reconnect_active(void *arg) {
    struct reconnect *R = arg;
    char *q = malloc(8192), *reply = malloc(MAX_FRAME + 1);
    int fd = wdb_connect();
    pin_to_cpu(1);
    for (long i = 0; i < R->agents && q && reply && fd >= 0; i++) {
        while (__atomic_load_n(&R->started, __ATOMIC_ACQUIRE) <= i) sched_yield();
        struct timespec gap = {.tv_sec = R->gap_us / 1000000, .tv_nsec = (R->gap_us % 1000000) * 1000};
        while (nanosleep(&gap, &gap) == EINTR)
            ;
        long long id = R->first_id + i;
        char ip[32];
        ip_tag(ip, sizeof ip, id);
        q_select_group(q, 8192, id);
        int bad = wdb_query(fd, q, reply, MAX_FRAME + 1) < 0;
        q_keepalive(q, 8192, id, ip);
        if (bad || wdb_query(fd, q, reply, MAX_FRAME + 1) < 0 || strncmp(reply, "ok", 2)) __atomic_add_fetch(&R->errors, 1, __ATOMIC_RELAXED);
        else R->active++;
    }
    if (fd >= 0) close(fd);
    free(q);
    free(reply);
    return NULL;
}

static void run_reconnect(const char *args, char *out, size_t cap) {
    struct reconnect R = {0};
    if (sscanf(args, "%ld %ld %ld", &R.agents, &R.first_id, &R.gap_us) != 3 || R.agents < 1 || R.agents > 1000000 ||
        R.first_id < 1 || R.first_id > 999999999 || R.gap_us < 0 || R.gap_us > 1000000) {
        snprintf(out, cap, "err usage: reconnect <agents> <1<=first_id<=999999999> <gap_us<=1000000>");
        return;
    }
    pthread_t a, b;
    if (pthread_create(&a, NULL, reconnect_pending, &R) != 0) {
        snprintf(out, cap, "err pthread_create");
        return;
    }
    if (pthread_create(&b, NULL, reconnect_active, &R) != 0) {
        __atomic_store_n(&R.agents, 0, __ATOMIC_RELEASE);
        pthread_join(a, NULL);
        snprintf(out, cap, "err pthread_create");
        return;
    }
    pthread_join(a, NULL);
    pthread_join(b, NULL);
    snprintf(out, cap, "pending=%ld active=%ld errors=%ld", R.pending, R.active, R.errors);
}

/* ------------------------------------------------------------------------ */
/* remoted's background traffic (--bg-*, off by default; WAZUH-PROTOCOL §2).  */

/* One round trip on *fd, a long-lived connection opened on first use and, broken, opened again once
 * (wdbc_query_ex after wazuh-db restarts). */
static int conn_query(int *fd, const char *q, char *reply, size_t cap) {
    for (int attempt = 0; attempt < 2; attempt++) {
        if (*fd < 0 && (*fd = wdb_connect()) < 0) return -1;
        if (wdb_query(*fd, q, reply, cap) == 0) return 0;
        close(*fd);
        *fd = -1;
    }
    return -1;
}

/* The agents this remoted tracks: §2 says it polls "while it tracks any agent" and no more. Taken here
 * as every agent it has had a message from since it started (startup, keepalive), until that agent's
 * shutdown; a sweep by monitord is not told to remoted, so a silent agent stays tracked. Ids from
 * ID_INDEX up are not tracked. Written by the command thread only; the poll thread reads the count. */
static unsigned char g_tracked[ID_INDEX / 8];
static long g_ntracked;
static void track(long long id, int on) {
    if (id <= 0 || id >= ID_INDEX) return;
    unsigned char bit = (unsigned char)(1u << (id % 8)), *b = &g_tracked[id / 8];
    if (on && !(*b & bit)) {
        *b |= bit;
        __atomic_add_fetch(&g_ntracked, 1, __ATOMIC_RELEASE);
    } else if (!on && (*b & bit)) {
        *b &= (unsigned char)~bit;
        __atomic_sub_fetch(&g_ntracked, 1, __ATOMIC_RELEASE);
    }
}

/* --bg-poll-ms: `get-agents-by-connection-status <last> active node01 -1`, paged on `due` from last 0,
 * on a long-lived connection of its own (not a worker's), every interval while an agent is tracked;
 * the first one interval after the start. */
static void *remoted_bg_poll(void *arg) {
    (void)arg;
    int fd = -1;
    static char q[128], reply[MAX_FRAME + 1];
    for (;;) {
        sleep_ms(g_bg_poll_ms);
        if (__atomic_load_n(&g_ntracked, __ATOMIC_ACQUIRE) == 0) continue;
        for (long long last = 0, page = 0; page < 100000; page++) {
            snprintf(q, sizeof q, "global get-agents-by-connection-status %lld active node01 -1", last);
            if (conn_query(&fd, q, reply, sizeof reply) < 0) break;
            for (const char *r = strstr(reply, "\"id\":"); r; r = strstr(r + 5, "\"id\":")) last = strtoll(r + 5, NULL, 10);
            if (strncmp(reply, "due ", 4)) break;
        }
    }
    return NULL;
}

/* --bg-groups-ms: a new short connection (connect, one query, close) for get-distinct-groups, as at
 * the start, every interval (~10 s on 4.7.5); the first one interval after the start. */
static void *remoted_bg_groups(void *arg) {
    (void)arg;
    for (;;) {
        sleep_ms(g_bg_groups_ms);
        (void)short_query("global get-distinct-groups ");
    }
    return NULL;
}

/* --bg-workers: remoted's 4 worker threads. Each agent message (startup, keepalive, shutdown) goes to
 * the next one in turn, which sends its requests on its own long-lived connection (opened at its
 * first use) — a keepalive's select-agent-group and update-agent-data together, and the short
 * connection of a first connection's set-agent-groups from that thread too. Without the flag every
 * request goes on the process's one long-lived connection, as before. The command thread waits for
 * the worker, so one agent's messages still go in order, each on whichever connection its turn gave. */
#define REM_WORKERS 4
struct rem_worker {
    pthread_t t;
    sem_t go, done;
    int fd;
    const char *q;
    char *reply;
    size_t cap;
    int shortconn, rc;
};
static struct rem_worker g_rem_workers[REM_WORKERS];
static int g_rem_turn;

static void *rem_worker_main(void *arg) {
    struct rem_worker *w = arg;
    for (;;) {
        while (sem_wait(&w->go) < 0)
            ;
        if (w->shortconn) {
            int fd = wdb_connect();
            w->rc = fd < 0 ? -1 : wdb_query(fd, w->q, w->reply, w->cap);
            if (fd >= 0) close(fd);
        } else {
            w->rc = conn_query(&w->fd, w->q, w->reply, w->cap);
        }
        sem_post(&w->done);
    }
    return NULL;
}

/* An agent message's request: on this turn's worker (--bg-workers), else as before (the long-lived
 * connection, or a short one). -1 on failure, g_lq_err saying why. */
static int agent_query(const char *q, char *reply, size_t cap, int shortconn) {
    if (!g_bg_workers) {
        if (!shortconn) return long_query(q, reply, cap);
        g_lq_err = "wdb request failed";
        return short_query(q);
    }
    struct rem_worker *w = &g_rem_workers[g_rem_turn];
    w->q = q;
    w->reply = reply;
    w->cap = cap;
    w->shortconn = shortconn;
    sem_post(&w->go);
    while (sem_wait(&w->done) < 0)
        ;
    g_lq_err = "wdb request failed";
    return w->rc;
}

static void start_remoted_background(void) {
    pthread_t t;
    if (g_bg_workers) {
        for (int i = 0; i < REM_WORKERS; i++) {
            struct rem_worker *w = &g_rem_workers[i];
            w->fd = -1;
            sem_init(&w->go, 0, 0);
            sem_init(&w->done, 0, 0);
            if (pthread_create(&w->t, NULL, rem_worker_main, w) != 0) die("pthread_create: %s", strerror(errno));
            pthread_detach(w->t);
        }
    }
    if (g_bg_poll_ms > 0) {
        if (pthread_create(&t, NULL, remoted_bg_poll, NULL) != 0) die("pthread_create: %s", strerror(errno));
        pthread_detach(t);
    }
    if (g_bg_groups_ms > 0) {
        if (pthread_create(&t, NULL, remoted_bg_groups, NULL) != 0) die("pthread_create: %s", strerror(errno));
        pthread_detach(t);
    }
}

static void *remoted_loop(void *arg);

/* Commands read so far: the count the replies carry, whichever thread reads the next one. */
static unsigned long g_lines;

/* leader-exit: the command loop goes on in this thread once the process's first one has ended. */
static void *leader_exit_thread(void *arg) {
    pthread_join(*(pthread_t *)arg, NULL);
    printf("ok %lu %d\n", g_lines, gettid());
    fflush(stdout);
    return remoted_loop(NULL);
}

/* thread-exec: a thread other than the first execs the given program (a daemon of the home, say). */
static char *g_exec_path;
static void *thread_exec_thread(void *arg) {
    (void)arg;
    printf("ok %lu %d\n", g_lines, gettid());
    fflush(stdout);
    char *argv[] = {g_exec_path, "--home", (char *)g_home, "--no-reset", NULL};
    execv(g_exec_path, argv);
    _exit(127);
}

static int run_remoted(void) {
    signal(SIGPIPE, SIG_IGN);
    tcp_pair();
    /* Seen at remoted start on 4.7.5: two short connections, groups then reset. */
    if (short_query("global get-distinct-groups ") < 0) die("cannot reach wazuh-db at %s/%s", g_home, WDB_PATH);
    if (!g_no_reset && short_query("global reset-agents-connection synced") < 0) die("reset-agents-connection failed");
    start_remoted_background();
    /* Lets the harness know the start-up queries have been answered. */
    printf("ready\n");
    fflush(stdout);
    remoted_loop(NULL);
    return 0;
}

static void *remoted_loop(void *arg) {
    (void)arg;
    char *line = NULL;
    size_t lcap = 0;
    ssize_t ll;
    unsigned long n;
    static char q[8192], reply[MAX_FRAME + 1], msg[1024];
    while ((ll = getline(&line, &lcap, stdin)) >= 0) {
        while (ll > 0 && (line[ll - 1] == '\n' || line[ll - 1] == '\r')) line[--ll] = 0;
        char *cmdline = line + strspn(line, " \t");
        n = ++g_lines; /* every line is counted and answered, so the harness's count never drifts */
        char verb[16] = "", name[128] = "", ip[64] = "", eip[400];
        long long id = -1;
        int fields = sscanf(cmdline, "%15s %lld %127s %63s", verb, &id, name, ip);
        const char *err = NULL;

        /* The line commands that use the long-lived connection: none while raw frames are owed replies. */
        static const char *const on_long[] = {"startup", "keepalive", "shutdown", "disconnect", "poll-active", "agentinfo", "remove",
                                              "register", "rename", "refuse", "sync-set", "rawreq", "manager-info", "all-agents", NULL};
        const char *blocked = NULL;
        for (int i = 0; on_long[i] && !blocked; i++)
            if (!strcmp(verb, on_long[i])) blocked = raw_blocker();

        if (blocked) {
            err = blocked; /* nothing sent: no datagram, no key written either */
        } else if (!strcmp(verb, "quit")) {
            printf("ok %lu\n", n);
            fflush(stdout);
            exit(0); /* closes nothing, as the real daemon: wazuh-db just sees EOF */
        } else if (!strcmp(verb, "startup") || !strcmp(verb, "keepalive") || !strcmp(verb, "shutdown")) {
            if (fields != 4 || id < 0) {
                err = "usage: <verb> <id> <name> <ip>";
            } else {
                json_escape_into(eip, sizeof eip, ip);
                g_rem_turn = (g_rem_turn + 1) % REM_WORKERS; /* --bg-workers: the next worker's turn */
                if (!strcmp(verb, "startup")) {
                    snprintf(msg, sizeof msg, "1:[%03lld] (%s) any->wazuh-agent:ossec: Agent started: '%s->%s'.", id, name, name, ip);
                    send_datagram(msg);
                    send_tcp_frame("#!-agent ack ");
                    q_startup(q, sizeof q, id);
                    if (agent_query(q, reply, sizeof reply, 0) < 0) err = g_lq_err;
                } else if (!strcmp(verb, "keepalive")) {
                    /* select-agent-group, then update-agent-data. An agent without groups (never connected:
                     * `ok [{}]`) is at its first connection (4.x, seen on 4.7.5): remoted sets its groups on a
                     * short connection (set-agent-groups empty_only default) and sends the first form of
                     * update-agent-data. */
                    struct kdata k;
                    kdata_default(&k);
                    const char *extra = cmdline; /* the optional fifth field: the agent's own data */
                    for (int f = 0; f < 4; f++) {
                        extra += strspn(extra, " \t");
                        extra += strcspn(extra, " \t");
                    }
                    extra += strspn(extra, " \t");
                    if (*extra) err = kdata_parse(&k, extra);
                    if (!err) {
                        q_select_group(q, sizeof q, id);
                        if (agent_query(q, reply, sizeof reply, 0) < 0) err = g_lq_err;
                    }
                    int first = !err && !g_5x && !strcmp(reply, "ok [{}]");
                    if (first) {
                        q_set_groups(q, sizeof q, id);
                        if (agent_query(q, reply, sizeof reply, 1) < 0) err = "wdb request failed";
                    }
                    q_keepalive_ex(q, sizeof q, id, ip, first, &k);
                    /* A 4.x helper's request is at most 2,048 bytes (the NUL counted): a longer
                     * update-agent-data goes out cut, and wazuh-db answers err Invalid JSON (§2). */
                    if (g_nul && strlen(q) > 2047) q[2047] = 0;
                    if (!err && agent_query(q, reply, sizeof reply, 0) < 0) err = g_lq_err;
                    snprintf(msg, sizeof msg,
                             "1:[%03lld] (%s) %s->/var/log/auth.log:Jan  1 00:00:00 %s sshd[1234]: "
                             "Accepted publickey for root from 10.0.0.1 port 40000 ssh2", id, name, ip, name);
                    send_datagram(msg);
                } else {
                    snprintf(msg, sizeof msg, "1:[%03lld] (%s) any->wazuh-agent:ossec: Agent stopped: '%s->%s'.", id, name, name, ip);
                    send_datagram(msg);
                    q_shutdown(q, sizeof q, id);
                    if (agent_query(q, reply, sizeof reply, 0) < 0) err = g_lq_err;
                }
                if (!err && strncmp(reply, "ok", 2) != 0) err = "wazuh-db answered an error";
                /* Tracked once its message was handled (the poll never comes before its first request). */
                track(id, strcmp(verb, "shutdown") != 0);
            }
        } else if (!strcmp(verb, "manager-info")) {
            /* wazuh-modulesd at start (§9): the manager's own row, agent 000 — its name, then its data. */
            snprintf(q, sizeof q, "global update-agent-name {\"id\":0,\"name\":\"vm\"}"); /* sorted already */
            if (long_query(q, reply, sizeof reply) < 0) err = g_lq_err;
            else if (strncmp(reply, "ok", 2) != 0) err = "wazuh-db answered an error";
            if (!err) {
                if (g_5x)
                    snprintf(q, sizeof q,
                             "global update-agent-data {\"connection_status\":\"active\",\"group_config_status\":\"synced\",\"id\":0,"
                             "\"manager_host\":\"vm\",\"node_name\":\"node01\",\"os_arch\":\"x86_64\",\"os_codename\":\"bookworm\","
                             "\"os_major\":\"12\",\"os_name\":\"Debian GNU/Linux\",\"os_platform\":\"debian\","
                             "\"os_uname\":\"Linux |vm |6.18.44-fc-v782 |#1 SMP PREEMPT_DYNAMIC @0 |x86_64\",\"os_version\":\"12\","
                             "\"sync_status\":\"synced\",\"version\":\"Wazuh v5.0.0\"}");
                else
                    snprintf(q, sizeof q,
                             "global update-agent-data {\"id\":0,\"version\":\"Wazuh v4.7.5\",\"manager_host\":\"vm\",\"node_name\":\"node01\","
                             "\"connection_status\":\"active\",\"sync_status\":\"synced\",\"group_config_status\":\"synced\","
                             "\"os_name\":\"Debian GNU/Linux\",\"os_version\":\"12\",\"os_major\":\"12\",\"os_codename\":\"bookworm\","
                             "\"os_platform\":\"debian\",\"os_uname\":\"Linux |vm |6.18.44-fc-v782 |#1 SMP PREEMPT_DYNAMIC @0 |x86_64\","
                             "\"os_arch\":\"x86_64\"}");
                if (long_query(q, reply, sizeof reply) < 0) err = g_lq_err;
                else if (strncmp(reply, "ok", 2) != 0) err = "wazuh-db answered an error";
            }
        } else if (!strcmp(verb, "disconnect") || !strcmp(verb, "poll-active") || !strcmp(verb, "all-agents")) {
            /* monitord's sweep (`disconnect <threshold_ts>`), remoted's poll of the active agents, or
             * modulesd's get-all-agents: pages from last_id 0 while wazuh-db answers `due`; prints the ids. */
            int is_disc = !strcmp(verb, "disconnect"), is_all = !strcmp(verb, "all-agents");
            if (is_disc && (fields < 2 || id < 0)) {
                err = "usage: disconnect <threshold_ts>";
            } else {
                /* Every id, however many pages: the list grows as needed (a cut list would still say ok). */
                struct sb ids = {malloc(4096), 0, 4096};
                long long last = 0;
                int done = 0;
                if (!ids.b) err = "out of memory";
                else ids.b[0] = 0;
                for (int page = 0; page < 100000 && !err; page++) {
                    if (is_disc) snprintf(q, sizeof q, "global disconnect-agents %lld %lld synced", last, id);
                    else if (is_all) snprintf(q, sizeof q, "global get-all-agents last_id %lld", last);
                    else snprintf(q, sizeof q, "global get-agents-by-connection-status %lld active node01 -1", last);
                    if (long_query(q, reply, sizeof reply) < 0) { err = g_lq_err; break; }
                    int due = !strncmp(reply, "due ", 4);
                    if (!due && strncmp(reply, "ok ", 3) != 0) { err = "wazuh-db answered an error"; break; }
                    for (const char *r = strstr(reply, "\"id\":"); r; r = strstr(r + 5, "\"id\":")) {
                        long long x = strtoll(r + 5, NULL, 10);
                        last = x;
                        sb_add(&ids, "%s%lld", ids.len ? "," : "", x);
                    }
                    if (!due) {
                        done = 1;
                        break;
                    }
                }
                if (!err && !done) err = "wazuh-db kept answering due: 100000 pages";
                if (!err && is_disc && g_bg_monitord && ids.len) {
                    /* --bg-monitord: what 4.7's monitord does after a sweep that disconnected agents (§9,
                     * "global get-agent-info" after "disconnect-agents (hit)"): the disconnection alert of
                     * each, which asks `get-agent-info <id>` on the same long-lived connection and, the
                     * agent still disconnected, `find-agent {"name":…,"ip":<register_ip>}` (§9's next
                     * monitord frame: agent2, "any" — the row's name and register_ip). The protocol
                     * document is silent on the timing (4.7 waits agents_disconnection_alert_time, 0 by
                     * default, so the next loop): here at once, in the sweep's order, which is the least
                     * surprising. It is silent on the alert datagram that follows too: not sent. */
                    static char name[128], rip[64], ename[6 * 128], erip[200];
                    for (const char *p = ids.b; *p && !err;) {
                        long long x = strtoll(p, NULL, 10);
                        p += strcspn(p, ",");
                        if (*p == ',') p++;
                        snprintf(q, sizeof q, "global get-agent-info %lld", x);
                        if (long_query(q, reply, sizeof reply) < 0) { err = g_lq_err; break; }
                        const char *row = strchr(reply, '{');
                        if (strncmp(reply, "ok ", 3) || !row || !strstr(reply, "\"connection_status\":\"disconnected\"") ||
                            !json_str(row, "name", name, sizeof name) || !json_str(row, "register_ip", rip, sizeof rip))
                            continue; /* active again, or gone: no alert, no find-agent */
                        json_escape_into(ename, sizeof ename, name);
                        json_escape_into(erip, sizeof erip, rip);
                        if (g_5x) snprintf(q, sizeof q, "global find-agent {\"ip\":\"%s\",\"name\":\"%s\"}", erip, ename);
                        else snprintf(q, sizeof q, "global find-agent {\"name\":\"%s\",\"ip\":\"%s\"}", ename, erip);
                        if (long_query(q, reply, sizeof reply) < 0) err = g_lq_err;
                    }
                }
                if (!err) {
                    printf(ids.len ? "ok %lu %s\n" : "ok %lu\n", n, ids.b);
                    fflush(stdout);
                    free(ids.b);
                    continue;
                }
                free(ids.b);
            }
        } else if (!strcmp(verb, "agentinfo") || !strcmp(verb, "remove")) {
            /* monitord/analysisd/authd `get-agent-info <id>`; authd's removal `delete-agent <id>`
             * (the entry in etc/client.keys is marked removed with `!` first, as authd does). */
            if (fields < 2 || id < 0) {
                err = "usage: agentinfo|remove <id>";
            } else {
                static char why[300];
                if (!strcmp(verb, "remove")) {
                    snprintf(q, sizeof q, "global delete-agent %lld", id);
                } else {
                    snprintf(q, sizeof q, "global get-agent-info %lld", id);
                }
                if (!strcmp(verb, "remove") && mark_key_removed(id, why, sizeof why) < 0) {
                    err = why;
                } else if (long_query(q, reply, sizeof reply) < 0) {
                    err = g_lq_err;
                } else {
                    printable(reply);
                    printf("ok %lu %s\n", n, reply);
                    fflush(stdout);
                    continue;
                }
            }
        } else if (!strcmp(verb, "register")) {
            /* authd: a new key, a line in etc/client.keys, then insert-agent (4.7.5's fields; 5.x sorted).
             * Prints the key so tests can prove it never leaves the tap. */
            if (fields != 4 || id <= 0) {
                err = "usage: register <id> <name> <ip>";
            } else {
                char key[65];
                random_key(key);
                long long now = (long long)time(NULL);
                json_escape_into(eip, sizeof eip, ip);
                char ename[6 * 128];
                json_escape_into(ename, sizeof ename, name);
                static char why[300];
                if (append_key(id, name, ip, key, why, sizeof why) < 0) {
                    err = why;
                    goto answer;
                }
                if (g_5x)
                    snprintf(q, sizeof q, "global insert-agent {\"date_add\":%lld,\"id\":%lld,\"internal_key\":\"%s\",\"name\":\"%s\",\"register_ip\":\"%s\"}", now, id, key, ename, eip);
                else
                    snprintf(q, sizeof q, "global insert-agent {\"id\":%lld,\"name\":\"%s\",\"register_ip\":\"%s\",\"internal_key\":\"%s\",\"date_add\":%lld}", id, ename, eip, key, now);
                if (long_query(q, reply, sizeof reply) < 0) err = g_lq_err;
                else if (strncmp(reply, "ok", 2) != 0) err = "wazuh-db answered an error";
                else {
                    printf("ok %lu %s\n", n, key);
                    fflush(stdout);
                    continue;
                }
            }
        } else if (!strcmp(verb, "rename")) {
            if (fields < 3 || id < 0) {
                err = "usage: rename <id> <name>";
            } else {
                char ename[6 * 128];
                json_escape_into(ename, sizeof ename, name);
                snprintf(q, sizeof q, "global update-agent-name {\"id\":%lld,\"name\":\"%s\"}", id, ename);
                if (long_query(q, reply, sizeof reply) < 0) err = g_lq_err;
                else if (strncmp(reply, "ok", 2) != 0) err = "wazuh-db answered an error";
            }
        } else if (!strcmp(verb, "refuse")) {
            /* remoted refuses an agent for its version: update-status-code, code 1. */
            if (fields < 2 || id < 0) {
                err = "usage: refuse <id>";
            } else {
                if (g_5x)
                    snprintf(q, sizeof q, "global update-status-code {\"id\":%lld,\"status_code\":1,\"sync_status\":\"synced\",\"version\":\"Wazuh v5.1.0\"}", id);
                else
                    snprintf(q, sizeof q, "global update-status-code {\"id\":%lld,\"status_code\":1,\"version\":\"Wazuh v4.15.0\",\"sync_status\":\"synced\"}", id);
                if (long_query(q, reply, sizeof reply) < 0) err = g_lq_err;
                else if (strncmp(reply, "ok", 2) != 0) err = "wazuh-db answered an error";
            }
        } else if (!strcmp(verb, "sync-set")) {
            /* wazuh-clusterd (comm python3) on the master: a worker's agent row. */
            char st[24] = "";
            char node[64] = "";
            if (sscanf(cmdline, "%*s %lld %127s %63s %23s %63s", &id, name, ip, st, node) != 5 || id <= 0) {
                err = "usage: sync-set <id> <name> <ip> <status> <node>";
            } else {
                char ename[6 * 128];
                json_escape_into(eip, sizeof eip, ip);
                json_escape_into(ename, sizeof ename, name);
                snprintf(q, sizeof q,
                         "global sync-agent-info-set [{\"id\":%lld,\"name\":\"%s\",\"ip\":\"%s\",\"version\":\"Wazuh v4.7.5\","
                         "\"node_name\":\"%s\",\"last_keepalive\":%lld,\"connection_status\":\"%s\",\"disconnection_time\":0,"
                         "\"status_code\":0,\"labels\":[]}]",
                         id, ename, eip, node, (long long)time(NULL), st);
                if (long_query(q, reply, sizeof reply) < 0) err = g_lq_err;
                else if (strncmp(reply, "ok", 2) != 0) err = "wazuh-db answered an error";
            }
        } else if (!strcmp(verb, "raw")) {
            /* Arbitrary bytes, unframed, in one write: for malformed/split-frame tests. */
            const char *h = cmdline + 3;
            while (*h == ' ') h++;
            size_t hl = strlen(h);
            /* Up to 4 MiB: a write larger than the socket holds stays in its sendto until wazuh-db reads. */
            char *bytes = hl && hl % 2 == 0 && hl / 2 <= (4u << 20) ? malloc(hl / 2) : NULL;
            if (!bytes) {
                err = "raw wants an even number of hex digits (4 MiB at most)";
            } else {
                size_t bl = hl / 2;
                for (size_t i = 0; i < bl && !err; i++) {
                    int a = hexval(h[2 * i]), b = hexval(h[2 * i + 1]);
                    if (a < 0 || b < 0) err = "bad hex";
                    else bytes[i] = (char)(a * 16 + b);
                }
                if (!err) {
                    if (g_wdb < 0 && (g_wdb = wdb_connect()) >= 0) raw_forget();
                    struct rawwalk w = g_rw;
                    long frames = raw_walk(&w, (const unsigned char *)bytes, bl);
                    /* Replies that may come during the write are read as they come (see g_stash). */
                    struct raw_reader R = {.fd = g_wdb};
                    pthread_t rt;
                    int reading = g_wdb >= 0 && g_raw_owed + frames > 0 && pthread_create(&rt, NULL, raw_reader_main, &R) == 0;
                    /* A write stuck longer than this (the stash full, or wazuh-db stopped) fails, never hangs. */
                    struct timeval tmo = {.tv_sec = 10};
                    if (g_wdb >= 0) (void)setsockopt(g_wdb, SOL_SOCKET, SO_SNDTIMEO, &tmo, sizeof tmo);
                    int sent = g_wdb >= 0 ? send_part(g_wdb, (const unsigned char *)bytes, bl) : -1;
                    if (g_wdb >= 0) {
                        struct timeval none = {0};
                        (void)setsockopt(g_wdb, SOL_SOCKET, SO_SNDTIMEO, &none, sizeof none);
                    }
                    if (reading) {
                        __atomic_store_n(&R.done, 1, __ATOMIC_RELEASE);
                        pthread_join(rt, NULL);
                    }
                    if (sent < 0) {
                        err = "send failed";
                        if (g_wdb >= 0) close(g_wdb); /* broken: the next request opens another */
                        g_wdb = -1;
                        raw_forget();
                    } else {
                        g_rw = w;
                        g_raw_owed += frames;
                    }
                }
                free(bytes);
            }
        } else if (!strcmp(verb, "rawv")) {
            /* `rawv <pieces> <hex>`: the bytes in one writev (sendmsg with --syscall sendmsg) of that
             * many iovecs, as near equal as they go; reads nothing (see recv). */
            char *end = NULL;
            long pieces = strtol(cmdline + 4, &end, 10);
            const char *h = end;
            while (h && *h == ' ') h++;
            size_t hl = h ? strlen(h) : 0, bl = hl / 2;
            char *bytes = hl && hl % 2 == 0 && bl <= (4u << 20) ? malloc(bl) : NULL;
            struct iovec *iov = pieces >= 1 && pieces <= 1024 && (size_t)pieces <= bl ? calloc((size_t)pieces, sizeof *iov) : NULL;
            if (!bytes || !iov) {
                err = "usage: rawv <pieces 1..1024> <hex, at least one byte a piece>";
            } else {
                for (size_t i = 0; i < bl && !err; i++) {
                    int a = hexval(h[2 * i]), b = hexval(h[2 * i + 1]);
                    if (a < 0 || b < 0) err = "bad hex";
                    else bytes[i] = (char)(a * 16 + b);
                }
                for (long i = 0, at = 0; i < pieces; i++) {
                    size_t len = bl / (size_t)pieces + ((size_t)i < bl % (size_t)pieces);
                    iov[i].iov_base = bytes + at;
                    iov[i].iov_len = len;
                    at += (long)len;
                }
                if (!err) {
                    struct msghdr m = {.msg_iov = iov, .msg_iovlen = (size_t)pieces};
                    if (g_wdb < 0 && (g_wdb = wdb_connect()) >= 0) raw_forget();
                    ssize_t w = g_wdb < 0 ? -1 : g_syscall == SYS_SENDMSG ? sendmsg(g_wdb, &m, 0) : writev(g_wdb, iov, (int)pieces);
                    if (w != (ssize_t)bl) {
                        err = "send failed";
                    } else {
                        /* The replies owed, as for raw: recv reads them in order. */
                        struct rawwalk rw = g_rw;
                        g_raw_owed += raw_walk(&rw, (const unsigned char *)bytes, bl);
                        g_rw = rw;
                    }
                }
            }
            free(bytes);
            free(iov);
        } else if (!strcmp(verb, "recv")) {
            /* The reply to the next frame written with `raw` (in order): 5 s at most. */
            struct pollfd pfd = {.fd = g_wdb, .events = POLLIN};
            unsigned char hdr[4];
            uint32_t rlen = 0;
            if (g_wdb < 0 || g_raw_owed == 0) {
                err = "no reply owed: no complete raw frame is waiting for one";
            } else if (g_stash.n > 0) { /* read while the raw write was in flight */
                char *r = g_stash.items[g_stash.at];
                g_stash.at = (g_stash.at + 1) % g_stash.cap;
                g_stash.n--;
                g_stash.bytes -= strlen(r);
                g_raw_owed--;
                snprintf(reply, sizeof reply, "%s", r);
                free(r);
                printable(reply);
                printf("ok %lu %s\n", n, reply);
                fflush(stdout);
                continue;
            } else if (poll(&pfd, 1, 5000) != 1) {
                err = "no reply within 5 s"; /* still owed: a later recv may read it */
            } else if (recv_exact(g_wdb, hdr, 4) < 0 || (rlen = get_le32(hdr)) > MAX_FRAME || recv_exact(g_wdb, reply, rlen) < 0) {
                err = "no reply: the connection ended";
                close(g_wdb);
                g_wdb = -1;
                raw_forget();
            } else {
                g_raw_owed--;
                reply[rlen] = 0;
                printable(reply);
                printf("ok %lu %s\n", n, reply);
                fflush(stdout);
                continue;
            }
        } else if (!strcmp(verb, "home")) {
            /* Another home from now on: the connection to wazuh-db is closed and the next request opens
             * one to that home's socket, most likely on the same descriptor (the lowest free). */
            const char *dir = cmdline + 4;
            while (*dir == ' ') dir++;
            if (!*dir || chdir(dir) < 0) {
                err = "cannot enter that home";
            } else {
                if (g_wdb >= 0) close(g_wdb);
                g_wdb = -1;
                raw_forget();
                if (g_queue >= 0) close(g_queue);
                g_queue = -1;
                g_home = strdup(dir);
            }
        } else if (!strcmp(verb, "leader-exit")) {
            /* main() ends with pthread_exit while another thread goes on with the commands (and the
             * connection to wazuh-db): the process lives on with its leader a zombie. That thread
             * answers, with its id, once the first thread has ended. */
            static pthread_t first;
            pthread_t th;
            first = pthread_self();
            if (pthread_create(&th, NULL, leader_exit_thread, &first)) {
                err = "pthread_create failed";
            } else {
                pthread_exit(NULL);
            }
        } else if (!strcmp(verb, "thread-exec")) {
            /* A thread other than the first execs <path> (with --home and --no-reset): it answers with
             * its own id first. The program then reads the next commands, counting from 1 again. */
            const char *p = cmdline + 11;
            while (*p == ' ') p++;
            pthread_t th;
            if (!*p) {
                err = "usage: thread-exec <path>";
            } else {
                g_exec_path = strdup(p);
                if (pthread_create(&th, NULL, thread_exec_thread, NULL)) err = "pthread_create failed";
                else for (;;) pause(); /* the exec ends this thread */
            }
        } else if (!strcmp(verb, "load") || !strcmp(verb, "reconnect")) {
            char res[512];
            if (!strcmp(verb, "load")) run_load(cmdline + 4, res, sizeof res);
            else {
                run_reconnect(cmdline + 9, res, sizeof res);
                long ra = 0, rf = 0; /* the agents it brought back are tracked (for --bg-poll-ms) */
                if (strncmp(res, "err ", 4) && sscanf(cmdline + 9, "%ld %ld", &ra, &rf) == 2)
                    for (long k = 0; k < ra; k++) track(rf + k, 1);
            }
            if (!strncmp(res, "err ", 4)) printf("err %lu %s\n", n, res + 4);
            else printf("ok %lu %s\n", n, res);
            fflush(stdout);
            continue;
        } else if (!strcmp(verb, "rawreq")) {
            const char *text = cmdline + 6;
            if (*text == ' ') text++;
            if (long_query(text, reply, sizeof reply) < 0) {
                err = g_lq_err;
            } else {
                printable(reply);
                printf("ok %lu %s\n", n, reply);
                fflush(stdout);
                continue;
            }
        } else {
            err = *cmdline ? "unknown command" : "empty command";
        }
    answer:
        if (err) {
            if (!strcmp(err, "wazuh-db answered an error")) {
                printable(reply);
                printf("err %lu %s: %s\n", n, err, reply);
            } else {
                printf("err %lu %s\n", n, err);
            }
        } else {
            printf("ok %lu\n", n);
        }
        fflush(stdout);
    }
    exit(0); /* stdin closed: the process ends, whichever thread reads it */
}

int main(int argc, char **argv) {
    char *argv0 = strdup(argv[0]);
    const char *role = basename(argv0);
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--home") && i + 1 < argc) g_home = argv[++i];
        else if (!strcmp(argv[i], "--no-reset")) g_no_reset = 1;
        else if (!strcmp(argv[i], "--5x")) g_5x = 1;
        else if (!strcmp(argv[i], "--python")) g_nul = 0;
        else if (!strcmp(argv[i], "--split") && i + 1 < argc) {
            const char *v = argv[++i];
            char *end;
            if (!strcmp(v, "none")) g_split = SPLIT_NONE;
            else if (!strcmp(v, "halves")) g_split = SPLIT_HALVES;
            else if (!strncmp(v, "random:", 7) && v[7] && (g_split_seed = strtoull(v + 7, &end, 10), !*end)) g_split = SPLIT_RANDOM;
            else die("--split: none, halves or random:<seed>, not %s", v);
        }
        else if (!strcmp(argv[i], "--syscall") && i + 1 < argc) {
            const char *v = argv[++i];
            if (!strcmp(v, "sendto")) g_syscall = SYS_SENDTO;
            else if (!strcmp(v, "write")) g_syscall = SYS_WRITE;
            else if (!strcmp(v, "writev")) g_syscall = SYS_WRITEV;
            else if (!strcmp(v, "sendmsg")) g_syscall = SYS_SENDMSG;
            else die("--syscall: sendto, write, writev or sendmsg, not %s", v);
        }
        else if (!strcmp(argv[i], "--cpu-per-request-us") && i + 1 < argc) {
            /* wazuh-db: the CPU each request costs before it is answered (see burn_cpu); 0: none. */
            char *end;
            double us = strtod(argv[++i], &end);
            if (*end || !(us >= 0 && us <= 1000000)) die("--cpu-per-request-us wants a number of microseconds from 0 to 1000000");
            g_cost_ns = (long long)(us * 1000.0 + 0.5);
        }
        else if ((!strcmp(argv[i], "--bg-poll-ms") || !strcmp(argv[i], "--bg-groups-ms")) && i + 1 < argc) {
            char *end;
            long ms = strtol(argv[i + 1], &end, 10);
            if (*end || ms < 1 || ms > 3600000) die("%s wants milliseconds from 1 to 3600000", argv[i]);
            *(!strcmp(argv[i], "--bg-poll-ms") ? &g_bg_poll_ms : &g_bg_groups_ms) = ms;
            i++;
        }
        else if ((!strcmp(argv[i], "--late-reply") || !strcmp(argv[i], "--late-read")) && i + 2 < argc) {
            char *end;
            int read = !strcmp(argv[i], "--late-read");
            const char *m = argv[++i];
            long us = strtol(argv[++i], &end, 10);
            if (!*m || *end || us < 1 || us > 1000000) die("%s wants a text and microseconds from 1 to 1000000", argv[i - 2]);
            *(read ? &g_lateread_match : &g_late_match) = m;
            *(read ? &g_lateread_us : &g_late_us) = us;
        }
        else if (!strcmp(argv[i], "--bg-workers")) g_bg_workers = 1;
        else if (!strcmp(argv[i], "--bg-monitord")) g_bg_monitord = 1;
        else if (!strcmp(argv[i], "--state") && i + 1 < argc) g_state = argv[++i];
        else if (!strcmp(argv[i], "--page-rows") && i + 1 < argc) {
            g_page_rows = atol(argv[++i]);
            if (g_page_rows < 1) die("--page-rows wants a positive number");
        }
        else die("unknown argument: %s", argv[i]);
    }
    if (!g_home) die("--home DIR is required");
    /* A harness that dies without cleaning up must not leave daemons behind:
     * WAZUH_SIM_PARENT=<pid> ties this process's life to that parent. SIGTERM,
     * so wazuh-db still unlinks its socket. */
    const char *parent = getenv("WAZUH_SIM_PARENT");
    if (parent && *parent) {
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        if ((long)getppid() != atol(parent)) exit(0);
    }
    if (chdir(g_home) < 0) die("chdir %s: %s", g_home, strerror(errno));

    if (!strncmp(role, "wazuh-manager-", 14)) g_5x = 1;
    if (g_5x || !strcmp(role, "python3")) g_nul = 0;
    if (!strcmp(role, "wazuh-db") || !strcmp(role, "wazuh-manager-db")) run_db();
    if (!strcmp(role, "wazuh-analysisd") || !strcmp(role, "wazuh-manager-analysisd")) run_analysisd();
    return run_remoted();
}
