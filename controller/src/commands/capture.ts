// `wazuh-nats-tap capture`: decoded wdb traffic, live, without NATS — tcpdump for
// wazuh-db. One line per request/reply exchange on stdout (text, or one JSON
// object per line with --json); what the tool itself says goes to stderr, so
// stdout stays parseable. Stops on SIGINT/SIGTERM, after --count exchanges or
// --duration seconds, or when stdout is closed (`| head`); it always detaches
// and closes the BPF programs before returning, so nothing stays in the kernel.
//
// JSON shape (one object per exchange, keys always present, in this order):
//   time        ISO 8601 wall-clock time of the request (UTC)
//   ts_ns       the request's CLOCK_MONOTONIC time in ns, as a decimal string
//   latency_us  reply time − request time in µs (null when unknown)
//   pid, comm   the requesting process (comm: 15 characters at most)
//   exe         its executable basename when known, else null
//   conn        connection id (the client socket's inode), a string
//   command     the request's command name (`update-keepalive`, …; for a
//               non-`global` request its first word)
//   agents      [{id, name}] agents the exchange names (request ids, and the
//               ids a `disconnect-agents` / `get-agents-by-connection-status`
//               reply lists); name from client.keys or the request, else null
//   request     the decoder's parsed request (controller/src/types.ts WdbRequest:
//               `cmd` plus that command's fields; never a key)
//   status      the reply's status: ok, due, err, ign or unk
//   reply       the reply's text after the status, cut to REPLY_MAX characters
//   reply_len   the full length of that text
// Secrets: the decoder drops `internal_key` and key-shaped values; every line is
// checked once more here before it is written (see scrub()).
import type { Writable } from 'node:stream';
import { Capture, type Hook } from '../capture/capture.js';
import { HomePin } from '../capture/home-pin.js';
import { WdbDecoder, parseIdList } from '../decode/index.js';
import { HeldRelease } from '../capture/held-release.js';
import { clientKeysPath, readClientKeys } from '../state/sources/client-keys.js';
import { artefacts } from '../paths.js';
import { monotonicToWallClock } from '../util/clock.js';
import { escapeUnsafe, safeJson } from '../util/printable.js';
import { LineOutput } from '../util/line-output.js';
import { takeEarlySignals } from '../util/early-signals.js';
import type { WdbExchange, WdbRequest } from '../types.js';

export const REPLY_MAX = 256;
const HUMAN_REPLY_MAX = 80;

export interface CaptureCommandOptions {
  json: boolean;
  home: string;
  hooks: Hook[];
  /** Stop after this many exchanges (0: no limit). */
  count: number;
  /** Stop after this many seconds (0: no limit). */
  duration: number;
  out?: Writable;
  err?: Writable;
}

export interface CapturedExchange {
  time: string;
  ts_ns: string;
  latency_us: number | null;
  pid: number;
  comm: string;
  exe: string | null;
  conn: string;
  command: string;
  agents: { id: number; name: string | null }[];
  request: WdbRequest;
  status: string;
  reply: string;
  reply_len: number;
}

/** The command name of a parsed request. */
export function commandOf(r: WdbRequest): string {
  return r.cmd === 'other' || r.cmd === 'non-global' || r.cmd === 'invalid' ? r.name : r.cmd;
}

/** `global` commands the decoder leaves as `other` whose only argument is an agent id. */
const AGENT_ARG_COMMANDS: ReadonlySet<string> = new Set(['select-agent-group', 'get-agent-labels', 'get-agent-groups']);

/** Agent ids an exchange names, in order, without repeats. */
export function agentIdsOf(ex: WdbExchange<WdbRequest>): number[] {
  const r = ex.request;
  const ids: number[] = [];
  if ('id' in r) ids.push(r.id);
  if (r.cmd === 'other' && AGENT_ARG_COMMANDS.has(r.name) && /^[0-9]{1,9}$/.test(r.args)) ids.push(Number(r.args));
  if (r.cmd === 'update-agent-data') ids.push(r.data.id);
  if (r.cmd === 'sync-agent-info-set') ids.push(...r.agents.map((a) => a.id));
  if ((r.cmd === 'disconnect-agents' || r.cmd === 'get-agents-by-connection-status') && ex.reply.payload) {
    // 4.x answers `[{"id":1},…]`; older builds a comma list.
    const list = parseIdList(ex.reply.payload)
      ?? (/^[0-9]+(,[0-9]+)*$/.test(ex.reply.payload) ? ex.reply.payload.split(',').map(Number) : null);
    if (list) ids.push(...list);
  }
  return [...new Set(ids)];
}

