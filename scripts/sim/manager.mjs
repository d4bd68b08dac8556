// Drives the Wazuh manager simulator (wazuh-sim.c) for tests and the demo.
//
// Client processes (wazuh-remoted and any other client name) read one command
// per line on stdin and answer exactly one line, `ok <n>[ <reply>]` or
// `err <n> <message>`, n being the 1-based command count; so replies are
// matched to commands by number, never by arrival order assumptions.
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import readline from 'node:readline';

const TIMEOUT_MS = 5000;

/**
 * An agent. Besides id, name and ip, what it reports at its keepalives (the real manager's defaults when
 * left out: Wazuh v4.7.5 / v5.0.0, Debian 12, node01): version, os, labels (its own; remoted adds the
 * hidden `#"_…"` ones), node (node_name), configSum.
 * @typedef {{ id: number, name: string, ip: string, version?: string, node?: string, configSum?: string,
 *   os?: { name?: string, version?: string, major?: string, codename?: string, platform?: string, uname?: string, arch?: string },
 *   labels?: Record<string, string> }} SimAgent
 */
/** @typedef {{ code: number | null, signal: NodeJS.Signals | null }} ExitInfo */

/** Every child still running, killed on any exit of this Node process. */
const live = new Set();
process.on('exit', () => {
  for (const child of live) {
    try {
      child.kill('SIGKILL');
    } catch {
      // already gone
    }
  }
});

/**
 * @template T
 * @param {Promise<T>} p
 * @param {number} ms
 * @param {string} what
 * @returns {Promise<T>}
 */
