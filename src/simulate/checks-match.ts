/**
 * Turns one match of the model into checks: the dispatcher over every typed
 * match of the codec. An untyped match (RawMatch) cannot be evaluated and
 * answers MAYBE, naming itself.
 */
import type { Family } from '../domain/family.js';
import { isRawMatch, type Match } from '../domain/model.js';
import { type Check, unknownCheck } from './check.js';
import { connmarkChecks, conntrackChecks, markChecks, stateChecks } from './checks-conntrack.js';
import { icmp6Checks, icmpChecks, multiportChecks, tcpChecks, udpChecks } from './checks-l4.js';
import {
  addrtypeChecks,
  hlChecks,
  iprangeChecks,
  lengthChecks,
  macChecks,
  physdevChecks,
  pkttypeChecks,
  ttlChecks,
} from './checks-packet.js';
import { hashlimitChecks, limitChecks, ownerChecks, recentChecks, setChecks } from './checks-stateful.js';

export function matchChecks(m: Match, family: Family): Check[] {
  if (isRawMatch(m)) {
    const text = [m.module, ...m.raw].join(' ');
    return [
      unknownCheck(
        `untyped match -m ${text.length > 80 ? `${text.slice(0, 80)}...` : text} cannot be evaluated`,
      ),
    ];
  }
  switch (m.module) {
    case 'tcp':
      return tcpChecks(m);
    case 'udp':
      return udpChecks(m);
    case 'icmp':
      return icmpChecks(m);
    case 'icmp6':
      return icmp6Checks(m);
    case 'multiport':
      return multiportChecks(m);
    case 'state':
      return stateChecks(m);
    case 'conntrack':
      return conntrackChecks(m, family);
    case 'mark':
      return markChecks(m);
    case 'connmark':
      return connmarkChecks(m);
    case 'iprange':
      return iprangeChecks(m, family);
    case 'length':
      return lengthChecks(m);
    case 'ttl':
      return ttlChecks(m);
    case 'hl':
      return hlChecks(m);
    case 'pkttype':
      return pkttypeChecks(m);
    case 'mac':
      return macChecks(m);
    case 'addrtype':
      return addrtypeChecks(m, family);
    case 'physdev':
      return physdevChecks(m);
    case 'recent':
      return recentChecks(m, family);
    case 'set':
      return setChecks(m);
    case 'owner':
      return ownerChecks(m);
    case 'limit':
      return limitChecks(m);
    case 'hashlimit':
      return hashlimitChecks(m);
    case 'comment':
      return [];
  }
}
