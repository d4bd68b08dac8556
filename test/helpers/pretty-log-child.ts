// The tap's logger as `run --log-level debug` makes it on a terminal (pino-pretty), logging values with
// every kind of control character a hostile name, path or server could carry; its stdout is the test's.
import { createLogger } from '../../controller/src/util/log.js';

const log = createLogger('debug', true);
const hostile = 'a\u001b]52;c;ZXZpbA==\u0007b\u009b2Jc\r\nFAKE LINE\u202eevil\u2028d\u007fe\\u001b';
log.info({ name: hostile, nested: { path: `/tmp/${hostile}` } }, `message ${hostile}`);
log.error({ err: new Error(`boom ${hostile}`) }, 'failed');
log.debug('plain text, nothing to escape: "quoted" \\ backslash');
