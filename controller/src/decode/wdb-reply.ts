// wazuh-db answers `<status>[ <payload>]`. A frame that does not start with a known status is still
// returned (as `unk`, so nothing downstream mistakes it for a success) with `malformed: true`, so
// callers can count it apart from a genuine `unk` from wazuh-db.

import type { ParsedWdbReply, ReplyStatus } from '../types.js';
import { redactText } from './redact.js';

const STATUSES: ReadonlySet<string> = new Set<ReplyStatus>(['ok', 'due', 'err', 'ign', 'unk']);

export function parseReply(payload: string): ParsedWdbReply {
  const sp = payload.indexOf(' ');
  const head = sp < 0 ? payload : payload.slice(0, sp);
  if (STATUSES.has(head)) {
    // get-agent-info rows carry internal_key: it is removed here, before any consumer sees the reply.
    return { status: head as ReplyStatus, payload: sp < 0 ? '' : redactText(payload.slice(sp + 1)), malformed: false };
  }
  return { status: 'unk', payload: redactText(payload), malformed: true };
}
