/**
 * One pass over a chain, in order, finding rules that can never do anything:
 * unreachable (after an unconditional ACCEPT/DROP/REJECT/RETURN/goto),
 * exact duplicates, and rules shadowed by one earlier terminal rule that
 * matches every packet they match (see coverage.ts).
 *
 * Pairwise comparison would be quadratic (a 50,000-rule ban list), so earlier
 * terminal rules are indexed by their source CIDR (a rule can only cover j if
 * its network contains j's source) or else by a single destination port, and
 * only the rest is compared with every later rule; the comparisons are
 * bounded and an `analysis-truncated` finding says when the bound was hit.
 * A rule that may rewrite addresses (or an unknown target, or a jump into a
 * chain holding one) ends the coverage of everything before it.
 */
import type { Family, TableName } from '../../domain/family.js';
import { type Chain, isRawTarget, type Rule } from '../../domain/model.js';
import type { RuleRef } from '../result.js';
import { type Action, compileAction } from '../targets.js';
import { covers, type Summary, summarize } from './coverage.js';
import type { Finding } from './finding.js';
import type { IntervalSet, Span } from './intervals.js';

const TERMINAL = new Set<Action['kind']>(['accept', 'drop', 'reject', 'queue', 'return', 'goto', 'nat']);
const REWRITING_RAW = new Set(['SNPT', 'DNPT', 'NETMAP', 'TPROXY']);

interface Coverer {
  readonly pos: number;
  readonly summary: Summary;
  readonly rule: Rule;
}

/**
 * Earlier terminal rules, indexed so that a later rule j meets only plausible coverers.
 * A coverer is filed under the first of: its source CIDR, its destination CIDR, the
 * destination ports it lists (when few), its exact in interface, its protocol; only a
 * rule with none of these is compared with every later rule.
 */
class CovererIndex {
  private readonly bySrc = new Map<number, Map<bigint, Coverer[]>>();
  private readonly byDst = new Map<number, Map<bigint, Coverer[]>>();
  private readonly byPort = new Map<bigint, Coverer[]>();
  private readonly byIface = new Map<string, Coverer[]>();
  private readonly byProto = new Map<number, Coverer[]>();
  private general: Coverer[] = [];
  constructor(private readonly bits: number) {}

  clear(): void {
    for (const m of [this.bySrc, this.byDst, this.byPort, this.byIface, this.byProto]) m.clear();
    this.general = [];
  }

  add(c: Coverer): void {
    const s = c.summary;
    if (this.addCidr(this.bySrc, s.src, c) || this.addCidr(this.byDst, s.dst, c)) return;
    const ports = smallSet(s.dport);
    if (ports) {
      for (const p of ports) push(this.byPort, p, c);
      return;
    }
    const iface = s.inIf.find((x) => !x.neg && !x.pattern.wildcard);
    if (iface) push(this.byIface, iface.pattern.prefix, c);
    else if (s.proto && !s.proto.neg) push(this.byProto, s.proto.num, c);
    else this.general.push(c);
  }

  /** The coverers that could cover j, as lists to walk (no copying). */
  candidates(j: Summary): Coverer[][] {
    const out: Coverer[][] = [];
    this.cidrCandidates(this.bySrc, j.src, out);
    this.cidrCandidates(this.byDst, j.dst, out);
    const first = j.dport?.[0]?.[0];
    const byPort = first === undefined ? undefined : this.byPort.get(first);
    if (byPort) out.push(byPort);
    for (const x of j.inIf) {
      const l = !x.neg && !x.pattern.wildcard ? this.byIface.get(x.pattern.prefix) : undefined;
      if (l) out.push(l);
    }
    const byProto = j.proto && !j.proto.neg ? this.byProto.get(j.proto.num) : undefined;
    if (byProto) out.push(byProto);
    if (this.general.length) out.push(this.general);
    return out;
  }

  private addCidr(
    index: Map<number, Map<bigint, Coverer[]>>,
    set: IntervalSet | undefined,
    c: Coverer,
  ): boolean {
    if (set?.length !== 1) return false;
    const [lo, hi] = set[0] as Span;
    const size = hi - lo + 1n;
    if ((size & (size - 1n)) !== 0n || lo % size !== 0n) return false;
    const prefix = this.bits - (size.toString(2).length - 1);
    if (prefix === 0) return false;
    let m = index.get(prefix);
    if (!m) {
      m = new Map();
      index.set(prefix, m);
    }
    push(m, lo >> BigInt(this.bits - prefix), c);
    return true;
  }

  private cidrCandidates(
    index: Map<number, Map<bigint, Coverer[]>>,
    set: IntervalSet | undefined,
    out: Coverer[][],
  ): void {
    if (set === undefined || set.length === 0) return;
    const lo = (set[0] as Span)[0];
    const hi = (set[set.length - 1] as Span)[1];
    for (const [prefix, m] of index) {
      const shift = BigInt(this.bits - prefix);
      const l = lo >> shift === hi >> shift ? m.get(lo >> shift) : undefined;
      if (l) out.push(l);
    }
  }
}

function push<K>(m: Map<K, Coverer[]>, key: K, c: Coverer): void {
  const list = m.get(key);
  if (list) list.push(c);
  else m.set(key, [c]);
}

