/**
 * Verify: is the model still equal to the kernel? Compares the model of each
 * family with a fresh read of the kernel, chain by chain (policy, rules and
 * their order), and reports every difference. The service runs it on demand
 * (REST GET /v1/verify, gRPC Verify) and on a timer when configured; a
 * difference is published in status and as an event, and the model is then
 * re-read so that reads are true again.
 */
import type { Family, TableName } from '../domain/family.js';
import { TABLES } from '../domain/family.js';
import type { FamilyState } from './state.js';

export interface VerifyDifference {
  readonly family: Family;
  readonly table: TableName;
  readonly chain: string;
  /** What differs: the chain exists on one side only, its policy, its rules (as a multiset), or only their order. */
  readonly kind: 'chain-only-in-model' | 'chain-only-in-kernel' | 'policy' | 'rules' | 'order';
  /** Rule texts in the model and not in the kernel (for `rules`). */
  readonly onlyInModel?: readonly string[];
  /** Rule texts in the kernel and not in the model (for `rules`). */
  readonly onlyInKernel?: readonly string[];
  readonly modelPolicy?: string;
  readonly kernelPolicy?: string;
}

export interface VerifyResult {
  /** The revision the model was at when compared. */
  readonly revision: number;
  readonly time: string;
  /** True when the model equals the kernel in every family. */
  readonly consistent: boolean;
  /** At most 100 differences are listed. */
  readonly differences: readonly VerifyDifference[];
  readonly durationMs: number;
}

const MAX_DIFFERENCES = 100;
const MAX_TEXTS = 20;

function multisetDiff(a: readonly string[], b: readonly string[]): string[] {
  const count = new Map<string, number>();
  for (const t of b) count.set(t, (count.get(t) ?? 0) + 1);
  const out: string[] = [];
  for (const t of a) {
    const n = count.get(t) ?? 0;
    if (n > 0) count.set(t, n - 1);
    else out.push(t);
  }
  return out;
}

/** The differences between the model and the kernel's state of one family. */
export function compareFamily(
  family: Family,
  model: FamilyState | undefined,
  kernel: FamilyState,
): VerifyDifference[] {
  const out: VerifyDifference[] = [];
  for (const table of TABLES) {
    const m = model?.tables.get(table)?.chains ?? new Map();
    const k = kernel.tables.get(table)?.chains ?? new Map();
    for (const name of new Set([...m.keys(), ...k.keys()])) {
      const mc = m.get(name);
      const kc = k.get(name);
      if (!kc) {
        // A built-in chain the kernel does not print yet is an empty ACCEPT chain.
        if (mc && (mc.policy === undefined || mc.policy !== 'ACCEPT' || mc.entries.length > 0))
          out.push({ family, table, chain: name, kind: 'chain-only-in-model' });
        continue;
      }
      if (!mc) {
        if (kc.policy === undefined || kc.policy !== 'ACCEPT' || kc.entries.length > 0)
          out.push({ family, table, chain: name, kind: 'chain-only-in-kernel' });
        continue;
      }
      if (mc.policy !== kc.policy)
        out.push({
          family,
          table,
          chain: name,
          kind: 'policy',
          ...(mc.policy ? { modelPolicy: mc.policy } : {}),
          ...(kc.policy ? { kernelPolicy: kc.policy } : {}),
        });
      const mt = mc.entries.map((e: { text: string }) => e.text);
      const kt = kc.entries.map((e: { text: string }) => e.text);
      if (mt.length === kt.length && mt.every((t: string, i: number) => t === kt[i])) continue;
      const onlyInModel = multisetDiff(mt, kt);
      const onlyInKernel = multisetDiff(kt, mt);
      if (onlyInModel.length === 0 && onlyInKernel.length === 0) {
        out.push({ family, table, chain: name, kind: 'order' });
      } else {
        out.push({
          family,
          table,
          chain: name,
          kind: 'rules',
          onlyInModel: onlyInModel.slice(0, MAX_TEXTS),
          onlyInKernel: onlyInKernel.slice(0, MAX_TEXTS),
        });
      }
    }
  }
  return out;
}

export function verifyResult(
  revision: number,
  differences: readonly VerifyDifference[],
  startedAt: number,
): VerifyResult {
  return {
    revision,
    time: new Date().toISOString(),
    consistent: differences.length === 0,
    differences: differences.slice(0, MAX_DIFFERENCES),
    durationMs: Math.round((performance.now() - startedAt) * 10) / 10,
  };
}
