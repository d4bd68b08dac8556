// Every element of the `<nats>` section of ossec.conf (SPEC §6): the single
// source of truth. The loader (ossec-conf.ts) validates from it, `config check`
// renders from it, and docs/configuration.md is generated from it
// (scripts/gen-config-doc.mjs; test/config-doc.test.ts fails when they drift).

/** How an element's text is parsed and validated. */
export type ValueType =
  | 'boolean' // yes | no
  | 'urls' // one or more nats:// or tls:// URLs, comma-separated
  | 'file' // an existing regular file
  | 'user' // a NATS user name
  | 'prefix' // dot-separated subject tokens
  | 'count' // a whole number >= 0
  | 'time' // seconds, Wazuh suffixes s/m/h/d allowed
  | 'name' // one subject token (JetStream stream name)
  | 'dir' // an absolute directory path
  | 'size' // bytes, suffixes B/KB/MB/GB allowed
  | 'level' // a Wazuh rule level 0..15
  | 'levels' // three ascending rule levels
  | 'address' // host:port, or no
  | 'hooks' // syscall names, comma-separated
  | 'millis' // milliseconds, `ms` allowed
  | 'replicas'; // auto, or 1..5

/** The key of a setting in EffectiveConfig. */
export type SettingKey =
  | 'enabled' | 'serverUrls' | 'credentialsFile' | 'nkeySeedFile' | 'tokenFile' | 'user' | 'passwordFile'
  | 'subjectPrefix' | 'tlsCert' | 'tlsKey' | 'tlsCa' | 'maxReconnects' | 'reconnectDelaySec' | 'discoverServers'
  | 'encryptMessages' | 'encryptionKey' | 'jetstream' | 'stream' | 'createStream' | 'agentsKv' | 'streamReplicas' | 'spoolDir'
  | 'spoolMaxSize' | 'keepaliveEvents' | 'keepaliveBatch' | 'keepaliveBatchIntervalSec' | 'alerts' | 'alertsMinLevel' | 'alertThresholds' | 'alertsFromBeginning' | 'metrics' | 'hooks' | 'captureIntervalMs';

export interface ConfigElement {
  /** The element's name in `<nats>`. */
  element: string;
  /** The setting's key in EffectiveConfig. */
  key: SettingKey;
  type: ValueType;
  /** The default as it would be written in ossec.conf; null: unset. `<home>` is the manager's home. */
  default: string | null;
  description: string;
  /** The element names a file whose contents are a secret: never shown, and refused when group or others have any access to it. */
  secret: boolean;
  /** The CLI flag of `run` that overrides it (without `--`); its camelCase form is the key in `overrides`. */
  flag?: string;
  /** A `time` that may be 0 (else at least 1 second). */
  zeroTime?: boolean;
  /**
   * A reload (SIGHUP) applies it to the running tap (agent/parts/reload.ts). A change to any other
   * element waits for a restart, and the reload names it (`needs_restart`).
   */
  live?: boolean;
}

/** The syscalls the capture can hook (capture/capture.ts HOOKS; test/config-schema.test.ts keeps them equal). */
export const HOOK_NAMES = ['sendto', 'write', 'sendmsg', 'writev'] as const;

