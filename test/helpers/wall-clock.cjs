// A wall clock that can be stepped, for one process: what an NTP step (chrony's makestep at boot),
// an administrator's `date -s` or a resumed virtual machine does to CLOCK_REALTIME — without
// touching the machine's clock, which other tests and taps share. Only `Date` moves; the monotonic
// clock (performance.now, process.hrtime, the kernel's stamps on captured records) does not, as in
// a real step.
//
// In-process: `const clock = installWallClock(); clock.step(-3_600_000); … clock.restore()`.
// In a child: `node --require test/helpers/wall-clock.cjs …` with WNT_WALL_CLOCK_FILE naming a file
// that holds the offset in milliseconds (read every 20 ms; missing or empty: 0).
'use strict';
const { readFileSync } = require('node:fs');

const RealDate = globalThis.Date;

function installWallClock() {
  let offset = 0;
  class SteppedDate extends RealDate {
    constructor(...args) {
      if (args.length === 0) super(RealDate.now() + offset);
      else super(...args);
    }
    static now() {
      return RealDate.now() + offset;
    }
  }
  globalThis.Date = SteppedDate;
  return {
    step(ms) { offset += ms; },
    set(ms) { offset = ms; },
    get offset() { return offset; },
    restore() { globalThis.Date = RealDate; },
  };
}

const file = process.env.WNT_WALL_CLOCK_FILE;
if (file) {
  const clock = installWallClock();
  const read = () => {
    try {
      const n = Number(readFileSync(file, 'utf8').trim() || 0);
      if (Number.isFinite(n)) clock.set(n);
    } catch { /* no file yet: no offset */ }
  };
  read();
  setInterval(read, 20).unref();
}

module.exports = { installWallClock };
