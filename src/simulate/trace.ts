/**
 * The walker: one packet through the tables of one hook, in netfilter's
 * priority order, following jumps, gotos, RETURN and policies, and forking
 * at every rule it cannot decide.
 *
 * Table order per hook is the kernel's hook priority, not the alphabet:
 * raw (-300), mangle (-150), nat for DNAT (-100), filter (0), security (50),
 * nat for SNAT (100). So in INPUT the nat table comes last, in OUTPUT it
 * comes before filter (and a DNAT there changes what filter sees). ACCEPT
 * ends one table; the packet goes on to the next. Only the first packet of a
 * connection (NEW) traverses nat. In raw no connection is attached yet, so
 * conntrack matches see INVALID there (UNTRACKED after NOTRACK).
 *
 * Exploration is a depth-first search over branches. Each branch owns its
 * state and path; a fork copies them. The number of branches and of rule
 * evaluations is bounded; past the bound the walk continues without forking
 * and the result says `truncated`.
 */
import type { TableName } from '../domain/family.js';
import { checkUint } from '../domain/validate.js';
import type { CompiledChain, CompiledRule, CompiledRuleset, CompiledTable } from './compile.js';
import type { Words } from './ip.js';
import type { Hook } from './packet.js';
import type {
  NatChange,
  Outcome,
  PathStep,
  RuleStep,
  TableDecision,
  TraceResult,
  UncertainRule,
  Verdict,
} from './result.js';
import { VERDICT_ORDER } from './result.js';
import { CT, MAYBE, NO, type SimState, type Tri, triAnd, YES } from './state.js';
import { describeBits } from './targets.js';

export interface TraceOptions {
  /** Most branches explored; beyond it the walk stops forking and says `truncated`. @default 64 */
  readonly maxBranches?: number;
  /** Most rule evaluations over all branches. @default 5_000_000 */
  readonly maxSteps?: number;
}

/** Tables that have a chain for each hook, in the kernel's priority order. */
export const HOOK_TABLES: Readonly<Record<Hook, readonly TableName[]>> = {
  PREROUTING: ['raw', 'mangle', 'nat'],
  INPUT: ['mangle', 'filter', 'security', 'nat'],
  FORWARD: ['mangle', 'filter', 'security'],
  OUTPUT: ['raw', 'mangle', 'nat', 'filter', 'security'],
  POSTROUTING: ['mangle', 'nat'],
};

/** The ipv6 quick test (kinds 3 and 4): the address is outside the rule's CIDR. */
function outside6(a: Words | undefined, net: Words, mask: Words): boolean {
  if (a === undefined) return false;
  for (let i = 0; i < 4; i++)
    if ((((a[i] as number) ^ (net[i] as number)) & (mask[i] as number)) !== 0) return true;
  return false;
}

/** Deeper than any ruleset the kernel accepts (nf_tables allows 16 nested jumps). */
const MAX_DEPTH = 64;

interface Frame {
  chain: CompiledChain;
  pos: number;
}

interface SavedCt {
  readonly ctState: number;
  readonly ctNat: number;
  readonly ctStatus: number;
  readonly ctDir: number;
}

interface HookTable {
  readonly name: TableName;
  readonly table: CompiledTable;
  readonly base: CompiledChain;
}

class Branch {
  tableIdx = 0;
  frames: Frame[] | null = null;
  pending: CompiledRule | null = null;
  saved: SavedCt | null = null;
  constructor(
    public state: SimState,
    public path: PathStep[] = [],
    public assumptions: RuleStep[] = [],
    public tables: TableDecision[] = [],
    public nat: NatChange[] = [],
  ) {}

  fork(state: SimState): Branch {
    const b = new Branch(
      state,
      this.path.slice(),
      this.assumptions.slice(),
      this.tables.slice(),
      this.nat.slice(),
    );
    b.tableIdx = this.tableIdx;
    b.frames = this.frames ? this.frames.map((f) => ({ chain: f.chain, pos: f.pos })) : null;
    b.saved = this.saved;
    return b;
  }

  last(): PathStep | undefined {
    return this.path[this.path.length - 1];
  }

  /** Replaces the last step (the rule that just matched) with one carrying a note. */
  annotate(note: string): PathStep | undefined {
    const last = this.last();
    if (last?.kind !== 'rule') return last;
    const next: RuleStep = { ...last, note };
    this.path[this.path.length - 1] = next;
    return next;
  }
}

