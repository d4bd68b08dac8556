// The one executable, `wazuh-nats-tap`. Exit codes (SPEC §7): 0 success,
// 1 runtime failure, 2 usage or configuration error, 3 missing privileges or
// kernel support.
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { runAgent } from './agent.js';
import { controlCommand, DEFAULT_CONTROL_SOCKET } from './commands/control.js';
import type { ControlCommand } from './control/protocol.js';
import { checkKernel } from './capture/capture.js';
import { artefacts } from './paths.js';
import { detectHome, loadConfig, parseServerUrls } from './config/ossec-conf.js';
import { connectOptions, urlOptions } from './publish/connect-options.js';
import { maskedConfig } from './config/mask.js';
import { renderConfig } from './config/render.js';
import { runTail, tapConfigForTail } from './commands/tail.js';
import { readKeyFile } from './publish/encryption.js';
import { runCaptureCommand } from './commands/capture.js';
import { HOOKS, type Hook } from './capture/capture.js';
import { ConfigError } from './errors.js';
import { createLogger } from './util/log.js';
import { consoleToStderr, routeConsole } from './util/console.js';
import { notifyOnce } from './agent/sd-notify.js';
import { clip, clipPath, clipRuns } from './util/clip.js';
import { viewProblem } from './util/in-view.js';
import { validateSubjectFilter } from './publish/subjects.js';
import { loggedError, Lifecycle, watchProcess } from './agent/lifecycle.js';
import { maskSecrets, maskUrlsIn, urlSecrets } from './util/mask-url.js';
import { escapeUnsafe, printable } from './util/printable.js';

/** Signals the executable took before the modules were loaded (bin/wazuh-nats-tap.js): the lifecycle's now. */
function adoptEarlySignals(life: Lifecycle): void {
  const early = (globalThis as { __wazuhNatsTapEarlySignals?: { signals: string[]; release(): void } }).__wazuhNatsTapEarlySignals;
  if (!early) return;
  early.release();
  for (const sig of early.signals.splice(0)) {
    if (sig === 'SIGHUP') life.hup();
    else life.requestStop({ why: sig, code: 0 });
  }
}

class UsageError extends Error {}

/** A usage error said in one line (`wazuh-nats-tap <command>: …`), without the help: exit 2. */
class UsageLine extends Error {}

/**
 * Every option that takes a value (a string, a number) is given at most once: yargs makes a
 * repeated one an array, which no command expects (`--nats-url A --nats-url B` crashed on
 * `.split`, `--home` twice on `path.resolve`, `--log-level` twice in pino). Said in one line, exit 2,
 * naming the option; its values are not echoed (a --nats-url may hold a password). Several NATS
 * servers or hooks are one comma-separated value. A flag (a boolean) given again is no array:
 * the last one wins, as yargs has it (`--no-attach --attach` attaches).
 */
const COMMA_SEPARATED = new Set(['nats-url', 'hooks']);

function checkRepeatedOptions(argv: Record<string, unknown>, options: { array?: string[] }): true {
  const arrays = new Set(options.array ?? []); // none today: an option declared to repeat stays allowed
  for (const [key, value] of Object.entries(argv)) {
    if (key === '_' || key === '$0' || !Array.isArray(value) || arrays.has(key)) continue;
    // yargs keeps a dashed option under its camel-case alias too: named once, as it is typed.
    if (/[A-Z]/.test(key) && Object.keys(argv).some((k) => k !== key && k.includes('-') && camel(k) === key)) continue;
    const command = (argv._ as unknown[]).map(String).join(' ');
    const several = COMMA_SEPARATED.has(key) ? ' (several: one comma-separated value)' : '';
    throw new UsageLine(`wazuh-nats-tap${command ? ` ${command}` : ''}: --${key} given ${value.length} times: `
      + `it takes one value, give it once${several} (see --help)`);
  }
  return true;
}

function camel(flag: string): string {
  return flag.replace(/-+([^-])/g, (_, c: string) => c.toUpperCase());
}