export const NATS_ELEMENTS: readonly ConfigElement[] = [
  { element: 'enabled', key: 'enabled', type: 'boolean', default: 'no', secret: false, live: true,
    description: '`yes`: run the tap. `no`: `run` exits 0 saying so.' },
  { element: 'server_url', key: 'serverUrls', type: 'urls', default: 'nats://127.0.0.1:4222', secret: false, flag: 'nats-url',
    description: 'NATS server URL(s), `nats://` or `tls://`, comma-separated (the servers of one NATS cluster). Credentials in a URL (`nats://user:password@host`, `nats://token@host`, %-escaped) are used when no authentication element is set, and masked in output; prefer the `*_file` elements.' },
  { element: 'credentials_file', key: 'credentialsFile', type: 'file', default: null, secret: true,
    description: 'NATS `.creds` file (user JWT + nkey seed).' },
  { element: 'nkey_seed_file', key: 'nkeySeedFile', type: 'file', default: null, secret: true,
    description: 'File holding an nkey seed (`SU…`).' },
  { element: 'token_file', key: 'tokenFile', type: 'file', default: null, secret: true,
    description: 'File holding a NATS authentication token.' },
  { element: 'user', key: 'user', type: 'user', default: null, secret: false,
    description: 'NATS user name; needs `password_file`.' },
  { element: 'password_file', key: 'passwordFile', type: 'file', default: null, secret: true,
    description: 'File holding the password of `user`.' },
  { element: 'subject_prefix', key: 'subjectPrefix', type: 'prefix', default: 'wazuh', secret: false, flag: 'prefix',
    description: 'First tokens of every subject: dot-separated tokens of letters, digits, `-`, `_`.' },
  { element: 'tls_cert', key: 'tlsCert', type: 'file', default: null, secret: false,
    description: 'Client certificate (PEM); needs `tls_key`.' },
  { element: 'tls_key', key: 'tlsKey', type: 'file', default: null, secret: true,
    description: 'Private key of `tls_cert` (PEM); needs `tls_cert`.' },
  { element: 'tls_ca', key: 'tlsCa', type: 'file', default: null, secret: false,
    description: 'CA bundle (PEM) to verify the server; without it the system CAs are used; the server certificate is verified by default.' },
  { element: 'max_reconnects', key: 'maxReconnects', type: 'count', default: '10', secret: false,
    description: 'Reconnect attempts per cycle (a whole number ≥ 0); the tap itself never gives up.' },
  { element: 'reconnect_delay', key: 'reconnectDelaySec', type: 'time', default: '2', secret: false,
    description: 'Time between attempts: seconds, or with a Wazuh suffix `s`, `m`, `h`, `d` (`30s`, `1m`); at least 1 s.' },
  { element: 'discover_servers', key: 'discoverServers', type: 'boolean', default: 'yes', secret: false,
    description: '`yes`: also connect to the servers a NATS server announces (its cluster\'s `connect_urls`), so that one URL of a cluster reaches the others when it fails; kept (32 at most) for the reconnect cycles that follow. List every server of the cluster in `server_url` all the same: a tap that starts while its one configured server is down knows no other. `no`: only the servers of `server_url` — neither a server nor anything in the path of a `nats://` connection can send the tap, and its credentials, to another address.' },
  { element: 'encrypt_messages', key: 'encryptMessages', type: 'boolean', default: 'no', secret: false,
    description: '`yes`: encrypt payloads with AES-256-GCM; needs `encryption_key`.' },
  { element: 'encryption_key', key: 'encryptionKey', type: 'file', default: null, secret: true,
    description: 'File holding the 32-byte key, hex (64 digits) or base64.' },
  { element: 'jetstream', key: 'jetstream', type: 'boolean', default: 'no', secret: false,
    description: '`yes`: publish to JetStream, acknowledged and de-duplicated by `Nats-Msg-Id`.' },
  { element: 'stream', key: 'stream', type: 'name', default: 'WAZUH', secret: false,
    description: 'JetStream stream to publish into (letters, digits, `-`, `_`).' },
  { element: 'create_stream', key: 'createStream', type: 'boolean', default: 'no', secret: false,
    description: '`yes`: create the stream when it does not exist, at connect and again if it is deleted while the tap runs: subjects `<prefix>.>`, file storage, `stream_replicas` replicas, duplicate window 2 h, and no age or size limit — it keeps every event until JetStream\'s store is full: set `max_age`/`max_bytes` on it, or create it yourself (configuration.md, "The stream"). A stream that exists is used as it is.' },
  { element: 'agents_kv', key: 'agentsKv', type: 'boolean', default: 'no', secret: false,
    description: '`yes` (with JetStream): also keep each agent\'s latest status event in the KV bucket `<prefix>_agents` (key: agent id), for consumers that want current state without replaying; made again if deleted. Made with `stream_replicas` replicas. Its puts are apart from the stream\'s order: a bucket that cannot take them (away, an election, a refused put) holds no delivery; each agent\'s latest status waits for it, saved in `<spool_dir>/kv.pending` when it waited 250 ms (a restart puts them; a start with `agents_kv` off drops them), and `status` says how many (`KV bucket: N agents\' latest status waiting for it`).' },
  { element: 'stream_replicas', key: 'streamReplicas', type: 'replicas', default: 'auto', secret: false,
    description: 'Replicas of the stream `create_stream` makes and of the KV bucket of `agents_kv`: `1` to `5`, or `auto`: 3 when the server the tap connects to is in a cluster of at least 3 servers (its INFO: `cluster`, `connect_urls`), else 1 (and 1 when the cluster cannot hold 3). On a cluster, a stream or KV bucket of 1 replica is a single point of failure: while its one server is down, nothing is stored in it (the KV bucket: it lags — delivery goes on, each agent\'s latest status is put once it is back). A stream or bucket that exists is not changed; one with fewer replicas than this is said once in the log.' },
  { element: 'spool_dir', key: 'spoolDir', type: 'dir', default: '<home>/var/nats-tap', secret: false,
    description: 'Disk spool for events while NATS is away (an absolute path).' },
  { element: 'spool_max_size', key: 'spoolMaxSize', type: 'size', default: '512MB', secret: false,
    description: 'Bound of the spool: bytes, or with `KB`, `MB`, `GB` (1024-based); at least 1MB.' },
  { element: 'keepalive_events', key: 'keepaliveEvents', type: 'boolean', default: 'yes', secret: false, live: true,
    description: '`yes`: publish keepalives.' },
  { element: 'keepalive_batch', key: 'keepaliveBatch', type: 'count', default: '1000', secret: false,
    description: 'Up to N keepalives (and 512 KiB, less when the server\'s `max_payload` is smaller) in one message on `<prefix>.agent.batch.keepalive` (which `<prefix>.agent.*.keepalive` subscribers receive), `event_type` `keepalive_batch`, the events in `events`; at most 100000. `0`: one message per keepalive on `<prefix>.agent.<id>.keepalive` (several times the tap\'s CPU per keepalive).' },
  { element: 'keepalive_batch_interval', key: 'keepaliveBatchIntervalSec', type: 'time', default: '0', secret: false, zeroTime: true,
    description: 'With `keepalive_batch`: the longest a keepalive waits for its batch to fill (seconds, or with `s`, `m`). `0`: a batch holds the keepalives of one batch of captured records (about a millisecond under load) and waits for nothing.' },
  { element: 'alerts', key: 'alerts', type: 'boolean', default: 'yes', secret: false, live: true,
    description: '`yes`: publish Wazuh\'s alerts, read from `<home>/logs/alerts/alerts.json` (written by wazuh-analysisd).' },
  { element: 'alerts_min_level', key: 'alertsMinLevel', type: 'level', default: '0', secret: false, live: true,
    description: 'Publish only alerts of this rule level or above (0–15).' },
  { element: 'alert_thresholds', key: 'alertThresholds', type: 'levels', default: '7,10,13', secret: false, live: true,
    description: 'Lowest rule levels of the severities `medium`, `high`, `critical` (ascending, 1–15); below the first is `low`.' },
  { element: 'alerts_from_beginning', key: 'alertsFromBeginning', type: 'boolean', default: 'no', secret: false, live: true,
    description: 'When no read position is saved yet (the first start): `yes` publishes the alerts already in alerts.json, `no` only those written from now on. After that the tap resumes where it stopped.' },
  { element: 'metrics', key: 'metrics', type: 'address', default: '127.0.0.1:9464', secret: false, flag: 'metrics',
    description: 'Prometheus endpoint `host:port` (`[v6]:port` for IPv6), or `no`.' },
  { element: 'capture_interval', key: 'captureIntervalMs', type: 'millis', default: '1', secret: false, live: true,
    description: 'While records flow, how long they gather in the kernel\'s buffers before the tap takes them: milliseconds (`1`–`100`, `ms` allowed). Each take is a wake-up of the tap and, with keepalives, a NATS write, whatever it carries: `3` cuts the tap\'s CPU per keepalive at thousands a second by about 45 % (22–56 % across the runs of docs/performance.md) for ~1.5 ms more latency. An event waits up to this long for its round, at any rate. Changed by a reload (SIGHUP), no restart.' },
  { element: 'hooks', key: 'hooks', type: 'hooks', default: 'sendto', secret: false, flag: 'hooks',
    description: `Syscalls to hook, comma-separated: ${HOOK_NAMES.map((h) => `\`${h}\``).join(', ')}. Wazuh's daemons use \`sendto\`; each hook costs every process that makes the syscall.` },
];

/** Settings outside `<nats>` that flags override too. */
export const OTHER_OVERRIDES = [
  { flag: 'node', setting: 'managerNode', replaces: '`<cluster><node_name>`, else the host name' },
  { flag: 'home', setting: 'home', replaces: 'the detected home (`/var/ossec`, then `/var/wazuh-manager`)' },
  { flag: 'config', setting: 'file', replaces: '`<home>/etc/nats-tap.conf` (else `<home>/etc/ossec.conf`)' },
] as const;

export function elementByName(name: string): ConfigElement | undefined {
  return NATS_ELEMENTS.find((e) => e.element === name);
}

export function elementByKey(key: SettingKey): ConfigElement {
  const el = NATS_ELEMENTS.find((e) => e.key === key);
  if (!el) throw new Error(`no element for setting ${key}`);
  return el;
}

/** `nats-url` → `natsUrl`: the key of a flag in `overrides` (as yargs names it). */
export function camelFlag(flag: string): string {
  return flag.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
}
