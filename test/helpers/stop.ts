import type { ChildProcess } from 'node:child_process';

/**
 * Ends a daemon a test started and did not stop itself (the test failed first): SIGTERM, so that
 * it ends its own children (a SIGKILL left its nft monitor running after the namespace was
 * gone), then SIGKILL if it is still there after `graceMs`.
 */
export async function stopDaemon(
  child: ChildProcess,
  exited: Promise<unknown>,
  graceMs = 10_000,
): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.kill('SIGTERM');
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<'late'>((resolve) => {
    timer = setTimeout(() => resolve('late'), graceMs);
  });
  const outcome = await Promise.race([exited.then(() => 'exited' as const), late]);
  clearTimeout(timer);
  if (outcome === 'late') {
    child.kill('SIGKILL');
    await exited;
  }
}
