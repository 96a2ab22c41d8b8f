/**
 * Whether this process may change the firewall: the kernel asks for CAP_NET_ADMIN in the
 * effective set, not for uid 0. A container may grant the capability to another uid, and
 * uid 0 may run without it (a dropped bounding set, a user namespace): the start-up check
 * reads the capability itself from /proc/self/status (`CapEff`, a hex bit mask).
 */
import { readFileSync } from 'node:fs';

/** Bit numbers of <linux/capability.h>. */
export const CAP_NET_ADMIN = 12;

/** The effective capability mask in a /proc/PID/status text; undefined when it has none. */
export function effectiveCapabilities(statusText: string): bigint | undefined {
  const m = /^CapEff:\s*([0-9a-fA-F]{1,32})\s*$/m.exec(statusText);
  return m ? BigInt(`0x${m[1]}`) : undefined;
}

/**
 * Whether the process holds capability `bit` in its effective set. Without a readable
 * /proc (not Linux), falls back to "uid 0 has it".
 */
export function hasCapability(bit: number, statusText?: string): boolean {
  let text = statusText;
  if (text === undefined) {
    try {
      text = readFileSync('/proc/self/status', 'utf8');
    } catch {
      return process.getuid?.() === 0;
    }
  }
  const mask = effectiveCapabilities(text);
  if (mask === undefined) return process.getuid?.() === 0;
  return ((mask >> BigInt(bit)) & 1n) === 1n;
}
