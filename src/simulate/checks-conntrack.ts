/**
 * Connection-tracking matches: state, conntrack, mark, connmark, modelled on
 * xt_state.c, xt_conntrack.c and xt_connmark.c:
 * - a packet without a conntrack entry (INVALID, UNTRACKED) fails every
 *   conntrack option except `--ctstate`, and every connmark match;
 * - `--ctstate` matches when any listed state bit is set; SNAT/DNAT are extra
 *   bits of a connection that was NATed;
 * - `--ctstatus` matches when any listed bit is set (NONE lists none, so it
 *   never matches and `! --ctstatus NONE` always does).
 * With an unknown conntrack state every possible state is evaluated and the
 * answers combined, so a match that holds for all of them is still decided.
 */
import type { ConnmarkMatch, ConntrackMatch, MarkMatch, StateMatch } from '../domain/extensions/matches.js';
import { type Check, inverted, parseSpan } from './check.js';
import { type Cidr, inCidr, parseCidr, type Words } from './ip.js';
import { CT_STATES } from './packet.js';
import { CT, MAYBE, NO, type SimState, type Tri, triOf, triXor, YES } from './state.js';

const ALL_STATES = [0, 1, 2, 3, 4] as const;

/** Combines the answers for each possible conntrack state. */
function overStates(s: SimState, f: (state: number) => Tri): Tri {
  if (s.ctState >= 0) return f(s.ctState);
  let seen = -1;
  for (const st of ALL_STATES) {
    const t = f(st);
    if (t === MAYBE) return MAYBE;
    if (seen === -1) seen = t;
    else if (seen !== t) return MAYBE;
  }
  return seen as Tri;
}

function stateBits(words: readonly string[]): number {
  let bits = 0;
  for (const w of words) {
    const i = CT_STATES.indexOf(w as (typeof CT_STATES)[number]);
    if (i >= 0) bits |= 1 << i;
    else if (w === 'SNAT') bits |= 1 << 5;
    else if (w === 'DNAT') bits |= 1 << 6;
  }
  return bits;
}

export function stateChecks(m: StateMatch): Check[] {
  if (m.state === undefined) return [];
  const mask = stateBits(m.state);
  const inv = inverted(m, 'state');
  return [
    {
      test: (s) => overStates(s, (st) => triXor(triOf((mask & (1 << st)) !== 0), inv)),
      why: () => `conntrack state is not known (state ${inv ? '! ' : ''}--state ${m.state?.join(',')})`,
      refine(s) {
        if (!inv && s.ctState < 0 && m.state?.length === 1)
          s.ctState = CT_STATES.indexOf(m.state[0] as 'NEW');
      },
    },
  ];
}

/** `--ctstate` for one base state: NAT bits count only for a packet with a conntrack entry. */
function ctstateFor(st: number, mask: number, s: SimState): Tri {
  if ((mask & (1 << st)) !== 0) return YES;
  const natMask = (mask >> 5) & 3;
  if (natMask === 0 || st === CT.INVALID || st === CT.UNTRACKED) return NO;
  if (s.ctNat < 0) return MAYBE;
  return triOf((s.ctNat & natMask) !== 0);
}

const STATUS_BITS: Readonly<Record<string, number>> = {
  EXPECTED: 1,
  SEEN_REPLY: 2,
  ASSURED: 4,
  CONFIRMED: 8,
};

interface Tuple {
  readonly src: Words | undefined;
  readonly dst: Words | undefined;
  readonly sport: number;
  readonly dport: number;
}

/**
 * The connection's original and reply tuples, when the packet pins them down:
 * a tracked, not RELATED packet of a connection without NAT whose direction is known.
 */
function tuples(s: SimState, st: number): { orig: Tuple; repl: Tuple } | undefined {
  if (st === CT.RELATED || s.ctNat !== 0 || s.ctDir < 0) return undefined;
  const ports = s.proto === 6 || s.proto === 17 || s.proto === 132 || s.proto === 33 || s.proto === 136;
  const fwd: Tuple = { src: s.src, dst: s.dst, sport: ports ? s.sport : -1, dport: ports ? s.dport : -1 };
  const back: Tuple = { src: s.dst, dst: s.src, sport: fwd.dport, dport: fwd.sport };
  return s.ctDir === 0 ? { orig: fwd, repl: back } : { orig: back, repl: fwd };
}

type TupleKey = 'ctorigsrc' | 'ctorigdst' | 'ctreplsrc' | 'ctrepldst';
type PortKey = 'ctorigsrcport' | 'ctorigdstport' | 'ctreplsrcport' | 'ctrepldstport';

