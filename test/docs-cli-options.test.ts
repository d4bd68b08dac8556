// Every option a command's --help lists is in the README's command table and in the man page's
// synopsis (`run`: the README only — its synopsis says [options]): both had fallen behind the CLI
// (config check --home/--json, tail --count/--duration/--home, capture --hooks, attach/detach --json).
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { BIN, ROOT } from './helpers/tap-process.js';

const COMMANDS = ['run', 'status', 'attach', 'detach', 'config check', 'capture', 'tail'];
const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
// The man page's SYNOPSIS, roff escapes undone: one line per command (.br between them).
const man = readFileSync(join(ROOT, 'packaging/wazuh-nats-tap.8'), 'utf8');
const synopsis = /^\.SH SYNOPSIS\n([^]*?)^\.SH /m.exec(man)?.[1].replace(/\\-/g, '-').split(/^\.br\n/m) ?? [];

/** The options of `wazuh-nats-tap <command> --help`, but --help and --version. */
function options(command: string): string[] {
  const r = spawnSync(process.execPath, [BIN, ...command.split(' '), '--help'], { encoding: 'utf8', timeout: 20_000 });
  const flags = [...r.stdout.matchAll(/^ +(?:-[a-z], )?(--[a-z-]+)/gm)].map((m) => m[1]); // `  -h, --help` indents the rest
  return [...new Set(flags)].filter((f) => f !== '--help' && f !== '--version' && f !== '--attach');
}

t.test('each command\'s options are in the README\'s table and the man page\'s synopsis', async (t) => {
  for (const command of COMMANDS) {
    const opts = options(command);
    t.ok(opts.length > 0, `${command}: --help lists options`);
    const row = readme.split('\n').find((l) => l.startsWith('| `') && new RegExp(`^\\| \`(\`?\\w+\`?, )*\`?${command}\\b`).test(l)) ?? '';
    t.ok(row, `${command}: a row in the README's command table`);
    const cells = row.split(' | ')[0];
    t.same(opts.filter((o) => !cells.includes(o)), [], `${command}: every option in the README's row`);
    if (command === 'run') continue;
    const word = command.split(' ')[0];
    const entry = synopsis.find((s) => new RegExp(`^\\.B (wazuh-nats-tap ${command}|${word})$`, 'm').test(s)) ?? '';
    t.ok(entry, `${command}: in the man page's synopsis`);
    t.same(opts.filter((o) => !entry.includes(o)), [], `${command}: every option in the man page's synopsis`);
  }
});
