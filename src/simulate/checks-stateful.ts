/**
 * Matches that depend on state outside the packet: recent, set, owner,
 * limit, hashlimit. They are decided only from what the packet description
 * supplies (`recent` lists, `ipsets`, socket owner); otherwise they answer
 * MAYBE and say what was missing. Rate limiters are always MAYBE: their token
 * buckets are not observable.
 *
 * `recent` follows recent_mt in xt_recent.c, including its side effects:
 * `--set` adds a hit whenever it is reached, `--update` adds one when the
 * match answers true, `--remove` drops the entry. A list the packet did not
 * describe is tracked as "these hits surely exist, maybe some more", which
 * keeps every later answer sound.
 */
import type {
  HashlimitMatch,
  LimitMatch,
  OwnerMatch,
  RecentMatch,
  SetMatch,
} from '../domain/extensions/matches.js';
import type { Family } from '../domain/family.js';
import { type Check, inverted, unknownCheck } from './check.js';
import { addressWords, inCidr, type Words } from './ip.js';
import {
  MAYBE,
  NO,
  RECENT_RING,
  type RecentEntry,
  type RecentList,
  type SimState,
  type Tri,
  triAnd,
  triOf,
  triXor,
  YES,
} from './state.js';

function listOf(s: SimState, name: string): RecentList {
  let list = s.recent.get(name);
  if (!list) {
    list = { described: false, ring: RECENT_RING, entries: new Map() };
    s.recent.set(name, list);
  }
  return list;
}

function entryIn(list: RecentList | undefined, key: string): RecentEntry {
  const e = list?.entries.get(key);
  if (e) return e;
  return list?.described ? { known: [], maxExtra: 0 } : { known: [], maxExtra: list?.ring ?? RECENT_RING };
}

const exists = (e: RecentEntry): Tri => (e.known.length > 0 ? YES : e.maxExtra > 0 ? MAYBE : NO);

/** The entry after a hit now (age 0); the oldest known hit goes when the ring may be full. */
function addHit(e: RecentEntry, ring: number): RecentEntry {
  const full = e.known.length + e.maxExtra + 1 > ring;
  return { known: [...e.known.slice(full ? 1 : 0), 0], maxExtra: e.maxExtra };
}

/** The entry when a hit may or may not have been added. */
function maybeAddHit(e: RecentEntry, ring: number): RecentEntry {
  const full = e.known.length + e.maxExtra + 1 > ring;
  return { known: e.known.slice(full ? 1 : 0), maxExtra: Math.min(ring, e.maxExtra + 1) };
}

export function recentChecks(m: RecentMatch, family: Family): Check[] {
  const action = m.action ?? 'set';
  const inv = inverted(m, 'action');
  const name = m.name ?? 'DEFAULT';
  const side = m.side === 'rdest' ? 'dst' : 'src';
  const mask =
    addressWords(
      family,
      m.mask ?? (family === 'ipv4' ? '255.255.255.255' : 'ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff'),
    ) ?? [];
  const seconds = m.seconds ?? 0;
  const hitcount = m.hitcount ?? 0;
  const label = `recent --${action} --name ${name}`;

  const keyOf = (s: SimState): string | undefined => {
    const a: Words | undefined = s[side];
    return a === undefined ? undefined : a.map((w, i) => (w & (mask[i] ?? 0)) >>> 0).join('.');
  };
  const inWindow = (stamp: number) => seconds === 0 || -stamp <= seconds;
  /** The --rcheck/--update condition before negation. */
  const condition = (e: RecentEntry): Tri => {
    const ex = exists(e);
    if (ex === NO) return NO;
    if (m.rttl) return MAYBE;
    const need = Math.max(hitcount, 1);
    let k = 0;
    for (const st of e.known) if (inWindow(st)) k++;
    if (k >= need) return YES;
    return e.maxExtra > 0 ? MAYBE : NO;
  };
  const answer = (s: SimState): Tri => {
    if (action === 'set') return triXor(YES, inv);
    const key = keyOf(s);
    if (key === undefined) return MAYBE;
    const e = entryIn(s.recent.get(name), key);
    return triXor(action === 'remove' ? exists(e) : condition(e), inv);
  };

  return [
    {
      test: answer,
      why(s) {
        if (keyOf(s) === undefined)
          return `${side === 'src' ? 'source' : 'destination'} address is not known (${label})`;
        if (m.rttl) return `${label} --rttl compares the TTL recorded with each entry, which is not known`;
        return s.recent.get(name)?.described
          ? `${label}: hits of this address may have been added earlier in this trace`
          : `state of recent list "${name}" is not given (describe it in the packet's "recent")`;
      },
      effect(s, reached, matched) {
        const list = listOf(s, name);
        const key = keyOf(s);
        if (key === undefined) {
          // Some unknown entry may change: no entry of this list is certain any more.
          if (action === 'rcheck') return;
          const entries = new Map<string, RecentEntry>();
          for (const [k, e] of list.entries)
            entries.set(k, { known: [], maxExtra: Math.min(list.ring, e.known.length + e.maxExtra + 1) });
          s.recent.set(name, { described: false, ring: list.ring, entries });
          return;
        }
        const e = entryIn(list, key);
        let certainty: Tri = NO;
        if (action === 'set') certainty = reached;
        else if (action === 'update') {
          // Only an existing entry is updated: a negated --update that matched may have found none.
          const ex = exists(e);
          certainty = matched ? (inv ? ex : YES) : triAnd(reached, triAnd(ex, triXor(condition(e), inv)));
        } else if (action === 'remove') certainty = matched ? triOf(!inv) : triAnd(reached, exists(e));
        if (m.reap && seconds > 0 && action !== 'set' && action !== 'remove') reap(list, key);
        if (certainty === NO) return;
        let next: RecentEntry;
        if (action === 'remove')
          next = certainty === YES ? { known: [], maxExtra: 0 } : { known: [], maxExtra: list.ring };
        else next = certainty === YES ? addHit(e, list.ring) : maybeAddHit(e, list.ring);
        list.entries.set(key, next);
      },
    },
  ];

  /** `--reap` may drop one stale entry (the least recently used, which we cannot name). */
  function reap(list: RecentList, current: string): void {
    for (const [k, e] of list.entries) {
      if (k === current || e.known.length === 0 || e.known.some(inWindow)) continue;
      list.entries.set(k, { known: [], maxExtra: Math.min(list.ring, e.known.length + e.maxExtra) });
    }
  }
}

