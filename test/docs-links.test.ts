// Every relative link of the README and the docs leads to a file of the repository, and every
// anchor to a heading of its target (troubleshooting linked a heading that configuration.md had renamed).
import t from 'tap';
import { join } from 'node:path';
import { ROOT } from './helpers/tap-process.js';
import { brokenLinks, brokenLinksOf } from './helpers/doc-links.js';

t.test('README, docs/ and the examples: every relative link and anchor resolves', async (t) => {
  t.same(brokenLinksOf(['README.md', 'examples/consumer/README.md', 'vagrant/README.md'].map((f) => join(ROOT, f)), ROOT), []);
  t.same(brokenLinks(join(ROOT, 'docs')), []);
});