export class Walker {
  private readonly tables: HookTable[] = [];
  private readonly work: Branch[] = [];
  private readonly outcomes: Outcome[] = [];
  private readonly uncertain = new Map<string, UncertainRule>();
  private branches = 1;
  private steps = 0;
  private truncated = false;
  private readonly maxBranches: number;
  private readonly maxSteps: number;

  constructor(
    compiled: CompiledRuleset,
    private readonly hook: Hook,
    options: TraceOptions = {},
  ) {
    this.maxBranches = checkUint(options.maxBranches ?? 64, 'maxBranches', 1, 4096);
    this.maxSteps = checkUint(options.maxSteps ?? 5_000_000, 'maxSteps', 1, 100_000_000);
    for (const name of HOOK_TABLES[hook]) {
      const table = compiled.table(name);
      const base = table?.chain(hook);
      if (table && base) this.tables.push({ name, table, base });
    }
  }

  run(initial: SimState): TraceResult {
    this.work.push(new Branch(initial));
    for (let b = this.work.pop(); b; b = this.work.pop()) {
      if (this.steps > this.maxSteps) {
        this.truncated = true;
        break;
      }
      this.walk(b);
    }
    const possible = VERDICT_ORDER.filter((v) => this.outcomes.some((o) => o.verdict === v));
    const base = {
      family: initial.family,
      hook: this.hook,
      possibleVerdicts: possible,
      outcomes: this.outcomes,
      uncertain: [...this.uncertain.values()],
      truncated: this.truncated,
    };
    const only = possible.length === 1 ? possible[0] : undefined;
    if (!this.truncated && only !== undefined && only !== 'UNKNOWN')
      return { ...base, definite: true, verdict: only };
    return { ...base, definite: false };
  }

  private canFork(): boolean {
    if (this.branches >= this.maxBranches) {
      this.truncated = true;
      return false;
    }
    this.branches++;
    return true;
  }

  private walk(b: Branch): void {
    for (;;) {
      if (b.pending) {
        const rule = b.pending;
        b.pending = null;
        if (this.act(b, rule)) return;
        continue;
      }
      if (!b.frames && !this.enterTable(b)) return;
      const frames = b.frames as Frame[];
      const frame = frames[frames.length - 1] as Frame;
      const rules = frame.chain.rules;
      const s = b.state;
      const path = b.path;
      // The hot loop: most rules are rejected by their quick test without a call. The
      // state cannot change while rules are rejected, so its fields are read once.
      let pos = frame.pos;
      const n = rules.length;
      const v4 = s.family === 'ipv4';
      const src0 = v4 && s.src !== undefined ? (s.src[0] as number) : -1;
      const dst0 = v4 && s.dst !== undefined ? (s.dst[0] as number) : -1;
      const { fragment, dport, proto, inIf } = s;
      let rule: CompiledRule | undefined;
      while (pos < n) {
        const r = rules[pos++] as CompiledRule;
        let no: boolean;
        switch (r.qKind) {
          case 1:
            no = src0 >= 0 && ((src0 ^ r.qA) & r.qB) !== 0;
            break;
          case 2:
            no = dst0 >= 0 && ((dst0 ^ r.qA) & r.qB) !== 0;
            break;
          case 3:
            no = outside6(s.src, r.qWords, r.qMask);
            break;
          case 4:
            no = outside6(s.dst, r.qWords, r.qMask);
            break;
          case 5:
            no = src0 >= 0 && (src0 < r.qA || src0 > r.qB);
            break;
          case 6:
            no = dst0 >= 0 && (dst0 < r.qA || dst0 > r.qB);
            break;
          case 7:
            no = fragment || (dport >= 0 && (dport < r.qA || dport > r.qB));
            break;
          case 8:
            no = proto >= 0 && proto !== r.qA;
            break;
          case 9:
            no = inIf !== undefined && inIf !== r.qName;
            break;
          default:
            no = false;
        }
        if (no) path.push(r.stepNo);
        else {
          rule = r;
          break;
        }
      }
      this.steps += pos - frame.pos;
      frame.pos = pos;
      if (!rule) {
        if (frames.length > 1) frames.pop();
        else if (this.policy(b)) return;
        continue;
      }
      if (this.steps > this.maxSteps) {
        this.truncated = true;
        this.finish(b, 'UNKNOWN', this.noteStep(b, 'exploration stopped: step limit reached'));
        return;
      }
      let r: Tri = YES;
      let pre: SimState | undefined;
      if (!rule.effectful) {
        for (const c of rule.checks) {
          const t = c.test(s);
          if (t === NO) {
            r = NO;
            break;
          }
          if (t === MAYBE) r = MAYBE;
        }
      } else {
        pre = s.clone();
        r = this.sequential(rule, s);
      }
      if (r === NO) {
        path.push(rule.stepNo);
        continue;
      }
      if (r === YES) {
        path.push(rule.stepYes);
        if (this.act(b, rule)) return;
        continue;
      }
      this.fork(b, rule, pre ?? s);
    }
  }

