// SIGHUP: what a reload does not apply is named (needs_restart), whatever the
// setting — found by comparing the whole configuration, not from a list that
// forgets one (encrypt_messages was dropped without a word). The reload of a
// running tap, with its log, is in cli-control.
import t from 'tap';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig, type EffectiveConfig } from '../controller/src/config/ossec-conf.js';
import { NATS_ELEMENTS } from '../controller/src/config/schema.js';
import { needsRestart, reloadHandler } from '../controller/src/agent/parts/reload.js';
import { readKeyFile } from '../controller/src/publish/encryption.js';
import type { Tap } from '../controller/src/agent/tap.js';
import { writeOssecConf } from './helpers/config.js';

function home(): string {
  const dir = mkdtempSync(join(tmpdir(), 'wnt-reload-'));
  writeOssecConf(dir);
  return dir;
}

t.test('every element a reload does not apply is named when it changed; the live ones never are', async (t) => {
  const h = home();
  const running = loadConfig({ home: h });
  t.same(needsRestart(running, loadConfig({ home: h })), [], 'the same file read again: nothing to name');
  for (const e of NATS_ELEMENTS) {
    const next = { ...running, [e.key]: { changed: e.key } } as EffectiveConfig;
    t.same(needsRestart(running, next), e.live ? [] : [e.element], `${e.element}: ${e.live ? 'applied live' : 'named'}`);
  }
  t.same(needsRestart(running, { ...running, managerNode: 'other' }), ['manager_node']);
  // The live ones: what reload.ts applies (the reload test of cli-control sees two of them in `status`).
  t.same(NATS_ELEMENTS.filter((e) => e.live).map((e) => e.element).sort(),
    ['alert_thresholds', 'alerts', 'alerts_from_beginning', 'alerts_min_level', 'capture_interval', 'enabled', 'keepalive_events']);
});

t.test('a value that is the same but built anew (arrays, objects) is not a change', async (t) => {
  const running = loadConfig({ home: home() });
  const next = { ...running, serverUrls: [...running.serverUrls], alertThresholds: { ...running.alertThresholds }, hooks: [...running.hooks] };
  t.same(needsRestart(running, next), []);
});

t.test('the key file rewritten in place (same path) is named: the running key was read at the start', async (t) => {
  const h = mkdtempSync(join(tmpdir(), 'wnt-reload-key-'));
  const keyFile = join(h, 'etc/key');
  writeOssecConf(h, '    <encrypt_messages>yes</encrypt_messages>\n    <encryption_key>etc/key</encryption_key>\n');
  writeFileSync(keyFile, `${'b2'.repeat(32)}\n`, { mode: 0o600 });
  const running = loadConfig({ home: h });
  const lines: { level: string; fields: Record<string, unknown>; msg: string }[] = [];
  const at = (level: string) => (fields: Record<string, unknown>, msg: string) => { lines.push({ level, fields, msg }); };
  const tap = {
    log: { info: at('info'), warn: at('warn'), error: at('error') },
    opts: { delivery: { encryption: readKeyFile(keyFile) } },
    alertOpts: {}, capture: null, keepaliveEvents: true,
    life: { requestStop: () => t.fail('no stop') },
  } as unknown as Tap;
  const hup = reloadHandler(tap, () => {}, { running, load: () => loadConfig({ home: h }) });
  hup();
  t.same(lines.map((l) => [l.level, l.fields.needs_restart]), [['info', []]], 'the same key: nothing to name');
  writeFileSync(keyFile, `${'c3'.repeat(32)}\n`);
  hup();
  t.same(lines[1].fields.needs_restart, ['encryption_key'], 'another key at the same path');
  t.equal(lines[1].level, 'warn');
  t.notMatch(JSON.stringify(lines), /b2b2|c3c3/, 'no key in the log');
});