const KEY_SHAPE = /[0-9a-fA-F]{64}/g;

/** Last line of defence: no line leaves with a key name or a key-shaped value in it. */
export function scrub(line: string): string {
  return line.replace(/internal_key/gi, '[redacted]').replace(KEY_SHAPE, '[redacted]');
}

/**
 * The wall-clock time of a capture timestamp in whole µs, from the one clock conversion
 * (util/clock.ts monotonicToWallClock): the JSON `time` and the text line's time are both taken
 * from it. (The text line took its seconds from the wall clock and its µs from CLOCK_MONOTONIC's
 * own fraction, two clocks of unrelated phase: off by up to a second, and jumping back at a wrap.)
 */
export function wallMicros(tsNs: bigint, wallMs: (ns: bigint) => number): number {
  return Math.floor(wallMs(tsNs) * 1000);
}

/** The exchange as the JSON line shows it; `wallUs`: its request's wall-clock time (wallMicros). */
export function toRecord(ex: WdbExchange<WdbRequest>, wallUs: number, names: ReadonlyMap<number, string>): CapturedExchange {
  const reqName = (id: number): string | null => {
    const r = ex.request;
    if (r.cmd === 'insert-agent' && r.id === id && r.name) return r.name;
    if (r.cmd === 'update-agent-name' && r.id === id) return r.name;
    return names.get(id) ?? null;
  };
  const latency = ex.replyTsNs !== undefined ? Number(ex.replyTsNs - ex.tsNs) / 1000 : null;
  return {
    time: new Date(Math.floor(wallUs / 1000)).toISOString(),
    ts_ns: ex.tsNs.toString(),
    latency_us: latency === null ? null : Math.round(latency),
    pid: ex.tgid,
    comm: ex.comm,
    exe: ex.exe ?? null,
    conn: ex.connId,
    command: commandOf(ex.request),
    agents: agentIdsOf(ex).map((id) => ({ id, name: reqName(id) })),
    request: ex.request,
    status: ex.reply.status,
    reply: ex.reply.payload.slice(0, REPLY_MAX),
    reply_len: ex.reply.payload.length,
  };
}

const agentLabel = (id: number) => String(id).padStart(3, '0');

/**
 * A value as one word: numbers and plain words as they are, anything else JSON-quoted, with what
 * JSON leaves raw (C1, DEL, bidi controls, U+2028/2029) escaped too: printable() of util/printable.ts.
 */
function value(v: unknown): string {
  if (typeof v === 'string' && /^[\x21-\x7e]+$/.test(v) && !v.includes('"')) return v;
  return escapeUnsafe(JSON.stringify(v) ?? String(v));
}

/** The request's main arguments as `key=value` words (ids are shown as agents instead). */
function args(r: WdbRequest): string {
  switch (r.cmd) {
    case 'update-agent-data':
      return Object.entries(r.data).filter(([k]) => k !== 'id').map(([k, v]) => `${k}=${value(v)}`).join(' ');
    case 'sync-agent-info-set':
      return `rows=${r.agents.length}`;
    case 'other':
      return r.args ? `${value(r.args.slice(0, HUMAN_REPLY_MAX))}${r.args.length > HUMAN_REPLY_MAX ? '…' : ''}` : '';
    case 'non-global':
      return '';
    case 'invalid':
      return `invalid: ${r.reason}`;
    default:
      return Object.entries(r).filter(([k, v]) => k !== 'cmd' && k !== 'id' && v !== null)
        .map(([k, v]) => `${k}=${value(v)}`).join(' ');
  }
}

