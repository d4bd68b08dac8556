// The status changes a full spool refused, folded per agent into the one event the consumers are owed.
import t from 'tap';
import { OwedStatuses } from '../controller/src/publish/owed-statuses.js';
import { publishedStatus } from '../controller/src/state/sources/status-journal.js';
import type { ConnectionStatus, StatusChangeEvent } from '../controller/src/types.js';

let n = 0;
function change(id: string, previous: ConnectionStatus, current: ConnectionStatus, code = 0, reason = 'keepalive'): StatusChangeEvent {
  return {
    event_id: `e${++n}`, event_type: 'status_change', agent_id: id, agent_name: `a${id}`, ip_address: null,
    previous_status: previous, current_status: current, status_code: code, reason, timestamp: 1, time: 't',
    manager_node: 'm', source: 'remoted', sync_status: 'synced',
  } as StatusChangeEvent;
}
const brief = (evs: StatusChangeEvent[]) => evs.map((e) => `${e.agent_id}:${e.previous_status}>${e.current_status}/${e.reason}/${e.event_id}`);

t.test('refused changes of an agent fold into one event, from what the consumers last received to the latest', async (t) => {
  const o = new OwedStatuses();
  const seen = publishedStatus('active', 0);
  o.refused(change('001', 'active', 'disconnected', 3, 'agent_shutdown'), seen);
  o.refused(change('001', 'disconnected', 'pending', 0, 'agent_startup'), seen);
  o.refused(change('002', 'never_connected', 'pending', 0, 'agent_startup'), undefined);
  t.equal(o.size, 2, 'one per agent');
  t.same(brief(o.take()), ['001:active>pending/agent_startup/e2', '002:never_connected>pending/agent_startup/e3'],
    'the latest change\'s reason and id, the previous status the one published');
  t.equal(o.size, 0, 'taken');
});

t.test('back where the consumers left it: nothing owed', async (t) => {
  const o = new OwedStatuses();
  const seen = publishedStatus('active', 0);
  o.refused(change('001', 'active', 'disconnected', 3), seen);
  o.refused(change('001', 'disconnected', 'active', 0), seen);
  t.equal(o.size, 0);
  o.refused(change('001', 'active', 'active', 4, 'invalid_version'), seen);
  t.equal(o.size, 1, 'the same status with another code is a change');
});

t.test('a later change of the agent accepted carries the latest status: nothing owed', async (t) => {
  const o = new OwedStatuses();
  o.refused(change('007', 'active', 'disconnected', 3), publishedStatus('active', 0));
  o.accepted(7);
  t.same(o.take(), []);
});

t.test('refused again, owed again: an event that was never published keeps its previous status', async (t) => {
  const o = new OwedStatuses();
  const ev = change('009', 'pending', 'active');
  o.refused(ev, undefined);
  const [again] = o.take();
  t.equal(again, ev, 'unchanged, not copied');
  o.refused(again, undefined);
  t.same(brief(o.take()), [`009:pending>active/keepalive/${ev.event_id}`]);
});
