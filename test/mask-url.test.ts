// Credentials in a NATS URL, masked wherever a URL is shown (SPEC §8): the URL itself, URLs
// inside a text, and the bare password or token an error text could carry.
import t from 'tap';
import { maskSecrets, maskUrl, maskUrlsIn, urlSecrets } from '../controller/src/util/mask-url.js';

t.test('maskUrl: the password or the token masked, the user kept, a URL without credentials untouched', async (t) => {
  t.equal(maskUrl('nats://alice:secret@127.0.0.1:4222'), 'nats://alice:***@127.0.0.1:4222');
  t.equal(maskUrl('tls://sometoken@nats-1:4222'), 'tls://***@nats-1:4222');
  t.equal(maskUrl('nats://alice:p@ss@host:4222'), 'nats://alice:***@host:4222', 'a raw @ in the password: masked to the last @');
  t.equal(maskUrl('nats://alice:secret@host:4222/x@y'), 'nats://alice:***@host:4222/x@y', 'an @ after the host is not user info');
  t.equal(maskUrl('alice:secret@host:4222'), 'alice:***@host:4222', 'without a scheme (nats.js accepts host:port)');
  t.equal(maskUrl('nats://127.0.0.1:4222'), 'nats://127.0.0.1:4222');
  t.equal(maskUrl('127.0.0.1:4222'), '127.0.0.1:4222');
});

t.test('maskUrlsIn: every URL of a text', async (t) => {
  t.equal(maskUrlsIn('servers nats://a:pw1@h1:1, tls://tok2@h2:2 and "nats://h3:3"'), 'servers nats://a:***@h1:1, tls://***@h2:2 and "nats://h3:3"');
});

t.test('urlSecrets and maskSecrets: the bare secret, as written or percent-decoded, replaced in any text', async (t) => {
  const secrets = urlSecrets(['nats://alice:p%40ss-word@h:1', 'nats://tok-123@h:2', 'nats://h:3']);
  t.same(secrets.sort(), ['p%40ss-word', 'p@ss-word', 'tok-123'].sort());
  t.equal(maskSecrets('auth failed for alice with p@ss-word (token tok-123) at nats://alice:p%40ss-word@h:1', secrets),
    'auth failed for alice with *** (token ***) at nats://alice:***@h:1');
  t.equal(maskSecrets('connection refused', []), 'connection refused');
});
