// Credentials in a NATS URL, masked wherever a URL is shown (SPEC §8): the URL itself, URLs
// inside a text, and the bare password or token an error text could carry.
import t from 'tap';
import { maskSecrets, maskUrl, maskUrlsIn, urlSecrets } from '../controller/src/util/mask-url.js';

t.test('maskUrl: the password or the token masked, the user kept, a URL without credentials untouched', async (t) => {
  t.equal(maskUrl('nats://alice:secret@127.0.0.1:4222'), 'nats://alice:***@127.0.0.1:4222');
  t.equal(maskUrl('tls://sometoken@nats-1:4222'), 'tls://***@nats-1:4222');
  t.equal(maskUrl('nats://alice:p@ss@host:4222'), 'nats://alice:***@host:4222', 'a raw @ in the password: masked to the last @');
  t.equal(maskUrl('nats://alice:secret@host:4222/x@y'), 'nats://alice:***@y', 'to the last @ of the URL: a NATS URL has no path, a password may hold a /');
  t.equal(maskUrl('alice:secret@host:4222'), 'alice:***@host:4222', 'without a scheme (nats.js accepts host:port)');
  t.equal(maskUrl('nats://127.0.0.1:4222'), 'nats://127.0.0.1:4222');
  t.equal(maskUrl('127.0.0.1:4222'), '127.0.0.1:4222');
});

t.test('maskUrl: a password holding what ends a URL\'s authority (#, /, ?), a comma, or longer than a clip', async (t) => {
  for (const pw of ['Kx9#pQ2/zz', 'a/b', 'q?x=1', 'h#1', 'p@s/s#w?d', 'pa,ss', 'pa, ss']) {
    const masked = maskUrl(`nats://alice:${pw}@127.0.0.1:4222`);
    t.equal(masked, 'nats://alice:***@127.0.0.1:4222', JSON.stringify(pw));
    t.same(urlSecrets([`nats://alice:${pw}@127.0.0.1:4222`]).includes(pw), true, `${JSON.stringify(pw)} is a secret to mask wherever it appears`);
  }
  t.equal(maskUrl('tls://Kx9#pQ2/zz@h:1'), 'tls://***@h:1', 'a token too');
  t.equal(maskUrl(`nats://alice:${'L'.repeat(120)}@h:1,`), 'nats://alice:***@h:1,', 'a long one, with a trailing comma');
});

t.test('maskUrl: a comma-separated list, each URL masked', async (t) => {
  t.equal(maskUrl('nats://a:p1@h1:1,nats://h2:2, tls://tok@h3:3'), 'nats://a:***@h1:1,nats://h2:2, tls://***@h3:3');
  t.equal(maskUrl('nats://alice:hunter2@127.0.0.1:4222,'), 'nats://alice:***@127.0.0.1:4222,', 'a trailing comma');
  t.equal(maskUrl(',nats://alice:hunter2@h:1'), ',nats://alice:***@h:1', 'a leading one');
  t.equal(maskUrl('nats://a:4222,,nats://b:4222'), 'nats://a:4222,,nats://b:4222', 'no credentials: as written');
});

t.test('maskUrlsIn: every URL of a text', async (t) => {
  t.equal(maskUrlsIn('servers nats://a:pw1@h1:1, tls://tok2@h2:2 and "nats://h3:3"'), 'servers nats://a:***@h1:1, tls://***@h2:2 and "nats://h3:3"');
  t.equal(maskUrlsIn("Invalid value for element 'server_url': 'nats://alice:Kx9#pQ2/zz@127.0.0.1:4222,nats://b:x?y@h' — no"),
    "Invalid value for element 'server_url': 'nats://alice:***@127.0.0.1:4222,nats://b:***@h' — no", 'a quoted list, passwords with # / ?');
  t.equal(maskUrlsIn('wazuh-nats-tap tail --nats-url=nats://alice:pw@h:1'), 'wazuh-nats-tap tail --nats-url=nats://alice:***@h:1');
});