/** The members of a port set of at most 64 ports, or undefined. */
function smallSet(set: IntervalSet | undefined): bigint[] | undefined {
  if (set === undefined || set.length === 0) return undefined;
  let size = 0n;
  for (const [lo, hi] of set) size += hi - lo + 1n;
  if (size > 64n) return undefined;
  const out: bigint[] = [];
  for (const [lo, hi] of set) for (let p = lo; p <= hi; p++) out.push(p);
  return out;
}

function unconditional(rule: Rule): boolean {
  return (
    rule.source === undefined &&
    rule.destination === undefined &&
    rule.inInterface === undefined &&
    rule.outInterface === undefined &&
    rule.protocol === undefined &&
    rule.fragment === undefined &&
    rule.matches.every((m) => m.module === 'comment' && !('raw' in m))
  );
}

const targetKey = (rule: Rule) => JSON.stringify(rule.target ?? null);

export interface ScanContext {
  readonly family: Family;
  readonly table: TableName;
  readonly chain: Chain;
  readonly refs: readonly RuleRef[];
  /** Whether jumping to this chain may rewrite addresses (transitively). */
  readonly chainRewrites: (name: string) => boolean;
  readonly maxComparisons: number;
}

export function isRewriting(rule: Rule, table: TableName, chainRewrites: (name: string) => boolean): boolean {
  const t = rule.target;
  if (t === undefined) return false;
  if ('jump' in t) return chainRewrites(t.jump);
  if (isRawTarget(t) && REWRITING_RAW.has(t.target)) return true;
  return compileAction(t, table).kind === 'unknown';
}

export function scanChain(ctx: ScanContext): Finding[] {
  const { family, table, chain, refs } = ctx;
  const out: Finding[] = [];
  const base = { family, table, chain: chain.name };
  const index = new CovererIndex(family === 'ipv4' ? 32 : 128);
  const firstByText = new Map<string, RuleRef>();
  let blocker: RuleRef | undefined;
  const unreachable: RuleRef[] = [];
  let comparisons = 0;
  let cut = false;

  chain.rules.forEach((rule, i) => {
    const ref = refs[i] as RuleRef;
    if (blocker) {
      unreachable.push(ref);
      return;
    }
    const action = compileAction(rule.target, table);
    const summary = summarize(rule, family, table);
    const twin = firstByText.get(ref.ruleText);
    if (twin) {
      out.push({
        ...base,
        code: 'duplicate-rule',
        severity: 'warning',
        rules: [ref, twin],
        message: `Rule ${ref.position} of ${chain.name} is an exact copy of rule ${twin.position}.`,
        suggestion: `Delete rule ${ref.position} (id ${ref.ruleId}).`,
      });
    } else {
      firstByText.set(ref.ruleText, ref);
      if (!summary.empty && !cut) {
        let best: Coverer | undefined;
        search: for (const list of index.candidates(summary)) {
          for (const c of list) {
            if (++comparisons > ctx.maxComparisons) {
              cut = true;
              break search;
            }
            if ((best === undefined || c.pos < best.pos) && covers(c.summary, summary)) best = c;
          }
        }
        if (best) out.push(shadowFinding(base, chain.name, ref, refs[best.pos] as RuleRef, best.rule, rule));
      }
    }
    if (isRewriting(rule, table, ctx.chainRewrites)) index.clear();
    if (TERMINAL.has(action.kind) && summary.exact && !summary.empty) index.add({ pos: i, summary, rule });
    if (TERMINAL.has(action.kind) && unconditional(rule)) blocker = ref;
  });

  if (blocker && unreachable.length > 0) {
    const first = unreachable[0] as RuleRef;
    const last = unreachable[unreachable.length - 1] as RuleRef;
    out.push({
      ...base,
      code: 'unreachable-rule',
      severity: 'warning',
      rules: [...unreachable, blocker],
      message: `${unreachable.length === 1 ? `Rule ${first.position}` : `Rules ${first.position}-${last.position}`} of ${chain.name} can never be reached: rule ${blocker.position} (${blocker.ruleText}) ends every path before them.`,
      suggestion: `Move the rules above rule ${blocker.position}, or delete them.`,
    });
  }
  if (cut) {
    out.push({
      ...base,
      code: 'analysis-truncated',
      severity: 'info',
      rules: [],
      message: `Shadowing in ${chain.name} was checked only up to ${ctx.maxComparisons} rule comparisons.`,
      suggestion: 'Raise maxComparisons to check the whole chain.',
    });
  }
  return out;
}

function shadowFinding(
  base: { family: Family; table: TableName; chain: string },
  chain: string,
  ref: RuleRef,
  by: RuleRef,
  byRule: Rule,
  rule: Rule,
): Finding {
  const same = targetKey(byRule) === targetKey(rule);
  return same
    ? {
        ...base,
        code: 'redundant-rule',
        severity: 'info',
        rules: [ref, by],
        message: `Rule ${ref.position} of ${chain} never matches: rule ${by.position} (${by.ruleText}) already takes every packet it would, with the same target.`,
        suggestion: `Delete rule ${ref.position} (id ${ref.ruleId}); it changes nothing.`,
      }
    : {
        ...base,
        code: 'shadowed-rule',
        severity: 'warning',
        rules: [ref, by],
        message: `Rule ${ref.position} of ${chain} (${ref.ruleText}) never matches: the earlier rule ${by.position} (${by.ruleText}) decides every packet it would.`,
        suggestion: `Move rule ${ref.position} above rule ${by.position}, or narrow rule ${by.position}.`,
      };
}
