// koffi binding of the libbpf shim (bpf/shim/wdbtap_shim.h). This file is the
// only one that knows the C ABI; Capture (capture.ts) is what the rest uses.
import koffi from 'koffi';

export interface ShimLib {
  check_kernel(err: Buffer, errlen: number): number;
  open(obj: string, pages: number, hooks: number, err: Buffer, errlen: number): unknown;
  attach(h: unknown, hooks: number): number;
  /** Also `.async` (koffi): on a libuv thread, for the event loop's detach (a link's removal waits for RCU). */
  detach: ((h: unknown) => number) & { async(h: unknown, cb: (err: unknown, rc: number) => void): void };
  is_attached(h: unknown): number;
  target_name(h: unknown, name: string, id: number, add: number): number;
  targets(h: unknown, tgids: Uint32Array, daemons: Uint32Array, n: number): number;
  target_tgid(h: unknown, tgid: number, daemon: number): number;
  set_exe_dirs(h: unknown, devs: BigUint64Array, inos: BigUint64Array, any: Uint32Array, n: number): number;
  set_wdb_dir(h: unknown, dev: bigint, ino: bigint): number;
  set_commands(h: unknown, names: string, all: number): number;
  notify_fd(h: unknown): number;
  take(h: unknown, buf: Buffer, cap: number, more: Uint32Array): number;
  rest(h: unknown): number;
  delivered(h: unknown, out: BigUint64Array): number;
  counters(h: unknown, out: BigUint64Array, n: number): number;
  lost_per_cpu(h: unknown, out: BigUint64Array, n: number): number;
  record_size(): number;
  forget_key(h: unknown, key: number): void;
  set_fastpath(h: unknown, on: number): void;
  fastpath_stats(h: unknown, out: BigUint64Array, n: number): number;
  last_error(h: unknown): string;
  verified_insns(h: unknown, prog: Buffer, len: number): number;
  close(h: unknown): void;
}

let cached: ShimLib | undefined;

export function loadShim(path: string): ShimLib {
  if (cached) return cached;
  const lib = koffi.load(path);
  koffi.opaque('wdbtap');
  const f = (name: string, proto: string) => lib.func(proto.replace('NAME', `wdbtap_${name}`));
  cached = {
    check_kernel: f('check_kernel', 'int NAME(_Out_ uint8_t *err, uint32_t errlen)'),
    open: f('open', 'wdbtap *NAME(const char *obj, uint32_t pages, uint32_t hooks, _Out_ uint8_t *err, uint32_t errlen)'),
    attach: f('attach', 'int NAME(wdbtap *t, uint32_t hooks)'),
    detach: f('detach', 'int NAME(wdbtap *t)'),
    is_attached: f('is_attached', 'int NAME(wdbtap *t)'),
    target_name: f('target_name', 'int NAME(wdbtap *t, const char *name, uint32_t id, int add)'),
    targets: f('targets', 'int NAME(wdbtap *t, _Out_ uint32_t *tgids, _Out_ uint32_t *daemons, uint32_t n)'),
    target_tgid: f('target_tgid', 'int NAME(wdbtap *t, uint32_t tgid, uint32_t daemon)'),
    set_exe_dirs: f('set_exe_dirs', 'int NAME(wdbtap *t, const uint64_t *devs, const uint64_t *inos, const uint32_t *any, uint32_t n)'),
    set_wdb_dir: f('set_wdb_dir', 'int NAME(wdbtap *t, uint64_t dev, uint64_t ino)'),
    set_commands: f('set_commands', 'int NAME(wdbtap *t, const char *names, int all)'),
    notify_fd: f('notify_fd', 'int NAME(wdbtap *t)'),
    take: f('take', 'int NAME(wdbtap *t, _Out_ uint8_t *buf, uint32_t cap, _Out_ uint32_t *more)'),
    rest: f('rest', 'int NAME(wdbtap *t)'),
    delivered: f('delivered', 'int NAME(wdbtap *t, _Out_ uint64_t *out)'),
    counters: f('counters', 'int NAME(wdbtap *t, _Out_ uint64_t *out, uint32_t n)'),
    lost_per_cpu: f('lost_per_cpu', 'int NAME(wdbtap *t, _Out_ uint64_t *out, uint32_t n)'),
    record_size: f('record_size', 'uint32_t NAME()'),
    forget_key: f('forget_key', 'void NAME(wdbtap *t, uint32_t key)'),
    set_fastpath: f('set_fastpath', 'void NAME(wdbtap *t, int on)'),
    fastpath_stats: f('fastpath_stats', 'int NAME(wdbtap *t, _Out_ uint64_t *out, uint32_t n)'),
    last_error: f('last_error', 'const char *NAME(wdbtap *t)'),
    verified_insns: f('verified_insns', 'uint32_t NAME(wdbtap *t, _Out_ uint8_t *prog, uint32_t len)'),
    close: f('close', 'void NAME(wdbtap *t)'),
  } as ShimLib;
  return cached;
}
