// Reply parsing: the five statuses, payload after one space, and what a malformed frame looks like.
import t from 'tap';
import { parseReply } from '../controller/src/decode/wdb-reply.js';
import { parseIdPageText } from '../controller/src/state/sources/wdb-wire.js';
import { parseIdList } from '../controller/src/decode/index.js';

t.test('statuses with and without payload', async (t) => {
  t.same(parseReply('ok'), { status: 'ok', payload: '', malformed: false });
  t.same(parseReply('ok []'), { status: 'ok', payload: '[]', malformed: false });
  t.same(parseReply('due [{"id":1},{"id":7}]'), { status: 'due', payload: '[{"id":1},{"id":7}]', malformed: false });
  t.same(parseReply("err Invalid JSON syntax, near '{\"id\":'"), { status: 'err', payload: "Invalid JSON syntax, near '{\"id\":'", malformed: false });
  t.same(parseReply('ign'), { status: 'ign', payload: '', malformed: false });
  t.same(parseReply('unk'), { status: 'unk', payload: '', malformed: false });
  t.same(parseReply('ok  two spaces'), { status: 'ok', payload: ' two spaces', malformed: false }, 'only one space is the separator');
});

t.test('anything else is unk and malformed', async (t) => {
  for (const p of ['', 'OK', 'okay', 'ok\n', 'error x', ' ok', '\u0000ok']) {
    const r = parseReply(p);
    t.equal(r.status, 'unk', JSON.stringify(p));
    t.equal(r.malformed, true);
    t.equal(r.payload, p);
  }
});

t.test('secrets are removed from reply payloads, even in errors that echo the request', async (t) => {
  const s = 'f00d'.repeat(16);
  const info = parseReply(`ok [{"id":2,"name":"agent2","internal_key":"${s}","status_code":4}]`);
  t.same(JSON.parse(info.payload), [{ id: 2, name: 'agent2', status_code: 4 }]);
  const echo = parseReply(`err Invalid JSON syntax, near '{"id":5,"internal_key":"${s}'`);
  t.same(echo, { status: 'err', payload: '[redacted]', malformed: false });
  const weird = parseReply(`garbage internal_key ${s}`);
  t.equal(weird.malformed, true);
  t.notMatch(JSON.stringify(weird), s);
});

t.test('a page of ids (a light look\'s, read without the redaction): only an ok or due page gives ids; any other answer carrying ids is refused', async (t) => {
  const ids = (payload: string) => parseIdList(payload, { skipInvalid: true });
  t.same(parseIdPageText('ok [{"id":1},{"id":2},{"id":3}]', ids), { ids: [1, 2, 3], more: false });
  t.same(parseIdPageText('due [{"id":4},{"id":5}]', ids), { ids: [4, 5], more: true });
  t.same(parseIdPageText('ok []', ids), { ids: [], more: false });
  t.same(parseIdPageText('ok', ids), null, 'ok without a page: not a page of ids');
  for (const text of ['err', 'ign', 'unk', 'okay', 'OK', ' ok', 'due\n', '', 'ok{'].map((h) => `${h} [{"id":1},{"id":2}]`).concat(['err', '[{"id":1}]', ''])) {
    t.equal(parseIdPageText(text, ids), null, JSON.stringify(text));
  }
  // The refusal's text goes into the look's reason through parseReply: redacted there.
  const key = 'f00d'.repeat(16);
  t.notMatch(parseReply(`err [1] {"key":"${key}"}`).payload, key);
});
