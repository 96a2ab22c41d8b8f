/**
 * What a rule's target does to a trace: end the table (ACCEPT, NAT), end the
 * hook (DROP, REJECT, QUEUE), move between chains (jump, goto, RETURN), or
 * change the state and continue (MARK, CONNMARK, NOTRACK, LOG, ...).
 *
 * Marks are tracked bit by bit as (value, known bits), so `--set-xmark
 * 0x1/0xff` on an unknown mark still decides a later `-m mark --mark 0x1/0xff`.
 * An untyped target we do not know is "maybe terminal": the trace explores
 * both "it stopped the packet" and "it continued".
 */
import type { ConnmarkTarget, DnatTarget, MarkTarget, SnatTarget } from '../domain/extensions/targets.js';
import type { TableName } from '../domain/family.js';
import { isGoto, isJump, isRawTarget, type Target } from '../domain/model.js';
import { addressWords } from './ip.js';
import { MAYBE, NO, type SimState } from './state.js';

export type Action =
  | { readonly kind: 'none' }
  /** Continue after changing the state; returns a note for the path. */
  | { readonly kind: 'effect'; readonly apply: (s: SimState) => string | undefined }
  | { readonly kind: 'accept' }
  | { readonly kind: 'drop' }
  | { readonly kind: 'reject'; readonly rejectWith: string }
  | { readonly kind: 'queue'; readonly name: string }
  | { readonly kind: 'return' }
  | { readonly kind: 'jump'; readonly chain: string }
  | { readonly kind: 'goto'; readonly chain: string }
  /** Ends the nat table's traversal after noting the rewrite. */
  | { readonly kind: 'nat'; readonly nat: string; readonly apply: (s: SimState) => string }
  /** Unknown: may stop the packet; `apply` is its effect when it continues. */
  | {
      readonly kind: 'unknown';
      readonly reason: string;
      readonly apply?: (s: SimState) => string | undefined;
    };

const hex = (n: number) => `0x${(n >>> 0).toString(16)}`;

/** A 32-bit value of which only `known` bits are known. */
export interface Bits {
  readonly v: number;
  readonly k: number;
}
const and = (a: Bits, c: number): Bits => ({ v: (a.v & c) >>> 0, k: (a.k | ~c) >>> 0 });
const xor = (a: Bits, b: Bits): Bits => ({ v: (a.v ^ b.v) >>> 0, k: (a.k & b.k) >>> 0 });
const konst = (c: number): Bits => ({ v: c >>> 0, k: 0xffffffff });
function shift(a: Bits, left: number, right: number): Bits {
  if (left) return { v: (a.v << left) >>> 0, k: ((a.k << left) | ((1 << left) - 1)) >>> 0 };
  if (right) return { v: a.v >>> right, k: ((a.k >>> right) | ~(0xffffffff >>> right)) >>> 0 };
  return a;
}
/** What is known of a value that is either `a` or `b`. */
export function joinBits(a: Bits, b: Bits): Bits {
  const k = (a.k & b.k & ~(a.v ^ b.v)) >>> 0;
  return { v: (a.v & k) >>> 0, k };
}
export const describeBits = (b: Bits): string =>
  b.k === 0xffffffff ? hex(b.v) : b.k === 0 ? 'unknown' : `${hex(b.v & b.k)} (known bits ${hex(b.k)})`;

function valueMask(text: string): [number, number] {
  const [v, m] = text.split('/');
  return [Number(v) >>> 0, m === undefined ? 0xffffffff : Number(m) >>> 0];
}

function markAction(t: MarkTarget): Action {
  const [value, mask] = valueMask(t.setXmark ?? '0x0/0x0');
  return {
    kind: 'effect',
    apply(s) {
      const next = xor(and({ v: s.mark, k: s.markKnown }, ~mask >>> 0), konst(value));
      s.mark = next.v;
      s.markKnown = next.k;
      return `mark is now ${describeBits(next)}`;
    },
  };
}