/**
 * `HH:MM:SS.uuuuuu comm[pid] conn=N command agents=001(name),002 key=value… -> status "reply"`
 * (local time, like tcpdump); `wallUs`: the request's wall-clock time (wallMicros), as toRecord's.
 */
export function humanLine(rec: CapturedExchange, ex: WdbExchange<WdbRequest>, wallUs: number): string {
  const d = new Date(Math.floor(wallUs / 1000));
  const us = String(wallUs % 1_000_000).padStart(6, '0');
  const hms = [d.getHours(), d.getMinutes(), d.getSeconds()].map((n) => String(n).padStart(2, '0')).join(':');
  const parts = [`${hms}.${us}`, `${rec.comm}[${rec.pid}]`, `conn=${rec.conn}`, rec.command];
  if (rec.agents.length) {
    parts.push(`agents=${rec.agents.map((a) => (a.name ? `${agentLabel(a.id)}(${a.name})` : agentLabel(a.id))).join(',')}`);
  }
  const a = args(ex.request);
  if (a) parts.push(a);
  let reply = `-> ${rec.status}`;
  if (rec.reply_len > 0) {
    const cut = ex.reply.payload.length > HUMAN_REPLY_MAX;
    reply += ` ${escapeUnsafe(JSON.stringify(ex.reply.payload.slice(0, HUMAN_REPLY_MAX)))}${cut ? `…(${rec.reply_len})` : ''}`;
  }
  if (rec.latency_us !== null) reply += ` ${rec.latency_us}us`;
  parts.push(reply);
  // And the whole line once more: the process name, a command word or a decoder's reason are the
  // daemons' text too. Nothing a terminal acts on is left raw (util/printable.ts).
  return escapeUnsafe(parts.join(' '));
}

async function agentNames(home: string, err: Writable): Promise<Map<number, string>> {
  try {
    const keys = await readClientKeys(clientKeysPath(home));
    return new Map(keys.agents.map((a) => [a.id, a.name]));
  } catch (e) {
    err.write(`wazuh-nats-tap: agent names unavailable (${(e as Error).message}); showing ids only\n`);
    return new Map();
  }
}

/** Runs the capture until a stop condition; returns the exit code (0). Kernel problems throw KernelSupportError. */
export async function runCaptureCommand(opts: CaptureCommandOptions): Promise<number> {
  const out = opts.out ?? process.stdout;
  const err = opts.err ?? process.stderr;
  let stopWhy = '';
  let wake: () => void = () => {};
  const stopped = new Promise<void>((r) => { wake = r; });
  const stop = (why: string) => {
    if (!stopWhy) stopWhy = why;
    wake();
  };
  const onSignal = (sig: string) => () => stop(sig);
  const onInt = onSignal('SIGINT');
  const onTerm = onSignal('SIGTERM');
  // `on`, not `once`: a second Ctrl-C (an impatient one) finds a handler that ignores it, not the
  // default action that kills the process in the middle of the clean-up (stop() keeps the first why).
  // Before anything is opened: a signal while client.keys is read or the programs load ends it all the same.
  process.on('SIGINT', onInt);
  process.on('SIGTERM', onTerm);
  for (const sig of takeEarlySignals()) stop(sig); // one while the modules loaded
  try {
    return await captureUntilStopped(opts, out, err, stopped, stop, () => stopWhy);
  } finally {
    process.removeListener('SIGINT', onInt);
    process.removeListener('SIGTERM', onTerm);
  }
}

