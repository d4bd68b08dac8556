// A publishing process for the kill -9 test: spools numbered events of a few
// agents into a Delivery (JetStream) and prints `accepted <n>` after each batch
// was accepted, `done <json stats>` once everything was acknowledged.
import { Delivery } from '../../controller/src/publish/delivery.js';
import { testEvent } from './delivery-events.js';

const [url, spoolDir, fromS, toS, agentsS] = process.argv.slice(2);
const from = Number(fromS);
const to = Number(toS);
const agents = Number(agentsS);

const d = new Delivery({
  servers: [url], mode: 'jetstream', spool: { dir: spoolDir, maxBytes: 64 << 20 }, reconnectDelayMs: 200,
  window: 64, ackTimeoutMs: 2000,
  stream: { name: 'WAZUH', subjects: ['wazuh.>'], create: true },
});
d.start();
let i = from;
const tick = () => {
  if (i >= to) {
    void d.flush(30_000).then(async (ok) => {
      process.stdout.write(`done ${JSON.stringify({ ok, ...d.stats() })}\n`);
      await d.close();
    });
    return;
  }
  const batch = [];
  for (let k = 0; k < 200 && i < to; k++) batch.push(testEvent(i++, agents));
  d.enqueueMany(batch);
  process.stdout.write(`accepted ${i}\n`);
  setTimeout(tick, 5);
};
tick();