function connmarkAction(t: ConnmarkTarget): Action {
  const left = t.leftShiftMark ?? 0;
  const right = t.rightShiftMark ?? 0;
  const nfmask = Number(t.nfmask ?? '0xffffffff') >>> 0;
  const ctmask = Number(t.ctmask ?? '0xffffffff') >>> 0;
  return {
    kind: 'effect',
    apply(s) {
      const hasCt = s.hasCt();
      if (hasCt === NO) return 'no connection: CONNMARK does nothing';
      const mark: Bits = { v: s.mark, k: s.markKnown };
      const ct: Bits = { v: s.connmark, k: s.connmarkKnown };
      let nextCt = ct;
      let nextMark = mark;
      if (t.setXmark !== undefined) {
        const [value, mask] = valueMask(t.setXmark);
        nextCt = shift(xor(and(ct, ~mask >>> 0), konst(value)), left, right);
      } else if (t.saveMark) {
        nextCt = xor(and(ct, ~ctmask >>> 0), shift(and(mark, nfmask), left, right));
      } else if (t.restoreMark) {
        nextMark = xor(and(mark, ~nfmask >>> 0), shift(and(ct, ctmask), left, right));
      }
      if (hasCt === MAYBE) {
        nextCt = joinBits(ct, nextCt);
        nextMark = joinBits(mark, nextMark);
      }
      s.connmark = nextCt.v;
      s.connmarkKnown = nextCt.k;
      s.mark = nextMark.v;
      s.markKnown = nextMark.k;
      return t.restoreMark
        ? `mark is now ${describeBits(nextMark)}`
        : `connmark is now ${describeBits(nextCt)}`;
    },
  };
}

/** `addr[-addr][:port[-port]]`, `[addr[-addr]]:port[-port]` or `:port`. */
function parseNatRange(text: string): { addr?: string; port?: string } {
  if (text.startsWith('[')) {
    const close = text.indexOf(']');
    const port = text.slice(close + 2);
    return { addr: text.slice(1, close), ...(port ? { port } : {}) };
  }
  if (text.startsWith(':')) return { port: text.slice(1) };
  const colons = text.split(':').length - 1;
  if (colons === 1) {
    const [addr, port] = text.split(':');
    return { ...(addr ? { addr } : {}), ...(port ? { port } : {}) };
  }
  return { addr: text };
}

function rewrite(
  s: SimState,
  side: 'src' | 'dst',
  range: string | undefined,
  ports: string | undefined,
): void {
  if (range !== undefined) s[side] = range.includes('-') ? undefined : addressWords(s.family, range);
  const key = side === 'src' ? 'sport' : 'dport';
  if (ports !== undefined) {
    const base = ports.split('/')[0] ?? '';
    s[key] = base.includes('-') ? -1 : Number(base);
  }
}

function setNat(s: SimState, bit: number): void {
  if (s.ctNat >= 0) s.ctNat |= bit;
}

function natAction(t: Target, table: TableName): Action | undefined {
  if (isJump(t) || isGoto(t)) return undefined;
  const name = t.target;
  if (!['DNAT', 'SNAT', 'MASQUERADE', 'REDIRECT', 'NETMAP'].includes(name)) return undefined;
  if (table !== 'nat') return { kind: 'unknown', reason: `${name} is valid only in the nat table` };
  const raw = isRawTarget(t);
  return {
    kind: 'nat',
    nat: name,
    apply(s) {
      if (raw || name === 'NETMAP') {
        if (name === 'SNAT' || name === 'MASQUERADE') s.src = undefined;
        else if (name !== 'NETMAP') s.dst = undefined;
        else {
          s.src = undefined;
          s.dst = undefined;
        }
        setNat(s, name === 'SNAT' || name === 'MASQUERADE' ? 1 : 2);
        return `${name} rewrites the packet (options not modelled)`;
      }
      if (name === 'DNAT') {
        const to = (t as DnatTarget).toDestination ?? '';
        const r = parseNatRange(to);
        rewrite(s, 'dst', r.addr, r.port);
        setNat(s, 2);
        return `DNAT: destination becomes ${to}`;
      }
      if (name === 'SNAT') {
        const to = (t as SnatTarget).toSource ?? '';
        const r = parseNatRange(to);
        rewrite(s, 'src', r.addr, r.port);
        setNat(s, 1);
        return `SNAT: source becomes ${to}`;
      }
      const ports = (t as { toPorts?: string }).toPorts;
      if (name === 'REDIRECT') {
        const local = s.hook === 'OUTPUT' ? (s.family === 'ipv4' ? '127.0.0.1' : '::1') : undefined;
        s.dst = local === undefined ? undefined : addressWords(s.family, local);
        if (ports !== undefined) s.dport = ports.includes('-') ? -1 : Number(ports);
        setNat(s, 2);
        return `REDIRECT: destination becomes ${local ?? 'the incoming interface address'}${ports ? ` port ${ports}` : ''}`;
      }
      s.src = undefined;
      if (ports !== undefined) s.sport = ports.includes('-') ? -1 : Number(ports);
      setNat(s, 1);
      return `MASQUERADE: source becomes the outgoing interface address${ports ? ` port ${ports}` : ''}`;
    },
  };
}