async function captureUntilStopped(opts: CaptureCommandOptions, out: Writable, err: Writable,
  stopped: Promise<void>, stop: (why: string) => void, why: () => string): Promise<number> {
  const names = await agentNames(opts.home, err);
  const wallMs = monotonicToWallClock();
  // The home's path leading to another home later (a container's pid reused): refused by the pin, said once.
  let movedSaid = false;
  const pin = new HomePin(opts.home, {
    onMoved: (m) => {
      if (movedSaid) return;
      movedSaid = true;
      err.write(`wazuh-nats-tap: ${opts.home} leads to another Wazuh home now (${m.what} is ${m.found}, was ${m.followed}): nothing of it is captured; `
        + 'run again with the new container\'s pid\n');
    },
  });
  const capture = Capture.open({ ...artefacts(), home: opts.home, hooks: opts.hooks, pin });
  const decoder = new WdbDecoder();
  let printed = 0; // lines handed to the output: what --count counts
  // stdout closed (`| head`): the end. A reader that does not keep up (`| less` paused): lines are
  // dropped and counted, not piled up in memory, and the summary says so (util/line-output.ts).
  let failure: Error | null = null;
  const output = new LineOutput(out, {
    onGone: (e) => {
      if (!e) return stop('stdout closed');
      failure ??= new Error(`cannot write the output: ${e.message}`);
      stop('output failed');
    },
    onSlow: () => err.write('wazuh-nats-tap: the output is not read fast enough: exchanges are dropped (counted in the summary) until it catches up\n'),
  });
  const quiet = () => {};
  err.on('error', quiet);
  const timer = opts.duration > 0 ? setTimeout(() => stop(`${opts.duration} s elapsed`), opts.duration * 1000) : null;
  let held: HeldRelease | null = null;
  let printHeld = () => {};
  try {
    let counted = false; // --count reached: nothing more is printed
    const print = (exs: WdbExchange<WdbRequest>[], last = false) => {
      for (const ex of exs) {
        if (counted || (why() && !last)) return;
        const us = wallMicros(ex.tsNs, wallMs); // one time for both forms
        const r = toRecord(ex, us, names);
        const line = opts.json ? safeJson(JSON.stringify(r)) : humanLine(r, ex, us);
        if (!output.write(`${scrub(line)}\n`)) continue;
        printed++;
        if (opts.count > 0 && printed >= opts.count) {
          counted = true;
          stop(`${opts.count} exchanges`);
        }
      }
    };
    printHeld = () => print(decoder.release(null), true);
    // Exchanges come in the order wazuh-db applied their requests: one whose earlier request's reply is
    // late waits for it, at most HOLD_NS (decode/apply-order.ts); this lets it go when no record comes.
    held = new HeldRelease({
      capture: () => capture, holding: () => decoder.holding > 0, release: (now) => print(decoder.release(now)), stopping: () => why() !== '',
    });
    capture.start((records) => {
      for (const rec of records) {
        if (why()) return;
        print(decoder.push(rec));
      }
      if (decoder.holding) held?.arm();
    }, (e) => {
      failure = e;
      stop('capture failed');
    });
    if (!why()) { // not for a stop that came first (a signal while it loaded)
      capture.attach();
      const id = capture.identity();
      err.write(`wazuh-nats-tap: capturing wazuh-db traffic of ${id.home}: socket ${id.wdb_dir ? `${id.wdb_dir} entry wdb` : 'directory queue/db not found yet'}`
        + `${id.wdb_socket ? `, now ${id.wdb_socket}` : ''}; daemons of ${id.exe_dirs.map((d) => d.path).join(', ') || 'no bin/ yet'} `
        + `(hooks: ${capture.attachedHooks().join(',')}; ${capture.targets().length} target processes); `
        + 'Ctrl-C to stop\n');
    }
    await stopped;
  } finally {
    if (timer) clearTimeout(timer);
    held?.stop();
    // The signal handlers stay until everything is detached: a second Ctrl-C must not cut the clean-up short.
    const counters = capture.counters();
    await capture.close();
    printHeld(); // complete exchanges that waited for an earlier request's reply, which cannot come now
    // What still waits for the reader: a second at most, then given up (and said).
    const lost = await output.finish(1000);
    const stopWhy = why();
    if (stopWhy) {
      // Printed: the lines the output took (a pipe, a file, the terminal), not those handed to it.
      const slow = output.dropped + (output.gone ? 0 : lost);
      err.write(`wazuh-nats-tap: stopped (${stopWhy}): ${output.delivered} exchanges printed`
        + `${slow ? `, ${slow} not printed (the output was too slow)` : ''}; kernel: `
        + `${counters.captured} records captured, ${counters.lost} lost, ${counters.truncated} truncated\n`);
    }
  }
  if (failure) throw failure;
  return 0;
}