  /** A rule that may match: the other branch assumes it matched; this one goes on assuming not. */
  private fork(b: Branch, rule: CompiledRule, pre: SimState): void {
    const maybe: { test: (s: SimState) => Tri; refine?: (s: SimState) => void }[] = [];
    const reasons: string[] = [];
    for (const c of rule.checks) {
      if (c.test(pre) !== MAYBE) continue;
      maybe.push(c);
      reasons.push(c.why(pre));
    }
    this.noteUncertain(rule, reasons);
    if (this.canFork()) {
      const state = pre.clone();
      if (rule.effectful) for (const c of rule.checks) c.effect?.(state, YES, true);
      for (const c of maybe) c.refine?.(state);
      const alt = b.fork(state);
      const step: RuleStep = { ...rule.stepYes, matched: 'maybe', assumed: 'yes', reasons };
      alt.path.push(step);
      alt.assumptions.push(step);
      alt.pending = rule;
      this.work.push(alt);
    }
    const step: RuleStep = { ...rule.stepNo, matched: 'maybe', assumed: 'no', reasons };
    b.path.push(step);
    b.assumptions.push(step);
  }

  /** Matches in order with their side effects, as the kernel evaluates them. */
  private sequential(rule: CompiledRule, s: SimState): Tri {
    let reached: Tri = YES;
    for (const c of rule.checks) {
      if (reached === NO) break;
      const t = c.test(s);
      c.effect?.(s, reached, false);
      reached = triAnd(reached, t);
    }
    return reached;
  }

  private noteUncertain(rule: CompiledRule, reasons: readonly string[]): void {
    const key = `${rule.ref.table}/${rule.ref.chain}/${rule.ref.position}`;
    const seen = this.uncertain.get(key);
    if (!seen) this.uncertain.set(key, { ...rule.ref, reasons: [...reasons] });
    else if (reasons.some((r) => !seen.reasons.includes(r)))
      this.uncertain.set(key, { ...seen, reasons: [...new Set([...seen.reasons, ...reasons])] });
  }

  private noteStep(b: Branch, text: string): PathStep {
    const table = this.tables[b.tableIdx]?.name ?? this.tables[this.tables.length - 1]?.name ?? 'filter';
    const step: PathStep = { kind: 'note', table, text };
    b.path.push(step);
    return step;
  }

  /** Starts the next table; false when the branch ended (all tables accepted). */
  private enterTable(b: Branch): boolean {
    for (;;) {
      const t = this.tables[b.tableIdx];
      if (!t) {
        this.finish(b, 'ACCEPT', undefined);
        return false;
      }
      if (t.name === 'nat' && !this.traversesNat(b)) {
        b.tableIdx++;
        continue;
      }
      if (t.name === 'raw') {
        const s = b.state;
        b.saved = { ctState: s.ctState, ctNat: s.ctNat, ctStatus: s.ctStatus, ctDir: s.ctDir };
        s.rawPhase = true;
        s.ctState = CT.INVALID;
      }
      b.frames = [{ chain: t.base, pos: 0 }];
      return true;
    }
  }

  /** Only a connection's first packet goes through nat; RELATED or unknown state forks. */
  private traversesNat(b: Branch): boolean {
    const st = b.state.ctState;
    if (st === CT.NEW) return true;
    const skip = 'nat table skipped: only the first packet of a connection traverses it';
    if (st === CT.INVALID || st === CT.UNTRACKED || st === CT.ESTABLISHED) {
      this.noteStep(b, skip);
      return false;
    }
    if (this.canFork()) {
      const alt = b.fork(b.state.clone());
      this.noteStep(alt, `${skip} (assumed: not the first packet)`);
      alt.tableIdx++;
      this.work.push(alt);
    }
    this.noteStep(
      b,
      st < 0
        ? 'nat table traversed (assumed: the first packet of a connection; the conntrack state is not known)'
        : 'nat table traversed (assumed: the first packet of a RELATED connection)',
    );
    return true;
  }