export function conntrackChecks(m: ConntrackMatch, family: 'ipv4' | 'ipv6'): Check[] {
  const inv = (k: string) => inverted(m, k);
  const stateMask = m.ctstate === undefined ? undefined : stateBits(m.ctstate);
  const protoNum = m.ctproto;
  const addr: [TupleKey, Cidr][] = [];
  for (const k of ['ctorigsrc', 'ctorigdst', 'ctreplsrc', 'ctrepldst'] as const) {
    const v = m[k];
    const c = v === undefined ? undefined : parseCidr(family, v);
    if (c) addr.push([k, c]);
  }
  const ports: [PortKey, number, number][] = [];
  for (const k of ['ctorigsrcport', 'ctorigdstport', 'ctreplsrcport', 'ctrepldstport'] as const) {
    const v = m[k];
    if (v !== undefined) ports.push([k, ...parseSpan(v)]);
  }
  const statusMask = m.ctstatus?.reduce((b, w) => b | (STATUS_BITS[w] ?? 0), 0);
  const reasons = new Set<string>();

  const forState = (s: SimState, st: number): Tri => {
    let r: Tri = YES;
    const and = (t: Tri, why: string) => {
      if (t === NO) r = NO;
      else if (t === MAYBE && r !== NO) {
        r = MAYBE;
        reasons.add(why);
      }
    };
    if (stateMask !== undefined) {
      and(triXor(ctstateFor(st, stateMask, s), inv('ctstate')), 'SNAT/DNAT of the connection is not known');
      if ((r as Tri) === NO) return NO;
    }
    if (st === CT.INVALID || st === CT.UNTRACKED) return stateMask === undefined ? NO : r;
    if (m.ctdir !== undefined) {
      and(
        s.ctDir < 0 ? MAYBE : triOf(s.ctDir === (m.ctdir === 'ORIGINAL' ? 0 : 1)),
        'conntrack direction is not known',
      );
    }
    if (protoNum !== undefined) {
      const p = st === CT.RELATED ? -1 : s.proto;
      and(
        p < 0 ? MAYBE : triXor(triOf(p === protoNum), inv('ctproto')),
        'protocol of the connection is not known',
      );
    }
    const t = addr.length || ports.length ? tuples(s, st) : undefined;
    for (const [k, c] of addr) {
      const tuple = k.startsWith('ctorig') ? t?.orig : t?.repl;
      const a = k.endsWith('src') ? tuple?.src : tuple?.dst;
      and(
        a === undefined ? MAYBE : triXor(triOf(inCidr(c, a)), inv(k)),
        `${k} of the connection is not known`,
      );
    }
    for (const [k, lo, hi] of ports) {
      const tuple = k.startsWith('ctorig') ? t?.orig : t?.repl;
      const p = tuple === undefined ? -1 : k.endsWith('srcport') ? tuple.sport : tuple.dport;
      and(p < 0 ? MAYBE : triXor(triOf(p >= lo && p <= hi), inv(k)), `${k} of the connection is not known`);
    }
    if (statusMask !== undefined) {
      and(
        s.ctStatus < 0 ? MAYBE : triXor(triOf((s.ctStatus & statusMask) !== 0), inv('ctstatus')),
        'conntrack status is not known',
      );
    }
    if (m.ctexpire !== undefined) and(MAYBE, 'remaining lifetime of the connection is not known');
    return r;
  };

  return [
    {
      test: (s) => overStates(s, (st) => forState(s, st)),
      why(s) {
        reasons.clear();
        if (s.ctState < 0) reasons.add('conntrack state is not known');
        overStates(s, (st) => forState(s, st));
        return `conntrack: ${[...reasons].join('; ')}`;
      },
      refine(s) {
        if (s.ctState < 0 && !inv('ctstate') && m.ctstate?.length === 1) {
          const i = CT_STATES.indexOf(m.ctstate[0] as 'NEW');
          if (i >= 0) s.ctState = i;
        }
      },
    },
  ];
}

/** `value[/mask]` of a mark match. */
function markValue(text: string): [number, number] {
  const [v, mask] = text.split('/');
  return [Number(v) >>> 0, mask === undefined ? 0xffffffff : Number(mask) >>> 0];
}

/** `(x & mask) == value` when only the `known` bits of x are known. */
export function maskedEquals(x: number, known: number, mask: number, value: number): Tri {
  const differ = ((x ^ value) & mask & known) >>> 0;
  if (differ !== 0) return NO;
  return (mask & ~known) >>> 0 === 0 ? YES : MAYBE;
}

export function markChecks(m: MarkMatch): Check[] {
  if (m.mark === undefined) return [];
  const [value, mask] = markValue(m.mark);
  const inv = inverted(m, 'mark');
  return [
    {
      test: (s) => triXor(maskedEquals(s.mark, s.markKnown, mask, value), inv),
      why: () => `packet mark is not fully known (mark ${inv ? '! ' : ''}--mark ${m.mark})`,
    },
  ];
}

export function connmarkChecks(m: ConnmarkMatch): Check[] {
  if (m.mark === undefined) return [];
  const [value, mask] = markValue(m.mark);
  const inv = inverted(m, 'mark');
  return [
    {
      test: (s) =>
        overStates(s, (st) =>
          st === CT.INVALID || st === CT.UNTRACKED
            ? NO
            : triXor(maskedEquals(s.connmark, s.connmarkKnown, mask, value), inv),
        ),
      why: (s) =>
        s.ctState < 0
          ? 'conntrack state is not known (connmark needs a connection)'
          : `connection mark is not fully known (connmark ${inv ? '! ' : ''}--mark ${m.mark})`,
    },
  ];
}