function withTimeout(p, ms, what) {
  /** @type {NodeJS.Timeout | undefined} */
  let timer;
  const t = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: timed out after ${ms} ms`)), ms);
  });
  return Promise.race([p, t]).finally(() => clearTimeout(timer));
}

/** @param {SimAgent} agent */
function agentArgs(agent) {
  if (!agent || !Number.isInteger(agent.id) || agent.id < 0) throw new TypeError('agent.id must be an integer >= 0');
  for (const k of /** @type {const} */ (['name', 'ip'])) {
    const v = agent[k];
    // The line protocol splits on blanks: a blank inside would shift the fields.
    if (typeof v !== 'string' || v === '' || /\s/.test(v)) throw new TypeError(`agent.${k} must be a non-empty string without blanks`);
  }
  return `${agent.id} ${agent.name} ${agent.ip}`;
}

/**
 * The keepalive line's fifth field: the agent's own data, `key=value` lines in hex ('' when it has none).
 * @param {SimAgent} agent
 */
function agentData(agent) {
  /** @type {string[]} */
  const lines = [];
  /** @param {string} k @param {unknown} v */
  const add = (k, v) => {
    if (v === undefined) return;
    if (typeof v !== 'string' || /[\n\0]/.test(v)) throw new TypeError(`agent ${k} must be a string without newlines`);
    lines.push(`${k}=${v}`);
  };
  add('version', agent.version);
  add('node', agent.node);
  add('config_sum', agent.configSum);
  for (const [k, v] of Object.entries(agent.os ?? {})) {
    if (!['name', 'version', 'major', 'codename', 'platform', 'uname', 'arch'].includes(k)) throw new TypeError(`agent.os.${k} is not an os field`);
    add(`os_${k}`, v);
  }
  for (const [k, v] of Object.entries(agent.labels ?? {})) {
    if (k === '' || /[:=\n\0]/.test(k)) throw new TypeError(`label key ${JSON.stringify(k)}: no ':', '=' or newline`);
    add(`label.${k}`, v);
  }
  return lines.length ? Buffer.from(lines.join('\n')).toString('hex') : '';
}

/** @param {number} id */
function checkId(id) {
  if (!Number.isSafeInteger(id) || id < 0) throw new TypeError('id must be an integer >= 0');
  return id;
}

/** A client's --split: 'none', 'halves' or 'random:<seed>'. @param {string} split */
/**
 * lateReply / lateRead: undefined (none: null), or { match: a text, us: microseconds from 1 to 1,000,000 }.
 * @param {string} name @param {unknown} late @returns {{ match: string, us: number } | null}
 */
function checkLate(name, late) {
  if (late === undefined) return null;
  const l = /** @type {{ match?: unknown, us?: unknown } | null} */ (late);
  if (typeof l?.match !== 'string' || !l.match || l.match.startsWith('-') || !Number.isSafeInteger(l.us) || /** @type {number} */ (l.us) < 1 || /** @type {number} */ (l.us) > 1e6) {
    throw new TypeError(`${name} must be { match: a text, us: microseconds from 1 to 1000000 }`);
  }
  return /** @type {{ match: string, us: number }} */ (late);
}

function checkSplit(split) {
  if (typeof split !== 'string' || !/^(none|halves|random:\d{1,19})$/.test(split)) throw new TypeError(`split must be 'none', 'halves' or 'random:<seed>', not ${split}`);
  return split;
}

/**
 * The manager's background traffic at the intervals seen on a 4.7.5 manager (WAZUH-PROTOCOL §2): remoted's
 * poll of the active agents every 5 s, its get-distinct-groups every ~10 s, analysisd's poll every 5 s.
 */
export const REAL_BACKGROUND = Object.freeze({ remotedPollMs: 5000, groupsMs: 10000, analysisdPollMs: 5000 });

/**
 * SimManager's `background`: null (off), or each interval in ms (true: the real ones; an object: its
 * members, the real ones for those it leaves out).
 * @param {unknown} bg
 * @returns {Readonly<{ remotedPollMs: number, groupsMs: number, analysisdPollMs: number }> | null}
 */
function checkBackground(bg) {
  if (bg === undefined || bg === false) return null;
  if (bg === true) return REAL_BACKGROUND;
  if (typeof bg !== 'object' || bg === null || Array.isArray(bg)) throw new TypeError('background must be true, false or { remotedPollMs, groupsMs, analysisdPollMs }');
  /** @type {Record<string, number>} */
  const out = { ...REAL_BACKGROUND };
  for (const [k, v] of Object.entries(bg)) {
    if (!(k in REAL_BACKGROUND)) throw new TypeError(`background.${k} is not one of ${Object.keys(REAL_BACKGROUND).join(', ')}`);
    if (v === undefined) continue;
    if (!Number.isSafeInteger(v) || v < 1 || v > 3_600_000) throw new TypeError(`background.${k} must be an integer number of milliseconds from 1 to 3600000`);
    out[k] = v;
  }
  return /** @type {any} */ (Object.freeze(out));
}

/** `1,2,3` (or nothing) → [1, 2, 3]. @param {string} text */
function idList(text) {
  return text === '' ? [] : text.split(',').map(Number);
}

/** One simulator process, with its stdout turned into awaited replies. */
export class SimProcess {
  /**
   * @param {string} binDir
   * @param {string} name  basename of the copy to run; decides the role
   * @param {string} home
   * @param {string[]} [extraArgs]
   * @param {{ uid?: number, gid?: number, chroot?: string }} [user] run as this user (default: the caller's);
   *   chroot: run inside this root directory (a container's), binDir and home then being paths in it
   */
  constructor(binDir, name, home, extraArgs = [], user = {}) {
    this.name = name;
    this.stderr = '';
    /** @type {ExitInfo | null} */
    this.exitInfo = null;
    this.count = 0;
    /** @type {Map<number, { resolve: (s: string) => void, reject: (e: Error) => void }>} */
    this.pending = new Map();
    /** @type {Array<() => void>} */
    this.readyWaiters = [];
    this.isReady = false;

    const exe = path.join(binDir, name);
    // In a container's root: chroot(8) execs the daemon there, with the container's paths.
    const [cmd, argv] = user.chroot ? ['chroot', [user.chroot, exe]] : [exe, []];
    const child = spawn(cmd, [...argv, '--home', home, ...extraArgs], {
      cwd: user.chroot ? '/' : home,
      stdio: ['pipe', 'pipe', 'pipe'],
      env: { ...process.env, WAZUH_SIM_PARENT: String(process.pid) },
      ...(user.uid !== undefined && { uid: user.uid }),
      ...(user.gid !== undefined && { gid: user.gid }),
    });
    this.child = child;
    live.add(child);
    child.stdin.on('error', () => {}); // EPIPE after the child died; reported through 'exit'
    child.stderr.on('data', (d) => {
      if (this.stderr.length < 65536) this.stderr += d.toString();
    });

    /** @type {Promise<ExitInfo>} */
    this.exited = new Promise((resolve) => {
      /** @param {ExitInfo} info */
      const done = (info) => {
        if (this.exitInfo) return;
        this.exitInfo = info;
        live.delete(child);
        const err = new Error(`${name} exited (code ${info.code}, signal ${info.signal})${this.stderr ? `: ${this.stderr.trim()}` : ''}`);
        for (const p of this.pending.values()) p.reject(err);
        this.pending.clear();
        resolve(info);
      };
      child.once('exit', (code, signal) => done({ code, signal }));
      child.once('error', (e) => {
        this.stderr += String(e);
        done({ code: null, signal: null });
      });
    });

    readline.createInterface({ input: child.stdout }).on('line', (line) => this.#onLine(line));
  }

  /** @returns {number | undefined} */
  get pid() {
    return this.child.pid;
  }

  /** @param {string} line */
  #onLine(line) {
    if (line === 'ready') {
      this.isReady = true;
      for (const w of this.readyWaiters.splice(0)) w();
      return;
    }
    const m = /^(ok|err) (\d+)(?: (.*))?$/.exec(line);
    if (!m) return;
    const n = Number(m[2]);
    const p = this.pending.get(n);
    if (!p) return;
    this.pending.delete(n);
    if (m[1] === 'ok') p.resolve(m[3] ?? '');
    else p.reject(new Error(`${this.name}: command ${n} failed: ${m[3] ?? ''}`));
  }

  /** Resolves once the process has printed `ready`. */
  ready(ms = TIMEOUT_MS) {
    if (this.isReady) return Promise.resolve();
    const p = new Promise((resolve, reject) => {
      this.readyWaiters.push(() => resolve(undefined));
      this.exited.then(() => reject(new Error(`${this.name} exited before ready: ${this.stderr.trim()}`)));
    });
    return withTimeout(p, ms, `${this.name} ready`);
  }

  /**
   * Sends one command line; resolves with the text after `ok <n>`.
   * @param {string} line
   * @returns {Promise<string>}
   */
  command(line, ms = TIMEOUT_MS) {
    if (/[\r\n]/.test(line)) return Promise.reject(new TypeError('a command is one line'));
    if (this.exitInfo) return Promise.reject(new Error(`${this.name} is not running`));
    const n = ++this.count;
    const p = new Promise((resolve, reject) => this.pending.set(n, { resolve, reject }));
    this.child.stdin.write(`${line}\n`);
    return withTimeout(p, ms, `${this.name} "${line.slice(0, 60)}"`).finally(() => this.pending.delete(n));
  }

  /**
   * Sends a signal; then waits (bounded) for the exit, escalating to SIGKILL, and waits for that too
   * (bounded: a process the kernel does not end within `ms` after SIGKILL is an error, not a hang).
   */
  async kill(signal = /** @type {NodeJS.Signals} */ ('SIGTERM'), ms = TIMEOUT_MS) {
    if (this.exitInfo) return this.exitInfo;
    try {
      this.child.kill(signal);
    } catch {
      // raced with its exit
    }
    try {
      return await withTimeout(this.exited, ms, `${this.name} exit`);
    } catch {
      this.child.kill('SIGKILL');
      return withTimeout(this.exited, ms, `${this.name} exit after SIGKILL`);
    }
  }
}

/** A wdb client (remoted or any other name) speaking the stdin command protocol. */
export class SimClient {
  /** @param {SimProcess} proc */
  constructor(proc) {
    this.proc = proc;
  }

  get name() {
    return this.proc.name;
  }

  get pid() {
    return this.proc.pid;
  }

  /** Agent started: datagram, TCP ack frame, `update-keepalive … pending`. @param {SimAgent} agent */
  async startup(agent) {
    await this.proc.command(`startup ${agentArgs(agent)}`);
  }

  /**
   * One keepalive: `select-agent-group` then `update-agent-data` with the agent's version, os, labels, node
   * and config sum, plus an event datagram. 4.x: a request over 2,048 bytes goes out cut, and wazuh-db's
   * err fails the command.
   * @param {SimAgent} agent
   */
  async keepalive(agent) {
    const data = agentData(agent);
    await this.proc.command(`keepalive ${agentArgs(agent)}${data ? ` ${data}` : ''}`);
  }

  /** Agent stopped: datagram, `update-connection-status … disconnected, 3`. @param {SimAgent} agent */
  async shutdown(agent) {
    await this.proc.command(`shutdown ${agentArgs(agent)}`);
  }

  /**
   * From now on talks to another home's wazuh-db: closes its connection, and the next request opens one
   * to that home's socket (most likely on the same descriptor, and the same kernel file slot).
   * @param {string} home
   */
  async home(home) {
    await this.proc.command(`home ${home}`);
  }

  /**
   * Sends `text` as one request frame on the long-lived connection, as this client's requests go
   * (4.x: header + text + NUL; 5.x and python3: no NUL; cut as `split` says), and returns wazuh-db's
   * reply (control characters become blanks).
   * @param {string} text
   */
  rawreq(text) {
    return this.proc.command(`rawreq ${text}`);
  }

  /**
   * Writes these bytes as-is, in one sendto, on the long-lived connection; reads nothing. Each frame
   * the bytes complete (a frame may span several raw writes) is a reply wazuh-db owes: read them with
   * recv(). Until then, and while a frame is half written, every other request on this client is
   * refused (its reply would be a raw frame's). A length wazuh-db refuses (0, or over 64 KiB) ends the
   * connection there: nothing after it is owed, and the next request opens a new one. Replies that come
   * while the write is in flight are read meanwhile and kept for recv (64 MiB at most), so a write of
   * more frames than the sockets hold does not deadlock; a write stuck for 10 s fails.
   * @param {Buffer | Uint8Array | string} bytes  a Buffer, or a hex string
   */
  async raw(bytes) {
    const hex = typeof bytes === 'string' ? bytes : Buffer.from(bytes).toString('hex');
    await this.proc.command(`raw ${hex}`);
  }

  /**
   * Reads the reply to the next raw frame, in order (5 s at most; one still owed after a time-out).
   * Refused at once when no complete raw frame is owed a reply.
   */
  recv() {
    return this.proc.command('recv', TIMEOUT_MS + 1000);
  }

  /**
   * monitord's sweep: `disconnect-agents 0 <threshold> synced`, paged while wazuh-db answers `due`.
   * @param {number} thresholdTs unix seconds; agents whose last keepalive is older are disconnected
   * @returns {Promise<number[]>} the ids wazuh-db disconnected
   */
  async disconnect(thresholdTs) {
    if (!Number.isSafeInteger(thresholdTs) || thresholdTs < 0) throw new TypeError('thresholdTs must be an integer >= 0');
    return idList(await this.proc.command(`disconnect ${thresholdTs}`));
  }

  /**
   * remoted's poll: `get-agents-by-connection-status <last> active node01 -1`, paged.
   * @returns {Promise<number[]>}
   */
  async pollActive() {
    return idList(await this.proc.command('poll-active'));
  }

  /** modulesd at start: the manager's own row (agent 000), `update-agent-name` then `update-agent-data` (§9). */
  async managerInfo() {
    await this.proc.command('manager-info');
  }

  /** modulesd's `get-all-agents last_id <n>`, paged. @returns {Promise<number[]>} every agent id (id > 0, as the real statement) */
  async allAgents() {
    return idList(await this.proc.command('all-agents'));
  }

  /** `get-agent-info <id>`; resolves with wazuh-db's reply. @param {number} id */
  agentInfo(id) {
    return this.proc.command(`agentinfo ${checkId(id)}`);
  }

  /**
   * authd's registration: a random key, a line in etc/client.keys, then `insert-agent`.
   * @param {SimAgent} agent
   * @returns {Promise<string>} the 64-hex key that went over the wire
   */
  register(agent) {
    return this.proc.command(`register ${agentArgs(agent)}`);
  }

  /** authd's removal: marks the client.keys entry `!`, then `delete-agent <id>`. @param {number} id */
  remove(id) {
    return this.proc.command(`remove ${checkId(id)}`);
  }

  /** `update-agent-name`. @param {number} id @param {string} name */
  async rename(id, name) {
    agentArgs({ id, name, ip: 'any' });
    await this.proc.command(`rename ${id} ${name}`);
  }

  /** remoted refuses the agent for its version: `update-status-code`, code 1. @param {number} id */
  async refuse(id) {
    await this.proc.command(`refuse ${checkId(id)}`);
  }

  /**
   * wazuh-clusterd on the master writes a worker's agent: `sync-agent-info-set [...]`.
   * @param {SimAgent} agent @param {string} status @param {string} node
   */
  async syncSet(agent, status, node) {
    for (const v of [status, node]) if (typeof v !== 'string' || !/^[\w.-]+$/.test(v)) throw new TypeError('bad status or node');
    await this.proc.command(`sync-set ${agentArgs(agent)} ${status} ${node}`);
  }

  /**
   * Agents coming back after a manager restart: for each, `update-keepalive … pending` from one worker
   * thread, then the keepalive pair (`select-agent-group`, `update-agent-data … active`) from another,
   * started ~gapUs after the pending one started (before its sendto, whether or not wazuh-db answered it
   * yet), on two connections, the threads pinned to two CPUs.
   * @param {number} agents @param {number} firstId @param {number} gapUs
   * @returns {Promise<{ pending: number, active: number, errors: number }>}
   */
  async reconnect(agents, firstId, gapUs, ms = TIMEOUT_MS * 6) {
    for (const v of [agents, firstId, gapUs]) if (!Number.isSafeInteger(v) || v < 0) throw new TypeError('integers >= 0');
    const r = await this.proc.command(`reconnect ${agents} ${firstId} ${gapUs}`, ms);
    const m = /^pending=(\d+) active=(\d+) errors=(\d+)$/.exec(r);
    if (!m) throw new Error(`remoted: unexpected reply '${r}'`);
    return { pending: Number(m[1]), active: Number(m[2]), errors: Number(m[3]) };
  }

  /**
   * Exits like the real daemon (nothing closed explicitly); resolves on exit. A process that has not
   * exited after `ms` is killed (SIGKILL) and the promise rejects.
   */
  async quit(ms = TIMEOUT_MS) {
    if (!this.proc.exitInfo) {
      // The `ok` may race with the exit; the exit is what matters.
      this.proc.command('quit', ms).catch(() => {});
    }
    try {
      return await withTimeout(this.proc.exited, ms, `${this.name} quit`);
    } catch (e) {
      await this.proc.kill('SIGKILL');
      throw e;
    }
  }

  kill(signal = /** @type {NodeJS.Signals} */ ('SIGTERM')) {
    return this.proc.kill(signal);
  }
}

/** Where a daemon's executable lives in a Wazuh home: bin/, or the framework's Python for wazuh-clusterd. */
export function homeExeDir(home, name) {
  return name === 'python3' ? path.join(home, 'framework/python/bin') : path.join(home, 'bin');
}

/**
 * Copies the simulator's executable `name` into the home, as a Wazuh install lays its daemons out
 * (`<home>/bin/wazuh-remoted`, …): the tap trusts a home's own executables only, by identity.
 * A copy, not a link: /proc/<pid>/exe and the kernel then see the home's file.
 * @param {string} binDir the simulator's build output (build/sim/bin)
 * @param {string} home
 * @param {string} name
 * @returns {string} the directory holding the copy
 */
export function installSimDaemon(binDir, home, name) {
  const src = path.join(binDir, name);
  const dir = homeExeDir(home, name);
  const dst = path.join(dir, name);
  fs.mkdirSync(dir, { recursive: true, mode: 0o755 });
  const s = fs.statSync(src);
  let fresh = false;
  try {
    const d = fs.statSync(dst);
    fresh = d.size === s.size && d.mtimeMs >= s.mtimeMs;
  } catch {
    fresh = false;
  }
  if (!fresh) {
    // Copy then rename: overwriting a running executable in place fails with ETXTBSY.
    const tmp = `${dst}.${process.pid}.tmp`;
    fs.copyFileSync(src, tmp);
    fs.chmodSync(tmp, 0o755);
    fs.renameSync(tmp, dst);
  }
  return dir;
}

export class SimManager {
  /**
   * @param {{ binDir: string, home: string, agents?: SimAgent[], version?: 4 | 5, pageRows?: number, cpuPerRequestUs?: number, lateReply?: { match: string, us: number }, lateRead?: { match: string, us: number }, uid?: number, gid?: number, root?: string, persistDb?: boolean, split?: string, background?: boolean | { remotedPollMs?: number, groupsMs?: number, analysisdPollMs?: number } }} opts
   *   agents: written to `<home>/etc/client.keys` at start, so wazuh-db starts
   *   with them registered (never_connected), names and all, like a real global.db.
   *   version: 5 runs the `wazuh-manager-*` copies (sorted keys, no NUL, one sendto(MSG_NOSIGNAL) per
   *   frame on a non-blocking socket).
   *   split: how the clients (remoted and spawnClient's) cut each request frame into writes: 'none' (the
   *   default, one write a frame, as real daemons do), 'halves' (the header alone, then the payload in two
   *   halves) or 'random:<seed>' (one to three cuts anywhere, the header too; repeatable by seed).
   *   pageRows: rows per list reply before wazuh-db answers `due` (default: one 64 KiB page).
   *   cpuPerRequestUs: the CPU time wazuh-db spends on each request before answering, one request at a
   *   time, as the real one's global.db (~33 µs on a 4.7.5 manager, SPEC §9; make bench). Default 0: none.
   *   lateReply: wazuh-db's worker that applied a request containing `match` waits `us` µs (1 to 1,000,000)
   *   before it sends the reply, as a real worker preempted between applying a request and its sendto:
   *   a later request of another connection is answered first. Default: none.
   *   lateRead: wazuh-db's worker handed a connection whose next request contains `match` waits `us` µs
   *   before it reads it, as a worker woken late: a later request of another connection is read and
   *   applied first (it looks with recvmsg MSG_PEEK, no recvfrom). Default: none.
   *   uid/gid: every daemon runs as this user (a home that user owns), e.g. a local user's imitation.
   *   root: a container's root directory: the daemons run chrooted in it, `home` is their path in
   *   it (/var/ossec) and `this.home` the host's path to it (`<root>/var/ossec`).
   *   The daemons run from copies in `<home>/bin` (installSimDaemon), like a real install.
   *   background: the manager's own traffic on the wdb socket beside the agents' (WAZUH-PROTOCOL §2, "Seen
   *   on a running 4.7.5 manager"); off by default. `true`: at the real intervals (REAL_BACKGROUND); an
   *   object: shorter ones for tests (ms; those left out are the real ones). With it remoted polls
   *   `get-agents-by-connection-status 0 active node01 -1` (paged on `due`) every remotedPollMs on a
   *   long-lived connection of its own while it tracks an agent (one it had a message from, until that
   *   agent's shutdown), opens a short connection for `get-distinct-groups ` every groupsMs, and sends each
   *   agent message from the next of its 4 worker threads, each on its own long-lived connection;
   *   analysisd polls the same listing every analysisdPollMs on its own connection; and monitord
   *   (spawnMonitord) follows a sweep that disconnected agents with `get-agent-info <id>` for each (and
   *   `find-agent` for each still disconnected). Every frame is one sendto, with the NUL of 4.x or none of
   *   5.x, from the daemon's own process; the timers are threads of those processes, so stop() (or a
   *   restart) ends them with the process and leaves no timer in Node.
   */
  constructor({ binDir, home, agents = [], version = 4, pageRows, cpuPerRequestUs = 0, lateReply, lateRead, uid, gid, root, persistDb = false, split = 'none', background }) {
    this.binDir = path.resolve(binDir);
    /** The home as the daemons see it (inside their root, when chrooted). */
    this.innerHome = path.resolve(home);
    this.root = root === undefined ? null : path.resolve(root);
    this.home = this.root ? path.join(this.root, this.innerHome) : this.innerHome;
    /** @type {{ uid?: number, gid?: number }} */
    this.user = { ...(uid !== undefined && { uid }), ...(gid !== undefined && { gid }) };
    this.agents = agents;
    if (version !== 4 && version !== 5) throw new TypeError('version must be 4 or 5');
    this.version = version;
    if (pageRows !== undefined && (!Number.isSafeInteger(pageRows) || pageRows < 1)) throw new TypeError('pageRows must be a positive integer');
    this.pageRows = pageRows;
    if (typeof cpuPerRequestUs !== 'number' || !(cpuPerRequestUs >= 0 && cpuPerRequestUs <= 1e6)) throw new TypeError('cpuPerRequestUs must be a number of microseconds from 0 to 1000000');
    this.cpuPerRequestUs = cpuPerRequestUs;
    this.lateReply = checkLate('lateReply', lateReply);
    this.lateRead = checkLate('lateRead', lateRead);
    this.split = checkSplit(split);
    /** wazuh-db keeps its table across restartDb() (and a stop and start), as global.db does. */
    this.persistDb = persistDb === true;
    /** The background traffic's intervals, or null: none (the default). */
    this.background = checkBackground(background);
    /** @type {SimProcess | null} */ this.analysisd = null;
    /** @type {SimProcess | null} */ this.db = null;
    /** @type {SimClient | null} */ this.remoted = null;
    /** @type {SimClient[]} */ this.clients = [];
    this.prepare();
  }

  /**
   * Lays the home out as an installed manager has it before its daemons start: the daemons'
   * executables (bin/, framework/python/bin/) and queue/db/. A tap opened before start() then
   * already knows this home's identities (done by the constructor; safe to call again).
   */
  prepare() {
    fs.mkdirSync(path.join(this.home, 'queue/db'), { recursive: true, mode: 0o770 });
    const names = ['analysisd', 'db', 'remoted', 'monitord', 'authd', 'modulesd'].map((d) => this.daemon(d));
    for (const name of [...names, 'python3', 'not-wazuh']) installSimDaemon(this.binDir, this.home, name);
    if (this.user.uid !== undefined) {
      // The home is that user's: it creates its sockets, files and logs in it.
      for (const d of ['', 'queue', 'queue/db']) fs.chownSync(path.join(this.home, d), this.user.uid, this.user.gid ?? this.user.uid);
    }
  }

  /** The wdb socket as the tap sees it on the host. */
  get wdbPath() {
    return path.join(this.home, 'queue/db/wdb');
  }

  /** @param {{ reset?: boolean }} [opts] */
  async start({ reset = true } = {}) {
    if (this.db) throw new Error('already started');
    if (this.agents.length) {
      fs.mkdirSync(path.join(this.home, 'etc'), { recursive: true });
      const lines = this.agents.map((a) => {
        agentArgs(a);
        const key = createHash('sha256').update(`wazuh-sim-${a.id}`).digest('hex');
        return `${String(a.id).padStart(3, '0')} ${a.name} ${a.ip} ${key}\n`;
      });
      fs.writeFileSync(path.join(this.home, 'etc/client.keys'), lines.join(''), { mode: 0o640 });
      if (this.user.uid !== undefined) {
        for (const f of ['etc', 'etc/client.keys']) fs.chownSync(path.join(this.home, f), this.user.uid, this.user.gid ?? this.user.uid);
      }
    }
    try {
      this.analysisd = this.#spawn(this.daemon('analysisd'), this.#analysisdArgs());
      this.db = this.#spawn(this.daemon('db'), this.#dbArgs());
      await Promise.all([this.analysisd.ready(), this.db.ready()]);
      this.remoted = await this.#client(this.daemon('remoted'), reset, this.#remotedArgs());
    } catch (e) {
      await this.stop();
      throw e;
    }
  }

  /** remoted's background traffic (--bg-*): its poll, its get-distinct-groups, its 4 workers' connections. */
  #remotedArgs() {
    const bg = this.background;
    return bg ? ['--bg-poll-ms', String(bg.remotedPollMs), '--bg-groups-ms', String(bg.groupsMs), '--bg-workers'] : [];
  }

  /** analysisd's own poll of the active agents. */
  #analysisdArgs() {
    return this.background ? ['--bg-poll-ms', String(this.background.analysisdPollMs)] : [];
  }

  #dbArgs() {
    return [
      ...(this.pageRows ? ['--page-rows', String(this.pageRows)] : []),
      ...(this.cpuPerRequestUs ? ['--cpu-per-request-us', String(this.cpuPerRequestUs)] : []),
      ...(this.lateReply ? ['--late-reply', this.lateReply.match, String(this.lateReply.us)] : []),
      ...(this.lateRead ? ['--late-read', this.lateRead.match, String(this.lateRead.us)] : []),
      ...(this.persistDb ? ['--state', 'queue/db/sim-global.db'] : []),
    ];
  }

  /**
   * wazuh-db stopped (SIGTERM) and started again: a new socket at the same path, a new inode. The
   * daemons' connections break; each reconnects at its next request and sends again the one the
   * stop cut, as wdbc_query_ex does. With persistDb the table is what it was (every request it
   * answered), otherwise it is seeded again from client.keys.
   */
  async restartDb() {
    if (!this.db) throw new Error('not started');
    await this.db.kill('SIGTERM');
    this.db = null;
    const db = this.#spawn(this.daemon('db'), this.#dbArgs());
    this.db = db;
    try {
      await db.ready();
    } catch (e) {
      // Not left behind half-started: killed, and this.db says there is none.
      await db.kill('SIGKILL');
      this.db = null;
      throw e;
    }
  }

  /**
   * @param {string} name
   * @param {boolean} reset
   */
  async #client(name, reset, extra = [], split = this.split) {
    const proc = this.#spawn(name, [...(reset ? [] : ['--no-reset']), ...(split === 'none' ? [] : ['--split', split]), ...extra]);
    try {
      await proc.ready();
    } catch (e) {
      await proc.kill('SIGKILL');
      throw e;
    }
    return new SimClient(proc);
  }

  /** @param {string} name @param {string[]} [args] */
  #spawn(name, args = []) {
    const dir = installSimDaemon(this.binDir, this.home, name);
    if (!this.root) return new SimProcess(dir, name, this.home, args, this.user);
    const inner = path.join(this.innerHome, path.relative(this.home, dir));
    return new SimProcess(inner, name, this.innerHome, args, { ...this.user, chroot: this.root });
  }

  /**
   * The binary name of a daemon in this manager's version: `remoted` → `wazuh-remoted` (4.x) or
   * `wazuh-manager-remoted` (5.x, comm `wazuh-manager-r`).
   * @param {string} daemon
   */
  daemon(daemon) {
    return this.version === 5 ? `wazuh-manager-${daemon}` : `wazuh-${daemon}`;
  }

  /** A monitord client (`disconnect`, `agentInfo`). */
  spawnMonitord() {
    return this.spawnClient(this.daemon('monitord'));
  }

  /** An authd client (`register`, `remove`, `agentInfo`). */
  spawnAuthd() {
    return this.spawnClient(this.daemon('authd'));
  }

  /** A modulesd client (`managerInfo`, `allAgents`, and its `task …` requests through rawreq). */
  spawnModulesd() {
    return this.spawnClient(this.daemon('modulesd'));
  }

  /** The cluster daemon as the kernel names it (comm `python3`): `syncSet`. */
  spawnClusterd() {
    return this.spawnClient('python3');
  }

  /** remoted's periodic poll of the active agents. @returns {Promise<number[]>} */
  pollActive() {
    return this.#remoted().pollActive();
  }

  /** remoted refuses an agent for its version (`update-status-code`, code 1). @param {number} id */
  refuse(id) {
    return this.#remoted().refuse(id);
  }

  #remoted() {
    if (!this.remoted) throw new Error('SimManager not started');
    return this.remoted;
  }

  /** @param {SimAgent} agent */
  startup(agent) {
    return this.#remoted().startup(agent);
  }

  /** remoted's reconnect pattern (SimClient.reconnect). @param {number} agents @param {number} firstId @param {number} gapUs */
  reconnect(agents, firstId, gapUs, ms) {
    return this.#remoted().reconnect(agents, firstId, gapUs, ms);
  }

  /** @param {SimAgent} agent */
  keepalive(agent) {
    return this.#remoted().keepalive(agent);
  }

  /** @param {SimAgent} agent */
  shutdown(agent) {
    return this.#remoted().shutdown(agent);
  }

  /** @param {string} text */
  rawreq(text) {
    return this.#remoted().rawreq(text);
  }

  /** @param {Buffer | Uint8Array | string} bytes */
  raw(bytes) {
    return this.#remoted().raw(bytes);
  }

  recv() {
    return this.#remoted().recv();
  }

  /**
   * remoted restarted alone (killed without a word, a new one started): the new one sends
   * `reset-agents-connection` (unless reset is false). wazuh-db keeps running on the same socket; for a
   * whole manager restart (wazuh-db too, a new socket) see restartManager().
   * @param {{ reset?: boolean }} [opts]
   */
  async restartRemoted({ reset = true } = {}) {
    const old = this.#remoted();
    await old.kill('SIGKILL');
    this.remoted = null;
    this.remoted = await this.#client(this.daemon('remoted'), reset, this.#remotedArgs());
  }

  /**
   * A manager restart (`wazuh-control restart`): every daemon stops — the clients (spawnClient's are
   * forgotten: spawn them again), remoted (which writes nothing about its agents), analysisd, then
   * wazuh-db (SIGTERM; its table is kept, as global.db is: persistDb is required) — and starts again:
   * wazuh-db on a new socket, analysisd, then remoted (get-distinct-groups and, unless reset is false,
   * reset-agents-connection: every active or pending agent disconnected, code 5). Then each agent of
   * `reconnect` comes back as agents do to a restarted manager: its startup (pending), then a keepalive.
   * @param {{ reconnect?: SimAgent[], reset?: boolean }} [opts]
   */
  async restartManager({ reconnect = [], reset = true } = {}) {
    if (!this.db) throw new Error('not started');
    if (!this.persistDb) throw new Error('restartManager needs persistDb: true (a manager restart keeps global.db)');
    for (const a of reconnect) agentArgs(a);
    const clients = [...this.clients.map((c) => c.proc), this.remoted?.proc].filter((p) => p != null);
    await Promise.all(clients.map((p) => p.kill('SIGTERM')));
    this.clients = [];
    this.remoted = null;
    await Promise.all([this.analysisd, this.db].filter((p) => p != null).map((p) => p.kill('SIGTERM')));
    this.analysisd = null;
    this.db = null;
    this.db = this.#spawn(this.daemon('db'), this.#dbArgs());
    this.analysisd = this.#spawn(this.daemon('analysisd'), this.#analysisdArgs());
    await Promise.all([this.db.ready(), this.analysisd.ready()]);
    this.remoted = await this.#client(this.daemon('remoted'), reset, this.#remotedArgs());
    for (const a of reconnect) {
      await this.remoted.startup(a);
      await this.remoted.keepalive(a);
    }
  }

  /**
   * Another client under any name from the bin directory (e.g. `not-wazuh`,
   * `wazuh-monitord`, `wazuh-authd`). By default it does not send
   * reset-agents-connection at start (it still sends get-distinct-groups).
   * `syscall` picks how its frames are written: sendto (Wazuh's C daemons), write,
   * or writev/sendmsg with the header and the payload as two iovecs. `split`: how its frames are cut
   * into writes (default: the manager's).
   * @param {string} name
   * @param {{ reset?: boolean, syscall?: 'sendto' | 'write' | 'writev' | 'sendmsg', split?: string }} [opts]
   */
  async spawnClient(name, { reset = false, syscall = 'sendto', split = this.split } = {}) {
    if (name === 'wazuh-db' || name === 'wazuh-manager-db' || name === 'wazuh-analysisd' || name === 'wazuh-manager-analysisd') {
      throw new Error(`${name} is a server role, not a client`);
    }
    // monitord of a manager with background traffic: a sweep's hits followed by get-agent-info.
    const bg = this.background && name === this.daemon('monitord') ? ['--bg-monitord'] : [];
    const c = await this.#client(name, reset, [...(syscall === 'sendto' ? [] : ['--syscall', syscall]), ...bg], checkSplit(split));
    this.clients.push(c);
    return c;
  }

  /**
   * analysisd's own wdb client (WAZUH-PROTOCOL §2): `get-agents-by-connection-status 0 active node01 -1`,
   * paged, on its own long-lived connection — the second stream of the same poll, remoted's being the first.
   * @returns {Promise<number[]>}
   */
  async analysisdPollActive() {
    return idList(await this.#analysisd().command('poll-active'));
  }

  /** analysisd's `get-labels <id>` on its connection; resolves with wazuh-db's reply. @param {number} id */
  analysisdLabels(id) {
    return this.#analysisd().command(`labels ${checkId(id)}`);
  }

  /** analysisd's alerts file, as Filebeat and the tap follow it. */
  get alertsFile() {
    return path.join(this.home, 'logs/alerts/alerts.json');
  }

  #analysisd() {
    if (!this.analysisd) throw new Error('SimManager not started');
    return this.analysisd;
  }

  /**
   * analysisd writes `count` real-shaped alerts of rule level `level`, `intervalUs` apart, through
   * its small stdio buffer (writes cut lines anywhere); flushed at the end. Each alert carries its
   * sequence number in `data.srcport` (and `rule.firedtimes`).
   * @param {number} count @param {number} level @param {number} [intervalUs] @param {number} [ms] reply timeout
   * @returns {Promise<{ first: number, last: number }>} the sequence numbers written
   */
  async writeAlerts(count, level, intervalUs = 0, ms = TIMEOUT_MS) {
    for (const [k, v, max] of /** @type {const} */ ([['count', count, 1e7], ['level', level, 15], ['intervalUs', intervalUs, 1e6]])) {
      if (!Number.isSafeInteger(v) || v < 0 || v > max) throw new TypeError(`${k} must be an integer from 0 to ${max}`);
    }
    const r = await this.#analysisd().command(`alerts ${count} ${level} ${intervalUs}`, ms);
    const m = /^(\d+)-(\d+)$/.exec(r);
    if (!m) throw new Error(`analysisd: unexpected reply '${r}'`);
    return { first: Number(m[1]), last: Number(m[2]) };
  }

  /** analysisd writes these bytes into the alerts file as they are (a broken line, a huge one). @param {Buffer | string} bytes */
  async writeAlertBytes(bytes) {
    await this.#analysisd().command(`raw ${Buffer.from(bytes).toString('hex')}`);
  }

  /** A new day: analysisd closes the day's file, opens the next and links alerts.json to it. @returns {Promise<string>} the new day's file */
  async rotateAlerts() {
    return path.join(this.home, await this.#analysisd().command('rotate'));
  }

  /** @returns {Record<string, number>} name → pid of the running processes */
  pids() {
    /** @type {Record<string, number>} */
    const out = {};
    const procs = [this.analysisd, this.db, this.remoted?.proc, ...this.clients.map((c) => c.proc)];
    for (const p of procs) {
      if (p && !p.exitInfo && p.pid !== undefined) out[p.name] = p.pid;
    }
    return out;
  }

  /** SIGTERM everything, bounded wait, SIGKILL leftovers. Safe to call twice. */
  async stop() {
    // Clients first, so wazuh-db does not log their connections as broken by its own exit.
    const clients = [...this.clients.map((c) => c.proc), this.remoted?.proc].filter((p) => p != null);
    await Promise.all(clients.map((p) => p.kill('SIGTERM')));
    const servers = [this.db, this.analysisd].filter((p) => p != null);
    await Promise.all(servers.map((p) => p.kill('SIGTERM')));
    this.clients = [];
    this.remoted = null;
    this.db = null;
    this.analysisd = null;
  }
}
