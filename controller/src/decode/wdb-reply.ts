// wazuh-db answers `<status>[ <payload>]`. A frame that does not start with a known status is still
// returned (as `unk`, so nothing downstream mistakes it for a success) with `malformed: true`, so
// callers can count it apart from a genuine `unk` from wazuh-db.

import type { ParsedWdbReply, ReplyStatus } from '../types.js';
import { redactText } from './redact.js';

const STATUSES: ReadonlySet<string> = new Set<ReplyStatus>(['ok', 'due', 'err', 'ign', 'unk']);

/** A reply's first word (its status, when it is one) and the text after its space ('' when none): not redacted. */
export function replyHead(text: string): { head: string; rest: string } {
  const sp = text.indexOf(' ');
  return sp < 0 ? { head: text, rest: '' } : { head: text.slice(0, sp), rest: text.slice(sp + 1) };
}

export function parseReply(payload: string): ParsedWdbReply {
  const { head, rest } = replyHead(payload);
  if (STATUSES.has(head)) {
    // get-agent-info rows carry internal_key: it is removed here, before any consumer sees the reply.
    return { status: head as ReplyStatus, payload: rest === '' ? '' : redactText(rest), malformed: false };
  }
  return { status: 'unk', payload: redactText(payload), malformed: true };
}
