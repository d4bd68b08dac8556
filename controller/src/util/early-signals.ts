// The signals bin/wazuh-nats-tap.js took before the modules were loaded (`run`, `tail`, `capture`):
// a command takes them over once its own handlers are in place.

interface Early {
  signals: string[];
  release(): void;
}

/**
 * Releases the executable's early handlers and returns the signals they took, oldest first. Call
 * it after the command's own handlers are installed: between the two, a signal finds one or the other.
 */
export function takeEarlySignals(): string[] {
  const early = (globalThis as { __wazuhNatsTapEarlySignals?: Early }).__wazuhNatsTapEarlySignals;
  if (!early) return [];
  early.release();
  return early.signals.splice(0);
}
