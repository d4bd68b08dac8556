// The one executable, `wazuh-nats-tap`. Exit codes (SPEC §7): 0 success,
// 1 runtime failure, 2 usage or configuration error, 3 missing privileges or
// kernel support.
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { runAgent } from './agent.js';
import { HOOKS, type Hook } from './capture/capture.js';
import { ConfigError } from './errors.js';
import { createLogger } from './util/log.js';

class UsageError extends Error {}

function parseHooks(list: string): Hook[] {
  const hooks = list.split(',').map((h) => h.trim()).filter(Boolean);
  const bad = hooks.filter((h) => !(HOOKS as readonly string[]).includes(h));
  if (bad.length || hooks.length === 0) {
    throw new ConfigError(`--hooks: ${bad.join(', ') || 'nothing'} is not one of ${HOOKS.join(', ')}`);
  }
  return hooks as Hook[];
}

export const EXIT = { ok: 0, runtime: 1, usage: 2, kernel: 3 } as const;

function exitCodeOf(e: unknown): number {
  const code = (e as { exitCode?: number })?.exitCode;
  return typeof code === 'number' ? code : EXIT.runtime;
}

export async function main(argv: string[]): Promise<number> {
  let code: number = EXIT.ok;
  const cli = yargs(argv)
    .scriptName('wazuh-nats-tap')
    .usage('$0 <command> [options]\n\nStreams a Wazuh manager\'s agent status changes to NATS, with eBPF and zero change to Wazuh.')
    .command('run', 'run the host agent in the foreground (systemd runs this)', (y) => y
      .option('home', { type: 'string', default: '/var/ossec', describe: 'the Wazuh manager\'s home' })
      .option('nats-url', { type: 'string', default: 'nats://127.0.0.1:4222', describe: 'NATS server URL(s), comma-separated' })
      .option('prefix', { type: 'string', default: 'wazuh', describe: 'subject prefix' })
      .option('node', { type: 'string', describe: 'manager node name (default: the host name)' })
      .option('log-level', { type: 'string', default: 'info', choices: ['fatal', 'error', 'warn', 'info', 'debug', 'trace'] })
      .option('attach', { type: 'boolean', default: true, describe: 'attach the eBPF programs at start (--no-attach: start detached)' })
      .option('hooks', {
        type: 'string', default: 'sendto',
        describe: 'syscalls to hook, comma-separated: sendto (Wazuh\'s daemons), write, sendmsg, writev; each costs every process that makes it',
      }),
    async (a) => {
      const log = createLogger(a.logLevel);
      try {
        code = await runAgent({
          home: a.home, natsUrls: a.natsUrl.split(',').map((s) => s.trim()).filter(Boolean),
          prefix: a.prefix, node: a.node, attach: a.attach, hooks: parseHooks(a.hooks), log,
        });
      } catch (e) {
        code = exitCodeOf(e);
        log.fatal({ err: e }, (e as Error).message);
        process.stderr.write(`wazuh-nats-tap: ${(e as Error).message}\n`);
      }
    })
    .demandCommand(1, 'name a command: run')
    .strict()
    .fail((msg, err, y) => {
      if (err) throw err;
      // Throwing stops yargs here: a failed check must never fall through to a command.
      throw new UsageError(`${y.help()}\n\n${msg}`);
    })
    .help()
    .version();
  try {
    await cli.parseAsync(); // throws synchronously or rejects, depending on where a check fails
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    process.stderr.write(`${e.message}\n`);
    code = EXIT.usage;
  }
  return code;
}