/** Untyped targets known to continue, with what they change. */
const CONTINUING: Readonly<Record<string, ((s: SimState) => string | undefined) | null>> = {
  LOG: null,
  NFLOG: null,
  ULOG: null,
  TRACE: null,
  AUDIT: null,
  CHECKSUM: null,
  CLASSIFY: null,
  CONNSECMARK: null,
  SECMARK: null,
  IDLETIMER: null,
  LED: null,
  RATEEST: null,
  TCPMSS: null,
  TCPOPTSTRIP: null,
  TEE: null,
  TOS: null,
  DSCP: null,
  ECN: null,
  CT: null,
  MARK: (s) => {
    s.markKnown = 0;
    return 'mark is now unknown';
  },
  HMARK: (s) => {
    s.markKnown = 0;
    return 'mark is now unknown';
  },
  CONNMARK: (s) => {
    s.connmarkKnown = 0;
    s.markKnown = 0;
    return 'mark and connmark are now unknown';
  },
  TTL: (s) => {
    s.ttl = -1;
    return 'TTL is now unknown';
  },
  HL: (s) => {
    s.ttl = -1;
    return 'hop limit is now unknown';
  },
  SNPT: (s) => {
    s.src = undefined;
    return 'source address is now unknown';
  },
  DNPT: (s) => {
    s.dst = undefined;
    return 'destination address is now unknown';
  },
};

/** `-j SET --add-set NAME ...`: the named sets' contents are unknown afterwards. */
function setTargetEffect(raw: readonly string[]): (s: SimState) => string {
  const names = raw.flatMap((tok, i) =>
    tok === '--add-set' || tok === '--del-set' ? [raw[i + 1] ?? ''] : [],
  );
  return (s) => {
    for (const n of names.length ? names : [...s.ipsets.keys()]) s.ipsets.delete(n);
    return `contents of ipset ${names.join(', ') || '(all)'} are now unknown`;
  };
}

function notrack(s: SimState): string | undefined {
  if (s.rawPhase) s.notracked = true;
  return s.rawPhase ? 'the packet will not be tracked (UNTRACKED)' : undefined;
}

export function compileAction(t: Target | undefined, table: TableName): Action {
  if (t === undefined) return { kind: 'none' };
  if (isJump(t)) return { kind: 'jump', chain: t.jump };
  if (isGoto(t)) return { kind: 'goto', chain: t.goto };
  const nat = natAction(t, table);
  if (nat) return nat;
  const name = t.target;
  if (isRawTarget(t)) {
    if (name === 'NFQUEUE') return { kind: 'queue', name };
    if (name === 'REJECT') return { kind: 'reject', rejectWith: t.raw.join(' ') };
    if (name === 'NOTRACK') return { kind: 'effect', apply: notrack };
    if (name === 'SET') return { kind: 'effect', apply: setTargetEffect(t.raw) };
    if (Object.hasOwn(CONTINUING, name)) {
      const effect = CONTINUING[name];
      return effect ? { kind: 'effect', apply: effect } : { kind: 'none' };
    }
    return {
      kind: 'unknown',
      reason: `untyped target ${name} may stop the packet or let it continue`,
    };
  }
  switch (t.target) {
    case 'ACCEPT':
      return { kind: 'accept' };
    case 'DROP':
      return { kind: 'drop' };
    case 'REJECT':
      return { kind: 'reject', rejectWith: t.rejectWith ?? '' };
    case 'QUEUE':
      return { kind: 'queue', name: 'QUEUE' };
    case 'RETURN':
      return { kind: 'return' };
    case 'MARK':
      return markAction(t);
    case 'CONNMARK':
      return connmarkAction(t);
    case 'NOTRACK':
      return { kind: 'effect', apply: notrack };
    case 'CT':
      return t.notrack ? { kind: 'effect', apply: notrack } : { kind: 'none' };
    default:
      return { kind: 'none' };
  }
}
