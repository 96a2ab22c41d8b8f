/**
 * Simulator and linter benchmark: a 50,000-rule INPUT chain of varied typed
 * rules (address bans, ports, multiport, iprange, conntrack, icmp, interface
 * and length rules), then
 *   - traces of packets that fall through every rule to the policy (worst case),
 *   - traces of packets that an early rule decides,
 *   - lint of the whole ruleset.
 * Prints median and p99 per trace, and the one-off costs (parse, first trace
 * which compiles and hashes the chain, lint).
 *
 * Pure computation, no kernel: `node --import tsx bench/simulate-bench.ts [--rules N]`.
 */
import { performance } from 'node:perf_hooks';
import { parseSave } from '../src/iptables/save-parser.js';
import { lint } from '../src/simulate/lint/lint.js';
import { normalizePacket } from '../src/simulate/normalize-packet.js';
import { tracePacket } from '../src/simulate/simulate.js';

const args = process.argv.slice(2);
const RULES = Number(args[args.indexOf('--rules') + 1] ?? '') || 50_000;
const ROUNDS = 200;

/** One rule of a varied mix; every rule is specific enough that the fall-through packet misses it. */
function rule(i: number): string {
  const a = `10.${(i >> 16) & 0xff}.${(i >> 8) & 0xff}.${i & 0xff}`;
  switch (i % 8) {
    case 0:
      return `-A INPUT -s ${a}/32 -j DROP`;
    case 1:
      return `-A INPUT -s ${a}/32 -p tcp -m tcp --dport ${(i % 60000) + 1} -j REJECT --reject-with tcp-reset`;
    case 2:
      return `-A INPUT -p udp -m multiport --dports ${(i >> 3) + 2000},${(i >> 3) + 20000} -m comment --comment "r${i}" -j DROP`;
    case 3:
      return `-A INPUT -m iprange --src-range ${a}-${a} -j DROP`;
    case 4:
      return `-A INPUT -s ${a}/32 -m conntrack --ctstate NEW -j DROP`;
    case 5:
      return `-A INPUT -i ppp${i} -p icmp -m icmp --icmp-type 8 -j DROP`;
    case 6:
      return `-A INPUT -d 203.0.113.${i & 0xff}/32 -p tcp -m tcp --sport ${(i >> 8) + 1} -j ACCEPT`;
    default:
      return `-A INPUT -s ${a}/32 -m length --length ${(i % 1400) + 60} -j DROP`;
  }
}

function ruleset(n: number): string {
  const lines = ['*filter', ':INPUT DROP [0:0]', ':FORWARD ACCEPT [0:0]', ':OUTPUT ACCEPT [0:0]'];
  lines.push('-A INPUT -i lo -j ACCEPT', '-A INPUT -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT');
  for (let i = 0; i < n - 2; i++) lines.push(rule(i));
  lines.push('COMMIT', '');
  return lines.join('\n');
}

function stats(xs: number[]): { median: number; p99: number } {
  const s = [...xs].sort((a, b) => a - b);
  return {
    median: s[Math.floor(s.length / 2)] ?? Number.NaN,
    p99: s[Math.floor(s.length * 0.99)] ?? Number.NaN,
  };
}

const fmt = (ms: number) => `${ms.toFixed(3)} ms`;

function main(): void {
  const text = ruleset(RULES);
  let t0 = performance.now();
  const rs = parseSave(text, 'ipv4');
  const parseMs = performance.now() - t0;
  const chainLength = rs.tables[0]?.chains[0]?.rules.length ?? 0;

  const fallThrough = normalizePacket({
    family: 'ipv4',
    hook: 'INPUT',
    inInterface: 'eth0',
    source: '192.0.2.10',
    destination: '192.0.2.1',
    protocol: 'tcp',
    sourcePort: 40000,
    destinationPort: 8443,
    tcpFlags: ['SYN'],
    ctState: 'NEW',
    length: 60,
    ttl: 64,
  });
  const early = normalizePacket({ ...fallThrough, ctState: 'ESTABLISHED', tcpFlags: ['ACK'] });

  t0 = performance.now();
  const first = tracePacket(rs, fallThrough);
  const firstMs = performance.now() - t0;
  if (!first.definite || first.verdict !== 'DROP' || first.outcomes[0]?.path.length !== chainLength + 1)
    throw new Error(`unexpected fall-through result: ${JSON.stringify(first.possibleVerdicts)}`);

  const worst: number[] = [];
  const best: number[] = [];
  for (let i = 0; i < ROUNDS; i++) {
    t0 = performance.now();
    tracePacket(rs, fallThrough);
    worst.push(performance.now() - t0);
    t0 = performance.now();
    const r = tracePacket(rs, early);
    best.push(performance.now() - t0);
    if (!r.definite || r.verdict !== 'ACCEPT')
      throw new Error('the ESTABLISHED packet should be accepted early');
  }

  t0 = performance.now();
  const findings = lint(rs);
  const lintMs = performance.now() - t0;
  t0 = performance.now();
  lint(rs);
  const lintAgainMs = performance.now() - t0;

  const w = stats(worst);
  const b = stats(best);
  console.log(`simulate-bench: INPUT chain of ${chainLength} rules (node ${process.version})`);
  console.log(`  parse iptables-save text          ${fmt(parseMs)}`);
  console.log(`  first trace (compile + rule ids)  ${fmt(firstMs)}`);
  console.log(
    `  trace, falls through to policy    median ${fmt(w.median)}  p99 ${fmt(w.p99)}  (${ROUNDS} runs)`,
  );
  console.log(
    `  trace, decided by rule 2          median ${fmt(b.median)}  p99 ${fmt(b.p99)}  (${ROUNDS} runs)`,
  );
  console.log(
    `  lint (first / again)              ${fmt(lintMs)} / ${fmt(lintAgainMs)}  (${findings.length} findings)`,
  );
}

main();
