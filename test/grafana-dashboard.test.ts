// docs/grafana/wazuh-nats-tap.json asks only for what the tap exports: every metric of every
// panel's expression, every label it groups by and every label value it selects, checked
// against the /metrics of a real running tap (the simulator, real eBPF, a real nats-server).
import t from 'tap';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SimManager } from '../scripts/sim/manager.mjs';
import { freePort, natsCollecting } from './helpers/nats-server.js';
import { ROOT, startTap } from './helpers/tap-process.js';
import { writeOssecConf } from './helpers/config.js';

/* eslint-disable @typescript-eslint/no-explicit-any */
const dashboard = JSON.parse(readFileSync(join(ROOT, 'docs/grafana/wazuh-nats-tap.json'), 'utf8'));

/** PromQL words that are not metric names. */
const PROMQL = new Set(['sum', 'rate', 'increase', 'by', 'without', 'max', 'min', 'avg', 'count', 'label_values', 'instance']);

interface Use { metric: string; matchers: { label: string; op: string; value: string }[]; by: string[] }

/** The metrics an expression reads, with their label matchers and the labels it groups by. */
export function uses(expr: string): Use[] {
  const by = [...expr.matchAll(/\bby \(([^)]*)\)/g)].flatMap((m) => m[1].split(',').map((s) => s.trim()));
  const out: Use[] = [];
  // Without the grouping clauses and range selectors, what is left are functions and metrics.
  const body = expr.replace(/\bby \([^)]*\)/g, ' ').replace(/\[[^\]]*\]/g, ' ');
  for (const m of body.matchAll(/([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([^}]*)\})?/g)) {
    if (PROMQL.has(m[1])) continue;
    const matchers = (m[3] ?? '').split(',').map((s) => s.trim()).filter(Boolean).map((s) => {
      const mm = /^(\w+)\s*(=~|!~|!=|=)\s*"([^"]*)"$/.exec(s);
      if (!mm) throw new Error(`a matcher this test cannot read: ${s}`);
      return { label: mm[1], op: mm[2], value: mm[3] };
    });
    out.push({ metric: m[1], matchers, by });
  }
  return out;
}

/** Families and, per family, each label's values, from Prometheus text. */
function scrape(text: string): Map<string, Map<string, Set<string>>> {
  const fam = new Map<string, Map<string, Set<string>>>();
  for (const line of text.split('\n')) {
    const type = /^# TYPE (\S+) /.exec(line);
    if (type) fam.set(type[1], new Map());
    const sample = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? /.exec(line);
    if (!sample || line.startsWith('#')) continue;
    const labels = fam.get(sample[1]) ?? new Map();
    fam.set(sample[1], labels);
    for (const l of (sample[2] ?? '').matchAll(/(\w+)="([^"]*)"/g)) {
      if (!labels.has(l[1])) labels.set(l[1], new Set());
      labels.get(l[1])!.add(l[2]);
    }
  }
  return fam;
}

t.test('every expression of the dashboard names metrics, labels and values a running tap exports', async (t) => {
  const { nats } = await natsCollecting(t, 'wazuh.>');
  const home = mkdtempSync(join(tmpdir(), 'wnt-grafana-'));
  writeOssecConf(home);
  const A = { id: 741, name: 'grafana-agent', ip: '192.168.56.41' };
  const sim = new SimManager({ binDir: join(ROOT, 'build/sim/bin'), home, agents: [A] });
  t.teardown(() => sim.stop());
  await sim.start();
  const port = await freePort();
  const tap = await startTap(['run', '--home', home, '--nats-url', nats.url, '--node', 'grafana', '--control-socket', join(home, 'tap.sock'),
    '--metrics', `127.0.0.1:${port}`]);
  t.teardown(() => tap.stop('SIGKILL'));
  await sim.startup(A);
  await sim.keepalive(A);
  // Scraped again until the agent's events are counted (then every family has its labels).
  let text = '';
  for (const end = Date.now() + 10_000; !/^wazuh_nats_tap_events_total\{type="keepalive"\} [1-9]/m.test(text);) {
    if (Date.now() > end) throw new Error(`the events were never counted:\n${text}`);
    await new Promise((r) => setTimeout(r, 100));
    text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  }
  const exported = scrape(text);

  const exprs: { where: string; expr: string }[] = [];
  for (const p of dashboard.panels.filter((p: any) => p.type !== 'row')) {
    for (const target of p.targets) exprs.push({ where: `panel '${p.title}' ${target.refId}`, expr: target.expr });
  }
  for (const v of dashboard.templating.list.filter((v: any) => v.type === 'query')) exprs.push({ where: `variable ${v.name}`, expr: v.definition });
  t.ok(exprs.length >= 15, `${exprs.length} expressions`);

  for (const { where, expr } of exprs) {
    const used = uses(expr);
    t.ok(used.length > 0, `${where} reads a metric`);
    for (const u of used) {
      const labels = exported.get(u.metric);
      t.ok(labels, `${where}: ${u.metric} is exported`);
      if (!labels) continue;
      for (const l of u.by) t.ok(l === 'instance' || labels.has(l), `${where}: ${u.metric} has label ${l}`);
      for (const m of u.matchers) {
        if (m.label === 'instance') continue; // Prometheus' own target label (the dashboard's variable)
        t.ok(labels.has(m.label), `${where}: ${u.metric} has label ${m.label}`);
        const values = m.op === '=~' ? m.value.split('|') : [m.value];
        for (const v of values) t.ok(labels.get(m.label)?.has(v), `${where}: ${u.metric}{${m.label}="${v}"} is exported`);
      }
    }
  }

  // The panels the issue asks for, by the metric each one shows.
  const all = exprs.map((e) => e.expr).join('\n');
  for (const m of ['wazuh_nats_tap_agents', 'wazuh_nats_tap_events_total', 'wazuh_nats_tap_records_total', 'wazuh_nats_tap_spool_events', 'wazuh_nats_tap_spool_oldest_age_seconds',
    'wazuh_nats_tap_delivery_total', 'wazuh_nats_tap_nats_connected', 'wazuh_nats_tap_publish_latency_ms', 'wazuh_nats_tap_capture_delay_ms', 'process_cpu_user_seconds_total',
    'process_resident_memory_bytes']) t.match(all, m, `a panel shows ${m}`);
  t.match(all, /outcome=~"[^"]*lost/, 'records lost are shown');
  t.match(all, /outcome=~"[^"]*shed/, 'events shed are shown');
  for (const p of dashboard.panels.filter((p: any) => p.type !== 'row')) t.ok(p.description?.length > 20, `panel '${p.title}' says what it shows`);
  t.same(await tap.stop('SIGTERM'), { code: 0, signal: null });
});

t.test('the expression reader sees what an expression uses', async (t) => {
  t.same(uses('sum by (outcome) (rate(m_total{instance=~"$instance", outcome=~"a|b"}[$__rate_interval]))'),
    [{ metric: 'm_total', matchers: [{ label: 'instance', op: '=~', value: '$instance' }, { label: 'outcome', op: '=~', value: 'a|b' }], by: ['outcome'] }]);
  t.same(uses('label_values(wazuh_nats_tap_attached, instance)').map((u) => u.metric), ['wazuh_nats_tap_attached']);
});