t.test('urlSecrets and maskSecrets: the bare secret, as written or percent-decoded, replaced in any text', async (t) => {
  const secrets = urlSecrets(['nats://alice:p%40ss-word@h:1', 'nats://tok-123@h:2', 'nats://h:3']);
  t.same(secrets.sort(), ['p%40ss-word', 'p@ss-word', 'tok-123'].sort());
  t.equal(maskSecrets('auth failed for alice with p@ss-word (token tok-123) at nats://alice:p%40ss-word@h:1', secrets),
    'auth failed for alice with *** (token ***) at nats://alice:***@h:1');
  t.equal(maskSecrets('connection refused', []), 'connection refused');
});

t.test('long texts: a word of letters with no :// after it, and one long before a URL (linear, not quadratic)', async (t) => {
  // A scheme pattern without a bound walked such a word again from each of its letters: 17 s of
  // CPU for the 100 KB argument test/config-hostile gives the CLI, hours for these 4 MB (the
  // test's timeout fails it).
  const word = 'y'.repeat(4 << 20);
  t.equal(maskUrlsIn(`no such socket /nonexistent/${word}`), `no such socket /nonexistent/${word}`);
  t.equal(maskUrl(`${word},${word}`), `${word},${word}`);
  t.same(urlSecrets([word]), []);
  const long = 'z'.repeat(100_000);
  t.equal(maskUrlsIn(`at ${long}nats://alice:hunter2@h:1 then`), `at ${long}nats://alice:***@h:1 then`,
    'a scheme run into a long word: the password still masked');
  t.equal(maskUrlsIn(`${'a'.repeat(70)}nats://tok@h:1`), `${'a'.repeat(70)}nats://***@h:1`);
  t.equal(maskUrl(`${'s'.repeat(70)}://alice:pw@h:1`), `${'s'.repeat(70)}:***@h:1`,
    'a scheme longer than 64 characters: taken as user info, its password masked all the same');
});

t.test('a list whose later URLs have no scheme: every credential masked (nats.js and the loader split at every comma)', async (t) => {
  t.equal(maskUrl('nats://tokA1@h1:4222,bob:pwB2@h2:4222'), 'nats://***@h1:***@h2:4222',
    'read both ways (one URL whose user info runs to the last @, or two): whatever either takes for a secret is masked');
  t.notMatch(maskUrl('nats://tokA1@h1:4222,bob:pwB2@h2:4222'), /tokA1|pwB2/);
  t.equal(maskUrl('nats://h1:4222,bob:pwB2@h2:4222'), 'nats://h1:***@h2:4222');
  t.equal(maskUrl('nats://a:p1@h1:1,tok2@h2:2,h3:3'), 'nats://a:***@h2:2,h3:3');
  t.equal(maskUrl('tokA1@h1,nats://bob:pwB2@h2'), '***@h1,nats://bob:***@h2');
  t.equal(maskUrl('nats://a:p@q,r@h'), 'nats://a:***@h', 'a password p@q,r, or a URL and a token r: masked whole either way');
  // In a text, a list is found from its first scheme (a bare `tok@host` is no URL to tell from a mail address).
  for (const [list, bare] of [['nats://tokA1@h1:4222,bob:pwB2@h2:4222', 'tokA1 pwB2'], ['nats://tokA1@h1, tokB2@h2', 'tokA1 tokB2'],
    ['nats://h0,tokA1@h1,  bob:pwB2@h2', 'tokA1 pwB2'], ['tokA1@h1,nats://bob:pwB2@h2', 'tokA1 pwB2']]) {
    if (list.startsWith('nats:')) {
      const shown = maskUrlsIn(`--nats-url ${list} failed`);
      t.notMatch(shown, /tokA1|pwB2|tokB2/, `${list} → ${shown}`);
    }
    t.notMatch(maskSecrets(`auth failed: ${bare}`, urlSecrets([list])), /tokA1|pwB2|tokB2/, `${list}: the bare secrets too`);
  }
});
