// Errors that carry the exit code of SPEC §7.

/** Usage or configuration error: exit 2. */
export class ConfigError extends Error {
  readonly exitCode: number = 2;
}

/**
 * A file of the configuration (the file itself, a secret, a key, a CA) the process may not read:
 * missing privileges, exit 3 (SPEC §7) — `capture` run by a user says the same of the kernel.
 * Still a ConfigError for whoever catches those.
 */
export class PermissionDenied extends ConfigError {
  override readonly exitCode: number = 3;
}

/** EACCES or EPERM: the error of a file the process lacks the privileges to read. */
export function isPermissionError(e: unknown): boolean {
  const code = (e as NodeJS.ErrnoException | undefined)?.code;
  return code === 'EACCES' || code === 'EPERM';
}

/** The configuration file itself is absent (not a file it names): `tail` then runs on its defaults. */
export class ConfigFileMissing extends ConfigError {}

/** Missing privileges or kernel support: exit 3. */
export class KernelSupportError extends Error {
  readonly exitCode = 3;
}