export function setChecks(m: SetMatch): Check[] {
  const ms = m.matchSet;
  if (ms === undefined) return [];
  const inv = inverted(m, 'matchSet');
  if (ms.flags.length > 1)
    return [
      unknownCheck(`set ${ms.name} ${ms.flags.join(',')}: only single-dimension address sets are modelled`),
    ];
  if ([m.packetsEq, m.packetsLt, m.packetsGt, m.bytesEq, m.bytesLt, m.bytesGt].some((v) => v !== undefined))
    return [unknownCheck(`set ${ms.name}: element counters are not known`)];
  const side = ms.flags[0] === 'dst' ? 'dst' : 'src';
  return [
    {
      test(s) {
        const cidrs = s.ipsets.get(ms.name);
        const a = s[side];
        if (cidrs === undefined || a === undefined) return MAYBE;
        return triXor(triOf(cidrs.some((c) => inCidr(c, a))), inv);
      },
      why: (s) =>
        s.ipsets.has(ms.name)
          ? `${side === 'src' ? 'source' : 'destination'} address is not known (set ${ms.name})`
          : `contents of ipset "${ms.name}" are not given (describe it in the packet's "ipsets")`,
    },
  ];
}

function idRange(text: string): [number, number] {
  const [a, b] = text.split('-');
  const lo = Number(a);
  return [lo, b === undefined ? lo : Number(b)];
}

export function ownerChecks(m: OwnerMatch): Check[] {
  const inv = (k: string) => inverted(m, k);
  const uid = m.uidOwner === undefined ? undefined : idRange(m.uidOwner);
  const gid = m.gidOwner === undefined ? undefined : idRange(m.gidOwner);
  const present = (['socketExists', 'uidOwner', 'gidOwner'] as const).filter((k) => m[k] !== undefined);
  return [
    {
      test(s) {
        if (s.hook !== 'OUTPUT' && s.hook !== 'POSTROUTING') return MAYBE;
        if (s.socket < 0) return MAYBE;
        // No socket: only a match whose every option is negated holds.
        if (s.socket === 0) return triOf(present.every((k) => inv(k)));
        if (m.socketExists && inv('socketExists')) return NO;
        let r: Tri = YES;
        if (uid) {
          const t = s.uid < 0 ? MAYBE : triXor(triOf(s.uid >= uid[0] && s.uid <= uid[1]), inv('uidOwner'));
          r = triAnd(r, t);
        }
        if (gid) {
          const inG = (g: number) => g >= gid[0] && g <= gid[1];
          let t: Tri = s.gid < 0 ? MAYBE : triOf(inG(s.gid));
          if (t !== YES && m.supplGroups) {
            const extra: Tri = s.groups === undefined ? MAYBE : triOf(s.groups.some(inG));
            t = t === NO ? extra : extra === YES ? YES : MAYBE;
          }
          r = triAnd(r, triXor(t, inv('gidOwner')));
        }
        return r;
      },
      why: (s) =>
        s.hook !== 'OUTPUT' && s.hook !== 'POSTROUTING'
          ? `owner matches only locally generated packets (OUTPUT, POSTROUTING), not ${s.hook}`
          : s.socket < 0
            ? 'whether the packet has a local socket is not known (give uid, gid or socketExists)'
            : 'socket owner uid/gid is not known',
    },
  ];
}

export function limitChecks(m: LimitMatch): Check[] {
  return [unknownCheck(`limit ${m.limit ?? ''}: the token bucket's state is not observable`)];
}

export function hashlimitChecks(m: HashlimitMatch): Check[] {
  return [unknownCheck(`hashlimit ${m.name ?? ''}: the rate limiter's state is not observable`)];
}
