/**
 * Poll cond every everyMs (20) until it holds; fail after timeoutMs with what was awaited. An async cond
 * is awaited: a Promise is not a truth (taken as one, a wait on the KV bucket returned at once).
 */
export async function waitFor(cond: () => boolean | Promise<boolean>, timeoutMs: number, what: string, everyMs = 20): Promise<void> {
  const end = performance.now() + timeoutMs;
  while (!(await cond())) {
    if (performance.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}
