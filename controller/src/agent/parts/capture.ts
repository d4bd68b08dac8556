// The kernel side: load the programs, poll records into the pipeline, attach.
// Records the kernel or the shim could not deliver are reported and followed by
// a resync (SPEC §5). A failed poll is fatal: the lifecycle detaches and exits
// non-zero.
import type { Part } from '../lifecycle.js';
import { ATTACHED_RESYNC, LOSS_RESYNC, type Tap } from '../tap.js';
import { Capture } from '../../capture/capture.js';
import { LOSS_COUNTERS } from '../../capture/loss.js';
import { artefacts } from '../../paths.js';
import { STATE_COMMANDS } from '../../state/commands.js';

type LossCounter = keyof typeof LOSS_COUNTERS;

export function capturePart(tap: Tap): Part & { attach(): Promise<void>; detach(): Promise<void> } {
  let lossCheck: NodeJS.Timeout | null = null;
  const last = Object.fromEntries(Object.keys(LOSS_COUNTERS).map((k) => [k, 0])) as Record<LossCounter, number>;
  let rescanErrors = 0;
  const { log, opts } = tap;

  // attach and detach one at a time, in the order asked: `detach, attach, detach` ends detached (each
  // waited only for the detach under way, and the attach queued behind it ran after the last detach).
  let queue: Promise<unknown> = Promise.resolve();
  const inTurn = (op: () => Promise<void>): Promise<void> => {
    const turn = queue.then(op, op);
    queue = turn.catch(() => {});
    return turn;
  };
  const attach = () => inTurn(async () => {
    const capture = tap.capture;
    if (!capture) return;
    await capture.whenDetached(); // a detach under way ends first (its links are going)
    // Not once the agent stops: an attach that waited for a detach must not hook the kernel again.
    if (capture.attached || tap.capture !== capture || tap.life.stopping) return;
    capture.attach();
    announceAttached(capture);
  });
  /** Said and resynchronised after every attach. */
  const announceAttached = (capture: Capture) => {
    tap.publisher?.publishLifecycle('attached', {});
    const identity = capture.identity();
    log.info({ home: opts.home, node: tap.node, prefix: tap.prefix, hooks: capture.attachedHooks(), targets: capture.targets().length, identity },
      'attached: capturing wazuh-db traffic');
    if (!identity.wdb_dir || !identity.exe_dirs.length) {
      log.warn({ home: opts.home }, `${opts.home} has no ${identity.wdb_dir ? 'bin/' : 'queue/db/'} (yet): nothing is captured until the manager is installed there (checked every 2 s)`);
    }
    // What changed while nothing was captured (since the first sync, or while detached).
    void tap.resync(ATTACHED_RESYNC);
  };
  // The links' removal waits for the kernel (RCU), on a libuv thread: the event loop goes on taking
  // records and answering status meanwhile; the answer to `detach` comes once none is left.
  const detach = () => inTurn(async () => {
    const capture = tap.capture;
    if (!capture?.attached) return capture?.whenDetached();
    await capture.detachAsync();
    tap.publisher?.publishLifecycle('detached', {});
    log.info('detached: no hook left in the kernel');
  });

  return {
    name: 'capture',
    attach,
    detach,
    start() {
      const capture = Capture.open({
        ...artefacts(), home: opts.home, hooks: opts.hooks, commands: STATE_COMMANDS, fastpath: true, roundMs: opts.captureIntervalMs,
        pin: tap.homePin,
        // EMFILE and the like: the next rescan (2 s) tries again; logged rate-limited, never fatal.
        onRescanError: (e) => { if (rescanErrors++ % 100 === 0) log.warn({ err: e.message, failures: rescanErrors }, 'cannot scan /proc for Wazuh daemons: retrying'); },
      });
      tap.capture = capture;
      const v = capture.verifier;
      // A quarter of the limit: a kernel whose verifier works this hard may refuse the next version.
      if (v && v.instructions > v.limit / 4) log.warn(v, 'BPF programs: the kernel\'s verifier came close to its limit on one');
      else log.debug({ verifier: v }, 'BPF programs verified');
      capture.start((records) => tap.pipeline.push(records),
        (e) => tap.life.requestStop({ why: 'capture failed', code: 1, err: e }));
      let lossPending = false;
      lossCheck = setInterval(() => {
        const counters = capture.counters();
        let lost = 0;
        for (const name of Object.keys(LOSS_COUNTERS) as LossCounter[]) {
          const rose = counters[name] - last[name];
          if (rose <= 0) continue;
          log.warn({ [name]: rose }, LOSS_COUNTERS[name]);
          last[name] = counters[name];
          lost += rose;
        }
        // One report for every kind: records (or whole writes: a read or in-flight failure) not delivered.
        if (lost > 0) {
          tap.publisher?.publishLifecycle('records_lost', { lost });
          lossPending = true;
        }
        // Spaced (LOSS_RESYNC_GAP_MS): loss that goes on gets one resynchronisation now and then, not one a second.
        if (lossPending && tap.mayResyncForLoss()) {
          lossPending = false;
          void tap.resync(LOSS_RESYNC);
        }
      }, 1000);
      lossCheck.unref();
      if (opts.attach) {
        capture.attach(); // at start, nothing is detaching: at once, so that a failure fails the start
        announceAttached(capture);
      } else log.info('started detached (--no-attach)');
    },
    async stop() {
      if (lossCheck) clearInterval(lossCheck);
      lossCheck = null;
      const capture = tap.capture;
      if (!capture) return;
      // First, on this thread: whatever happens next, no hook stays in the kernel — also when a detach
      // under way waits for a libuv thread a hung disk holds (the shim destroys each link once).
      capture.detach();
      await capture.close();
      tap.capture = null;
      tap.pipeline.release(null); // exchanges that waited for a reply that cannot come now (decode/apply-order.ts)
    },
  };
}
