// Errors that carry the exit code of SPEC §7.

/** Usage or configuration error: exit 2. */
export class ConfigError extends Error {
  readonly exitCode = 2;
}

/** The configuration file itself is absent (not a file it names): `tail` then runs on its defaults. */
export class ConfigFileMissing extends ConfigError {}

/** Missing privileges or kernel support: exit 3. */
export class KernelSupportError extends Error {
  readonly exitCode = 3;
}
