// The environment systemd gives a service: the `Environment=NAME=value` lines of its unit, then of its
// drop-ins, a later one replacing an earlier one of the same name. Only the simple form the project's
// unit (packaging/wazuh-nats-tap.service) uses: one assignment a line, unquoted. Read by the benchmark,
// which starts every tap as the unit does, and by the vagrant test, which starts the installed one.
export function unitEnvironment(...texts) {
  const env = {};
  for (const text of texts) {
    for (const line of text.split('\n')) {
      const m = /^Environment=([A-Za-z_][A-Za-z0-9_]*)=(.*)$/.exec(line.trim());
      if (m) env[m[1]] = m[2];
    }
  }
  return env;
}