async function control(path: string, cmd: ControlCommand, json: boolean): Promise<number> {
  try {
    return await controlCommand(path, cmd, json);
  } catch (e) {
    process.stderr.write(`wazuh-nats-tap ${cmd}: ${escapeUnsafe((e as Error).message)}\n`);
    return exitCodeOf(e);
  }
}

function parseHooks(list: string): Hook[] {
  const hooks = list.split(',').map((h) => h.trim()).filter(Boolean);
  const bad = hooks.filter((h) => !(HOOKS as readonly string[]).includes(h));
  if (bad.length || hooks.length === 0) {
    throw new ConfigError(`--hooks: ${clip(bad.join(', ')) || 'nothing'} is not one of ${HOOKS.join(', ')}`);
  }
  return hooks as Hook[];
}

export const EXIT = { ok: 0, runtime: 1, usage: 2, kernel: 3 } as const;

/** Longest --duration: a timer holds at most 2^31 - 1 ms (a longer one would fire at once). */
const MAX_DURATION_S = Math.floor(0x7fffffff / 1000);

/** A numeric flag: a finite number >= 0 (a whole one, bounded, when asked); else a usage error (exit 2). */
function checkNumber(flag: string, v: number, o: { integer?: boolean; max?: number } = {}): void {
  const what = o.integer ? 'a whole number >= 0' : 'a number >= 0';
  if (!Number.isFinite(v)) throw new ConfigError(`--${flag}: not a number; must be ${what}`);
  if (v < 0 || (o.integer && !Number.isInteger(v))) throw new ConfigError(`--${flag} ${clip(v)}: must be ${what}`);
  if (o.max !== undefined && v > o.max) throw new ConfigError(`--${flag} ${clip(v)}: at most ${o.max}`);
}

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
      .usage('$0 run [options]\n\nReads the <nats> section of <home>/etc/nats-tap.conf (docs/configuration.md); '
        + 'flags override it. SIGTERM/SIGINT: flush, detach, exit 0. SIGHUP: reload the configuration.')
      .option('config', { type: 'string', describe: 'the configuration file (default: <home>/etc/nats-tap.conf, else the <nats> of <home>/etc/ossec.conf)' })
      .option('home', { type: 'string', describe: 'the Wazuh manager\'s home (default: /var/ossec, else /var/wazuh-manager)' })
      .option('nats-url', { type: 'string', describe: 'NATS server URL(s), comma-separated (overrides <server_url>)' })
      .option('prefix', { type: 'string', describe: 'subject prefix (overrides <subject_prefix>)' })
      .option('node', { type: 'string', describe: 'manager node name (default: <cluster><node_name>, else the host name)' })
      .option('log-level', { type: 'string', default: 'info', choices: ['fatal', 'error', 'warn', 'info', 'debug', 'trace'] })
      .option('attach', { type: 'boolean', default: true, describe: 'attach the eBPF programs at start (--no-attach: start detached)' })
      .option('hooks', {
        type: 'string',
        describe: 'syscalls to hook, comma-separated: sendto (Wazuh\'s daemons), write, sendmsg, writev; each costs every process that makes it (overrides <hooks>)',
      })
      .option('control-socket', { type: 'string', default: DEFAULT_CONTROL_SOCKET, describe: 'where attach, detach and status reach this agent (root only)' })
      .option('metrics', { type: 'string', describe: 'Prometheus endpoint host:port, or no (overrides <metrics>)' }),
    async (a) => {
      const log = createLogger(a.logLevel);
      const unrouteConsole = routeConsole(log); // stdout is JSON lines: a library's console text becomes a warning
      // What a fatal error's text may carry of server_url's credentials is masked before it is shown.
      let secrets = urlSecrets(a.natsUrl?.split(',') ?? []);
      const shown = (text: string) => maskSecrets(text, secrets);
      // The lifecycle exists, and takes the signals, before anything is opened (SPEC §8).
      const life = new Lifecycle(log, undefined, undefined, shown);
      const unwatch = watchProcess(life);
      adoptEarlySignals(life);
      try {
        checkKernel(artefacts().libPath);
        const load = () => loadConfig({
          file: a.config, home: a.home,
          overrides: { natsUrl: a.natsUrl, prefix: a.prefix, node: a.node, hooks: a.hooks, metrics: a.metrics },
        });
        const cfg = load();
        secrets = urlSecrets(cfg.serverUrls);
        for (const w of cfg.warnings) log.warn(maskUrlsIn(w));
        if (!cfg.enabled) {
          process.stderr.write(`wazuh-nats-tap: disabled (<enabled>no</enabled> in ${cfg.file}); nothing to do\n`);
          log.info({ file: cfg.file }, 'disabled in the configuration');
          notifyOnce(`READY=1\nSTATUS=disabled (<enabled>no</enabled> in ${cfg.file})`); // systemd: a start with nothing to do, not a failed one
          code = EXIT.ok;
          return;
        }
        code = await runAgent({
          home: cfg.home, natsUrls: cfg.serverUrls, prefix: cfg.subjectPrefix, node: cfg.managerNode,
          attach: a.attach, hooks: cfg.hooks as Hook[], controlSocket: a.controlSocket, metrics: cfg.metrics,
          keepaliveEvents: cfg.keepaliveEvents, captureIntervalMs: cfg.captureIntervalMs, log,
          // A reload reads the file the start read, in the home it found: never another one the loader
          // would pick now (nats-tap.conf missing for an instant made it read ossec.conf's — no <nats>,
          // so "disabled" — and the tap stopped, exit 0, for good under Restart=on-failure).
          reload: {
            running: cfg,
            load: () => loadConfig({
              file: cfg.file, home: cfg.home,
              overrides: { natsUrl: a.natsUrl, prefix: a.prefix, node: a.node, hooks: a.hooks, metrics: a.metrics },
            }),
          },
          alerts: { enabled: cfg.alerts, minLevel: cfg.alertsMinLevel, thresholds: cfg.alertThresholds, fromBeginning: cfg.alertsFromBeginning },
          delivery: {
            spoolDir: cfg.spoolDir, spoolMaxBytes: cfg.spoolMaxSize, jetstream: cfg.jetstream, stream: cfg.stream,
            createStream: cfg.createStream, agentsKv: cfg.agentsKv, streamReplicas: cfg.streamReplicas, maxReconnects: cfg.maxReconnects, reconnectDelaySec: cfg.reconnectDelaySec,
            security: cfg, keepaliveBatch: cfg.keepaliveBatch, keepaliveBatchIntervalSec: cfg.keepaliveBatchIntervalSec,
            encryption: cfg.encryptMessages && cfg.encryptionKey ? readKeyFile(cfg.encryptionKey) : undefined,
          },
        }, life);
        if (code !== 0 && life.stopping?.err) process.stderr.write(`wazuh-nats-tap: ${shown(life.stopping.err.message)}\n`);
      } catch (e) {
        code = exitCodeOf(e);
        const err = e as Error;
        // What the operator must fix (a configuration, a privilege) is said without a stack: it is no bug.
        const told = code === EXIT.usage || code === EXIT.kernel;
        log.fatal(told ? { exit_code: code } : { err: loggedError(err, shown) }, shown(err.message));
        process.stderr.write(`wazuh-nats-tap: ${shown(err.message)}\n`);
      } finally {
        unwatch(); // the signals stay handled, ignored, until the process exits (bin: exitWhenIdle)
        unrouteConsole();
      }
    })
    .command('config', 'the configuration: config check', (y) => y
      .command('check', 'validate and print the effective configuration, secrets masked', (yy) => yy
        .option('config', { type: 'string', describe: 'the configuration file (default: <home>/etc/nats-tap.conf, else the <nats> of <home>/etc/ossec.conf)' })
        .option('home', { type: 'string', describe: 'the Wazuh manager\'s home' })
        .option('json', { type: 'boolean', default: false, describe: 'the masked configuration as JSON' }),
      (a) => {
        try {
          const cfg = loadConfig({ file: a.config, home: a.home });
          process.stdout.write(a.json ? `${JSON.stringify(maskedConfig(cfg), null, 2)}\n` : `${renderConfig(cfg)}\n`);
          code = EXIT.ok;
        } catch (e) {
          code = exitCodeOf(e);
          process.stderr.write(`wazuh-nats-tap config check: ${maskUrlsIn((e as Error).message)}\n`); // the loader masks its own; whatever else quotes a URL too
        }
      })
      .demandCommand(1, 'name a subcommand: check'))
    .command('capture', 'debug: print decoded wdb traffic live, without NATS (like tcpdump for wdb)', (y) => y
      .usage('$0 capture [options]\n\nOne line per request/reply exchange on wazuh-db\'s socket: time, process[pid], '
        + 'connection, command, agents, main arguments -> reply status, reply and latency. Agent keys are never printed. '
        + 'Stops on Ctrl-C/SIGTERM, --count or --duration and leaves nothing in the kernel. '
        + 'Needs root (or CAP_BPF and CAP_PERFMON); exit code 3 when privileges or kernel support are missing.')
      .option('json', { type: 'boolean', default: false, describe: 'one JSON object per exchange and line (shape: docs/troubleshooting.md)' })
      .option('home', { type: 'string', describe: 'the Wazuh manager\'s home, agent names from its etc/client.keys (default: /var/ossec, else /var/wazuh-manager, as run finds it)' })
      .option('hooks', {
        type: 'string', default: 'sendto',
        describe: 'syscalls to hook, comma-separated: sendto (Wazuh\'s daemons), write, sendmsg, writev',
      })
      .option('count', { type: 'number', default: 0, describe: 'stop after N exchanges (0: no limit)' })
      .option('duration', { type: 'number', default: 0, describe: 'stop after S seconds (0: no limit)' })
      .example('$0 capture --count 10', 'print the next 10 exchanges and exit')
      .example('$0 capture --json --duration 60 > wdb.jsonl', 'one minute of traffic as JSON lines'),
    async (a) => {
      try {
        checkNumber('count', a.count, { integer: true });
        checkNumber('duration', a.duration, { max: MAX_DURATION_S });
        const home = a.home ?? detectHome();
        // As run refuses it (config/ossec-conf.ts): a home the tap cannot look up as its container does.
        const viewed = viewProblem(home);
        if (viewed) throw new ConfigError(`the Wazuh home '${clipPath(home)}' cannot be followed: ${viewed}`);
        code = await runCaptureCommand({
          json: a.json, home, hooks: parseHooks(a.hooks), count: a.count, duration: a.duration,
        });
      } catch (e) {
        code = exitCodeOf(e);
        process.stderr.write(`wazuh-nats-tap: ${(e as Error).message}\n`);
      }
    })
    .command('status', 'show the running agent: attached or not, targets, NATS, agents by status, counters', (y) => y
      .option('json', { type: 'boolean', default: false, describe: 'one JSON object instead of the table' })
      .option('control-socket', { type: 'string', default: DEFAULT_CONTROL_SOCKET }),
    async (a) => { code = await control(a.controlSocket, 'status', a.json); })
    .command('attach', 'attach the eBPF programs of the running agent (capture resumes, state resynchronised)', (y) => y
      .option('json', { type: 'boolean', default: false })
      .option('control-socket', { type: 'string', default: DEFAULT_CONTROL_SOCKET }),
    async (a) => { code = await control(a.controlSocket, 'attach', a.json); })
    .command('detach', 'detach the eBPF programs of the running agent (no hook left in the kernel)', (y) => y
      .option('json', { type: 'boolean', default: false })
      .option('control-socket', { type: 'string', default: DEFAULT_CONTROL_SOCKET }),
    async (a) => { code = await control(a.controlSocket, 'detach', a.json); })
    .command('tail [subject]', 'subscribe and print the events as they arrive', (y) => y
      .usage('$0 tail [subject] [options]\n\nWithout --nats-url, the server, its TLS and credentials, the encryption key and the '
        + 'subject prefix come from the tap\'s configuration (<home>/etc/nats-tap.conf, as `run` reads it): on the manager '
        + 'host `wazuh-nats-tap tail` just works. --nats-url alone reads no configuration; with --config or --home it replaces '
        + 'only the configuration\'s servers. Flags override it. One line per event (a keepalive batch: one line per '
        + 'keepalive it carries); a message that is no event (not JSON, encrypted without the key…) is one line saying why.')
      .positional('subject', { type: 'string', describe: 'NATS subject (wildcards allowed); default <prefix>.>' })
      .option('nats-url', { type: 'string', describe: 'NATS server URL(s), nats:// or tls://, comma-separated (default: the configuration\'s, else nats://127.0.0.1:4222); alone, no configuration is read' })
      .option('config', { type: 'string', describe: 'the tap\'s configuration file (default: <home>/etc/nats-tap.conf); with --nats-url, its servers are replaced' })
      .option('home', { type: 'string', describe: 'the Wazuh manager\'s home' })
      .option('json', { type: 'boolean', default: false, describe: 'one JSON object per line' })
      .option('count', { type: 'number', default: 0, describe: 'stop after N messages, not lines: a keepalive batch is one; a message that is no event counts too' })
      .option('duration', { type: 'number', default: 0, describe: 'stop after S seconds' })
      .option('encryption-key', { type: 'string', describe: 'key file to decrypt encrypted messages (default: the configuration\'s encryption_key); with a key, an unencrypted message is not shown' })
      .option('allow-plaintext', { type: 'boolean', default: false, describe: 'with a key: show unencrypted messages too, marked (NOT ENCRYPTED): anyone who may publish under the prefix could have written them' })
      .example('$0 tail \'wazuh.agent.*.status\'', 'every agent status change'),
    async (a) => {
      // Whatever --nats-url holds is masked in a message, checked or not.
      let urls = a.natsUrl?.split(',').map((s) => s.trim()).filter(Boolean) ?? [];
      const restoreConsole = consoleToStderr(); // stdout is the events: a library's console text is not one
      try {
        checkNumber('count', a.count, { integer: true });
        checkNumber('duration', a.duration, { max: MAX_DURATION_S });
        // --nats-url alone: that server, no configuration read. With --config or --home too: the
        // configuration's prefix, key, TLS and credentials, its servers replaced (as `run --nats-url`).
        // Either way the URLs are checked as <server_url> is (empty, not a URL: exit 2).
        const explicit = a.config !== undefined || a.home !== undefined;
        if (a.natsUrl !== undefined && !explicit) urls = parseServerUrls('--nats-url', a.natsUrl);
        const conf = a.natsUrl === undefined || explicit
          ? tapConfigForTail({ file: a.config, home: a.home, overrides: a.natsUrl !== undefined ? { natsUrl: a.natsUrl } : undefined })
          : null;
        if (conf) urls = conf.serverUrls;
        code = await runTail({
          servers: urls.length ? urls : ['nats://127.0.0.1:4222'],
          subject: validateSubjectFilter(a.subject ?? `${conf?.subjectPrefix ?? 'wazuh'}.>`),
          json: a.json, count: a.count, duration: a.duration,
          key: a.encryptionKey ? readKeyFile(a.encryptionKey)
            : conf?.encryptMessages && conf.encryptionKey ? readKeyFile(conf.encryptionKey) : undefined,
          allowPlaintext: a.allowPlaintext,
          connect: conf ? connectOptions(conf) : urlOptions(urls),
        });
      } catch (e) {
        code = exitCodeOf(e);
        process.stderr.write(`wazuh-nats-tap tail: ${printable(maskSecrets((e as Error).message, urlSecrets(urls)))}\n`);
      } finally {
        restoreConsole();
      }
    })
    .demandCommand(1, 'name a command: run, status, attach, detach, config check, capture, tail')
    .strict()
    .check((argv, options) => checkRepeatedOptions(argv, options as { array?: string[] }))
    .fail((msg, err, y) => {
      if (err) throw err;
      // Throwing stops yargs here: a failed check must never fall through to a command.
      throw new UsageError(`${y.help()}\n\n${clipRuns(msg)}`);
    })
    .help()
    .alias('h', 'help') // `-h` works after every command, as `--help` does (it was refused by .strict() but after run)
    .version();
  try {
    await cli.parseAsync(); // throws synchronously or rejects, depending on where a check fails
  } catch (e) {
    if (!(e instanceof UsageError) && !(e instanceof UsageLine)) throw e;
    process.stderr.write(`${e.message}\n`);
    code = EXIT.usage;
  }
  return code;
}
