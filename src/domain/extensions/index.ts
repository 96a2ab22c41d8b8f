/** Registry of typed matches and targets, by the name iptables uses. */
import type { AnyExtension } from './define.js';
import { MATCHES } from './matches.js';
import { TARGETS } from './targets.js';

export const MATCH_SPECS: ReadonlyMap<string, AnyExtension> = new Map(
  (MATCHES as readonly AnyExtension[]).map((m) => [m.name, m]),
);
export const TARGET_SPECS: ReadonlyMap<string, AnyExtension> = new Map(
  (TARGETS as readonly AnyExtension[]).map((t) => [t.name, t]),
);

/** Match loaded implicitly by `-p PROTO` when one of its options follows. */
export function protocolMatch(protocolText: string | undefined): AnyExtension | undefined {
  if (protocolText === undefined) return undefined;
  for (const m of MATCH_SPECS.values()) if (m.protocol === protocolText) return m;
  return undefined;
}