  private leaveTable(b: Branch, verdict: Verdict, by: PathStep | undefined): void {
    const t = this.tables[b.tableIdx];
    if (t && by) b.tables.push({ table: t.name, verdict, by });
    if (t?.name === 'raw' && b.saved) {
      const s = b.state;
      s.rawPhase = false;
      if (s.notracked) {
        s.ctState = CT.UNTRACKED;
        s.ctNat = 0;
        s.ctStatus = 0;
        s.ctDir = -1;
        s.notracked = false;
      } else Object.assign(s, b.saved);
      b.saved = null;
    }
    b.frames = null;
    b.tableIdx++;
  }

  /** The built-in chain's policy; true when it ended the branch. */
  private policy(b: Branch): boolean {
    const base = this.tables[b.tableIdx]?.base as CompiledChain;
    const step = base.policyStep as PathStep;
    b.path.push(step);
    if (base.policy === 'DROP') {
      this.finish(b, 'DROP', step);
      return true;
    }
    this.leaveTable(b, 'ACCEPT', step);
    return false;
  }

  /** Applies the action of a rule that matched; true when it ended the branch. */
  private act(b: Branch, rule: CompiledRule): boolean {
    const a = rule.action;
    const frames = b.frames as Frame[];
    const step = b.last();
    switch (a.kind) {
      case 'none':
        return false;
      case 'effect': {
        const note = a.apply(b.state);
        if (note) b.annotate(note);
        return false;
      }
      case 'accept':
        this.leaveTable(b, 'ACCEPT', step);
        return false;
      case 'drop':
        this.finish(b, 'DROP', step);
        return true;
      case 'reject':
        this.finish(b, 'REJECT', step, a.rejectWith);
        return true;
      case 'queue':
        this.finish(b, 'QUEUE', step);
        return true;
      case 'return':
        if (frames.length > 1) {
          frames.pop();
          return false;
        }
        return this.policy(b);
      case 'jump':
      case 'goto': {
        const target = this.tables[b.tableIdx]?.table.chain(a.chain);
        if (!target || target.builtin) {
          this.finish(
            b,
            'UNKNOWN',
            b.annotate(`${a.kind} to ${a.chain}, which is not a user chain of this table`),
          );
          return true;
        }
        if (frames.length >= MAX_DEPTH) {
          this.finish(b, 'UNKNOWN', b.annotate(`more than ${MAX_DEPTH} nested jumps (a loop?)`));
          return true;
        }
        if (a.kind === 'jump') frames.push({ chain: target, pos: 0 });
        else frames[frames.length - 1] = { chain: target, pos: 0 };
        return false;
      }
      case 'nat': {
        const description = a.apply(b.state);
        const by = b.annotate(description);
        b.nat.push({ ...rule.ref, description });
        this.leaveTable(b, 'ACCEPT', by);
        return false;
      }
      case 'unknown': {
        this.noteUncertain(rule, [a.reason]);
        if (this.canFork()) {
          const alt = b.fork(b.state.clone());
          this.finish(alt, 'UNKNOWN', alt.annotate(`${a.reason} (assumed: it stopped the packet)`));
        }
        const note = a.apply?.(b.state);
        b.annotate(`${a.reason} (assumed: it continued)${note ? `; ${note}` : ''}`);
        return false;
      }
    }
  }

  private finish(b: Branch, verdict: Verdict, by: PathStep | undefined, rejectWith?: string): void {
    const t = this.tables[b.tableIdx];
    const tables = t && by && verdict !== 'ACCEPT' ? [...b.tables, { table: t.name, verdict, by }] : b.tables;
    let decidedBy = by;
    if (verdict === 'ACCEPT')
      decidedBy = (tables.find((d) => d.table === 'filter') ?? tables[tables.length - 1])?.by;
    const s = b.state;
    this.outcomes.push({
      verdict,
      decidedBy,
      ...(rejectWith ? { rejectWith } : {}),
      tables,
      path: b.path,
      assumptions: b.assumptions,
      nat: b.nat,
      mark: describeBits({ v: s.mark, k: s.markKnown }),
    });
  }
}
