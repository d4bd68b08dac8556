// util/checked-open.ts's replaces, with `sync`: the file replaced whole, then its directory fsynced — followed
// when the path reaches it through a link, as the spool's do (/proc/self/fd/<its pinned directory>/…): an
// O_NOFOLLOW there failed every synced replace after its rename (the spool's compaction then took the
// rewrite for failed and shed status changes).
import t from 'tap';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, symlinkSync, constants as fc } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { replaceOwn, replaceOwnAsync } from '../controller/src/util/checked-open.js';

t.test('a synced replace through a link to its directory (the spool\'s /proc/self/fd path, a symlinked spool_dir)', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'wnt-checked-open-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const fd = openSync(dir, fc.O_RDONLY | fc.O_DIRECTORY);
  t.teardown(() => closeSync(fd));
  const link = join(`${dir}-link`);
  symlinkSync(dir, link);
  t.teardown(() => rmSync(link, { force: true }));
  for (const base of [`/proc/self/fd/${fd}`, link, dir]) {
    t.doesNotThrow(() => replaceOwn(join(base, 'sync.txt'), `sync ${base}\n`, { sync: true }), `${base}: replaceOwn`);
    t.equal(readFileSync(join(dir, 'sync.txt'), 'utf8'), `sync ${base}\n`);
    await t.resolves(replaceOwnAsync(join(base, 'async.txt'), `async ${base}\n`, { sync: true }), `${base}: replaceOwnAsync`);
    t.equal(readFileSync(join(dir, 'async.txt'), 'utf8'), `async ${base}\n`);
  }
});
