// The event contract of docs/asyncapi.yaml, applied to what the tests receive from NATS: a
// message's subject must be one of the document's channels, its headers and its JSON body
// must validate against that channel's message (ajv, every error reported), and what the
// subject, the headers and the body each say must agree (agent id, severity, node, count,
// Nats-Msg-Id). Every helper that collects messages for the end-to-end tests calls
// `contractError`, so an event that leaves the contract fails the test that received it.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Ajv, type ValidateFunction } from 'ajv';
import addFormatsModule from 'ajv-formats';
import { parse } from 'yaml';
import { ROOT } from './tap-process.js';
import { nodeToken } from '../../controller/src/publish/subjects.js';

// ajv-formats is CommonJS: its default export arrives as the module object under NodeNext.
const addFormats = ((addFormatsModule as unknown as { default?: typeof addFormatsModule }).default ?? addFormatsModule);

export const ASYNCAPI_PATH = join(ROOT, 'docs/asyncapi.yaml');

/* eslint-disable @typescript-eslint/no-explicit-any */
export const asyncapi: any = parse(readFileSync(ASYNCAPI_PATH, 'utf8'));

const ID = 'https://wazuh-nats-tap/asyncapi.json';

/** The document's refs (`#/components/schemas/X`) pointed at the components schema below, so each part compiles alone. */
function absolute<T>(node: T): T {
  return JSON.parse(JSON.stringify(node).replace(/"\$ref":"#\/components\/schemas\//g, `"$ref":"${ID}#/definitions/`));
}

// Strict: a keyword ajv does not know is a mistake in the document. Union types (`[string, 'null']`)
// are JSON Schema, and so is a `then: { required: [...] }` naming properties defined beside the `if`.
export const ajv = new Ajv({ allErrors: true, strict: true, allowUnionTypes: true, strictRequired: false });
addFormats(ajv);
// The components alone, as one schema whose parts are referenced by JSON pointer.
ajv.addSchema({ $id: ID, definitions: absolute(asyncapi.components.schemas) }, ID);

function compile(schema: unknown): ValidateFunction {
  return ajv.compile(absolute(schema) as object);
}

/** A schema of components.schemas by name. */
export function schemaValidator(name: string): ValidateFunction {
  const v = ajv.getSchema(`${ID}#/definitions/${name}`);
  if (!v) throw new Error(`docs/asyncapi.yaml: no schema ${name}`);
  return v;
}

const deref = (o: any) => (o?.$ref ? o.$ref.slice(2).split('/').reduce((a: any, k: string) => a[k], asyncapi) : o);

interface Channel { name: string; address: string; re: RegExp; params: string[]; messages: { name: string; headers: ValidateFunction | null; payload: ValidateFunction; json: boolean }[] }

/** Each channel's address as a regular expression: `{prefix}` any valid prefix, an `enum` parameter its values, others one token. */
const channels: Channel[] = Object.entries(asyncapi.channels).map(([name, c]: [string, any]) => {
  const params: string[] = [];
  const re = c.address.split('.').map((tok: string) => {
    const m = /^\{(\w+)\}$/.exec(tok);
    if (!m) return tok.replace(/[$]/g, '\\$');
    params.push(m[1]);
    const p = deref(c.parameters[m[1]]);
    if (p.enum) return `(${p.enum.join('|')})`;
    if (m[1] === 'prefix') return '([A-Za-z0-9_-]+(?:\\.[A-Za-z0-9_-]+)*)';
    return '([^.]+)';
  }).join('\\.');
  const messages = Object.entries(c.messages).map(([mname, ref]: [string, any]) => {
    const msg = deref(ref);
    return {
      name: mname,
      headers: msg.headers ? compile(deref(msg.headers)) : null,
      payload: compile(msg.payload),
      json: (msg.contentType ?? asyncapi.defaultContentType) === 'application/json',
    };
  });
  return { name, address: c.address, re: new RegExp(`^${re}$`), params, messages };
});

function errors(v: ValidateFunction): string {
  return ajv.errorsText(v.errors, { separator: '; ' });
}

export interface ContractMessage { subject: string; headers: Record<string, string>; body: unknown }

/**
 * Why a message breaks the contract, or null when it keeps it. `body` is the parsed JSON (or,
 * for an encrypted message, the base64 text). A subject matching no channel is an error too.
 */
export function contractError(m: ContractMessage): string | null {
  // The batch subject also fits `{prefix}.agent.{agent_id}.keepalive` (`batch` as the id): the
  // more specific channel (fewer parameters) is tried first.
  const candidates = channels.filter((c) => c.re.test(m.subject)).sort((a, b) => a.params.length - b.params.length);
  if (!candidates.length) return `${m.subject}: no channel of docs/asyncapi.yaml has this subject`;
  const tried: string[] = [];
  for (const c of candidates) {
    const values = Object.fromEntries(c.params.map((p, i) => [p, c.re.exec(m.subject)![i + 1]]));
    const encrypted = m.headers['Content-Type'] === 'application/octet-stream';
    for (const msg of c.messages) {
      if (msg.json === encrypted) continue;
      const problems: string[] = [];
      const hasHeaders = Object.keys(m.headers).length > 0;
      if (msg.headers && !msg.headers(m.headers)) problems.push(`headers ${errors(msg.headers)}`);
      if (!msg.headers && hasHeaders) problems.push(`headers ${JSON.stringify(m.headers)} where the contract has none`);
      if (!msg.payload(m.body)) problems.push(`payload ${errors(msg.payload)}`);
      if (!problems.length) problems.push(...agreement(values, m, encrypted));
      if (!problems.length) return null;
      tried.push(`${c.name}/${msg.name}: ${problems.join('; ')}`);
    }
  }
  return `${m.subject}: ${tried.join(' | ')}\n  headers ${JSON.stringify(m.headers)}\n  body ${JSON.stringify(m.body).slice(0, 2000)}`;
}

/** What the subject, the headers and the body say of the same event must be the same. */
function agreement(params: Record<string, string>, m: ContractMessage, encrypted: boolean): string[] {
  const out: string[] = [];
  const h = m.headers;
  if (encrypted) {
    if (params.agent_id && h['Wazuh-Agent-Id'] !== undefined && h['Wazuh-Agent-Id'] !== params.agent_id) out.push('Wazuh-Agent-Id differs from the subject');
    return out;
  }
  const b = m.body as Record<string, any>;
  if (h['Wazuh-Event-Type'] !== undefined && h['Wazuh-Event-Type'] !== b.event_type) out.push(`Wazuh-Event-Type ${h['Wazuh-Event-Type']} but event_type ${b.event_type}`);
  if (h['Nats-Msg-Id'] !== undefined && h['Nats-Msg-Id'] !== b.event_id) out.push('Nats-Msg-Id is not the event_id');
  if (params.agent_id !== undefined && params.agent_id !== b.agent_id) out.push(`subject agent ${params.agent_id} but agent_id ${b.agent_id}`);
  if (h['Wazuh-Agent-Id'] !== undefined && h['Wazuh-Agent-Id'] !== b.agent_id) out.push('Wazuh-Agent-Id is not the agent_id');
  if (params.severity !== undefined && params.severity !== b.severity) out.push(`subject severity ${params.severity} but severity ${b.severity}`);
  if (params.node !== undefined && params.node !== nodeToken(b.manager_node)) out.push(`subject node ${params.node} but manager_node ${b.manager_node}`);
  if (b.event_type === 'keepalive_batch') {
    if (b.count !== b.events.length) out.push(`count ${b.count} but ${b.events.length} events`);
    if (h['Wazuh-Event-Count'] !== String(b.count)) out.push('Wazuh-Event-Count is not the count');
  }
  if (b.event_type === 'alert' && b.agent_id !== null && /^[0-9]{3,9}$/.test(b.agent_id) && h['Wazuh-Agent-Id'] !== b.agent_id) {
    out.push('an alert of a Wazuh agent id has no Wazuh-Agent-Id');
  }
  if (typeof b.time === 'string' && Math.floor(Date.parse(b.time) / 1000) !== b.timestamp) out.push('time and timestamp disagree');
  return out;
}

/** A KV entry of the bucket `<prefix>_agents` (no headers): the agent's latest status change. */
export function kvEntryError(bucket: string, key: string, body: unknown): string | null {
  return contractError({ subject: `$KV.${bucket}.${key}`, headers: {}, body });
}

/** For the tests' collectors: fail `t` with the schema error of a message that breaks the contract. */
export function checkContract(t: { fail(msg: string): void }, m: ContractMessage): void {
  const e = contractError(m);
  if (e) t.fail(`event outside the contract of docs/asyncapi.yaml: ${e}`);
}

/** A NATS message as the contract sees it: its headers, and its body as JSON (as text when encrypted). */
export function contractMessage(m: { subject: string; headers?: { keys(): string[]; get(k: string): string }; json<T>(): T; string(): string }): ContractMessage {
  const headers: Record<string, string> = {};
  for (const k of m.headers?.keys() ?? []) headers[k] = m.headers!.get(k);
  let body: unknown;
  if (headers['Content-Type'] === 'application/octet-stream') body = m.string();
  else {
    try {
      body = m.json();
    } catch {
      body = m.string(); // not JSON: the payload schema says so
    }
  }
  return { subject: m.subject, headers, body };
}

/** The body of a received message, after `t` checked it keeps the contract (a failure names the schema error). */
export function contractJson<T = any>(t: { fail(msg: string): void }, m: Parameters<typeof contractMessage>[0]): T {
  const cm = contractMessage(m);
  checkContract(t, cm);
  return cm.body as T;
}
