// One StatusJournal.open() in a process of its own, so its heap can be limited (NODE_OPTIONS
// --max-old-space-size): argv is the journal's path and the agents it takes (or 'default'). Prints
// one JSON line: the agents known, the lines counted invalid, what was said, the time open() held
// the event loop.
import { StatusJournal } from '../../controller/src/state/sources/status-journal.js';

const [path, max] = process.argv.slice(2);
const said: [string, string][] = [];
const j = new StatusJournal(path, {
  maxAgents: max === 'default' ? undefined : Number(max),
  onError: (e, op) => { said.push([op, e.message]); },
});
const t0 = performance.now();
const known = j.open();
const ms = Math.round(performance.now() - t0);
j.close();
process.stdout.write(`${JSON.stringify({ known: known.size, invalid: j.invalidLines, said, ms })}\n`);
