import { describe, expect, it } from 'vitest';
import type { Rule } from '../../src/domain/model.js';
import { normalizeRule } from '../../src/iptables/catalogue.js';
import { parseRuleArgs, parseRuleSpec } from '../../src/iptables/rule-parser.js';
import { ruleText } from '../../src/iptables/rule-writer.js';
import { splitRestoreWords } from '../../src/iptables/tokenize.js';
import { invalidArgument as invalidArgumentWithin } from '../helpers/errors.js';

const invalidArgument = (fn: () => unknown) => invalidArgumentWithin(fn, 400);

/** Parses what iptables-save printed after `-A CHAIN`. */
function parseSaved(text: string, isChain?: (name: string) => boolean): Rule {
  return parseRuleArgs(splitRestoreWords(text, 1), 'ipv4', {
    mode: 'save',
    ...(isChain ? { isChain } : {}),
  });
}

describe('parseRuleSpec: the seed scenarios', () => {
  it('SSH brute-force limiting: --set', () => {
    const rule = parseRuleSpec(
      '-p tcp -m tcp --dport 22 -m state --state NEW -m recent --set --name DEFAULT --rsource',
      'ipv4',
    );
    expect(rule).toEqual({
      protocol: 'tcp',
      matches: [
        { module: 'tcp', dport: '22' },
        { module: 'state', state: ['NEW'] },
        { module: 'recent', action: 'set', name: 'DEFAULT', mask: '255.255.255.255', side: 'rsource' },
      ],
    });
    expect(ruleText(rule)).toBe(
      '-p tcp -m tcp --dport 22 -m state --state NEW -m recent --set --name DEFAULT --mask 255.255.255.255 --rsource',
    );
  });

  it('SSH brute-force limiting: --update ... -j LOG_AND_DROP', () => {
    const rule = parseRuleSpec(
      '-p tcp -m tcp --dport 22 -m state --state NEW -m recent --update --seconds 60 --hitcount 4 --name DEFAULT --rsource -j LOG_AND_DROP',
      'ipv4',
    );
    expect(rule.matches[2]).toEqual({
      module: 'recent',
      action: 'update',
      seconds: 60,
      hitcount: 4,
      name: 'DEFAULT',
      mask: '255.255.255.255',
      side: 'rsource',
    });
    expect(rule.target).toEqual({ jump: 'LOG_AND_DROP' });
  });

  it('the LOG rule with a quoted prefix', () => {
    const rule = parseRuleSpec('-j LOG --log-prefix "iptables deny: " --log-level 7', 'ipv4');
    expect(rule).toEqual({ matches: [], target: { target: 'LOG', prefix: 'iptables deny: ', level: 7 } });
    expect(ruleText(rule)).toBe('-j LOG --log-prefix "iptables deny: " --log-level 7');
  });

  it('ESTABLISHED,RELATED is printed in the kernel order', () => {
    expect(ruleText(parseRuleSpec('-m state --state ESTABLISHED,RELATED -j ACCEPT', 'ipv4'))).toBe(
      '-m state --state RELATED,ESTABLISHED -j ACCEPT',
    );
    expect(ruleText(parseRuleSpec('-m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT', 'ipv6'))).toBe(
      '-m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT',
    );
  });

  it('typographic dashes pasted from the article get a pointed message', () => {
    const e = invalidArgument(() => parseRuleSpec('-p tcp -m tcp –dport 22 -j ACCEPT', 'ipv4'));
    expect(e.field).toBe('spec.matches[0]');
    expect(e.message).toContain('write --dport');
  });
});

describe('parseRuleSpec: canonical forms', () => {
  it.each<[string, string]>([
    ['-j ACCEPT', '-j ACCEPT'],
    ['--jump DROP', '-j DROP'],
    // -p tcp with a tcp option loads -m tcp implicitly, as iptables does.
    ['-p tcp --dport 22 -j ACCEPT', '-p tcp -m tcp --dport 22 -j ACCEPT'],
    ['-p udp --sport 53 --dport 1024:', '-p udp -m udp --sport 53 --dport 1024:65535'],
    ['-p 6 --destination-port 22', '-p tcp -m tcp --dport 22'],
    ['-p tcp --syn', '-p tcp -m tcp --tcp-flags FIN,SYN,RST,ACK SYN'],
    ['-p tcp ! --dport 22', '-p tcp -m tcp ! --dport 22'],
    // Options may follow the target; the printed order is iptables-save's.
    ['-j ACCEPT -p tcp --dport 22', '-p tcp -m tcp --dport 22 -j ACCEPT'],
    ['-j LOG -p tcp --log-level 7 --dport 22', '-p tcp -m tcp --dport 22 -j LOG --log-level 7'],
    [
      '-p tcp -i eth0 -s 192.0.2.9/24 ! -d 198.51.100.1 -o eth1',
      '-s 192.0.2.0/24 ! -d 198.51.100.1/32 -i eth0 -o eth1 -p tcp',
    ],
    ['--source 192.0.2.1 --in-interface lo --protocol icmp', '-s 192.0.2.1/32 -i lo -p icmp'],
    ['-s 0.0.0.0/0 -p all -i +', ''],
    ['! -i +', '! -i +'],
    ['-f', '-f'],
    // No single-quote grouping: iptables-restore keeps them as characters.
    ["-m comment --comment 'it''s'", `-m comment --comment "\\'it\\'\\'s\\'"`],
    [`-m comment --comment "\\'dapp_SSH\\'"`, `-m comment --comment "\\'dapp_SSH\\'"`],
    ['-m comment --comment -j -j ACCEPT', '-m comment --comment -j -j ACCEPT'],
    ['-m comment --comment "ünïcode ✓"', '-m comment --comment "ünïcode ✓"'],
    ['-m foo --x "a \\"b\\"" -j BAR y\\z', '-m foo --x "a \\"b\\"" -j BAR y\\z'],
    [`-m comment --comment "say \\"hi\\""`, '-m comment --comment "say \\"hi\\""'],
    // Untyped modules and targets are kept as their tokens.
    ['-m foo --bar 1 ! --baz -j ACCEPT', '-m foo --bar 1 ! --baz -j ACCEPT'],
    ['-m foo --bar 1 -p tcp --dport 1', '-p tcp -m foo --bar 1 -m tcp --dport 1'],
    ['-j MASQUERADE --to-ports 1024-2048', '-j MASQUERADE --to-ports 1024-2048'],
    ['-j FOO', '-j FOO'],
    ['-g FOO', '-g FOO'],
  ])('%j -> %j', (spec, text) => {
    expect(ruleText(parseRuleSpec(spec, 'ipv4'))).toBe(text);
  });

  it('a target name no chain can take is a target, not a jump', () => {
    // Typed or not, MASQUERADE is a target: no chain may have that name.
    expect(parseRuleSpec('-j MASQUERADE', 'ipv4').target).toMatchObject({ target: 'MASQUERADE' });
    expect(parseRuleSpec('-j TEE', 'ipv4').target).toMatchObject({ target: 'TEE' });
    expect(parseRuleSpec('-j FOO', 'ipv4').target).toEqual({ jump: 'FOO' });
  });

  it('gives the same model as the typed JSON form', () => {
    const fromSpec = parseRuleSpec(
      '-p tcp -s 192.0.2.0/24 -m multiport --dports 80,443 -m comment --comment web -j REJECT --reject-with tcp-reset',
      'ipv4',
    );
    const fromJson = normalizeRule(
      {
        source: '192.0.2.0/24',
        protocol: 'tcp',
        matches: [
          { module: 'multiport', dports: [80, 443] },
          { module: 'comment', comment: 'web' },
        ],
        target: { target: 'REJECT', rejectWith: 'tcp-reset' },
      },
      'ipv4',
    );
    expect(fromSpec).toEqual(fromJson);
  });
});

describe('parseRuleSpec: refusals', () => {
  it.each([
    '-A',
    '-I',
    '-D',
    '-R',
    '-F',
    '-X',
    '-N',
    '-P',
    '-E',
    '-Z',
    '-L',
    '-S',
    '-C',
    '-t',
    '-w',
    '--append',
    '--flush',
  ])('refuses the command %s with a clear message', (flag) => {
    const e = invalidArgument(() => parseRuleSpec(`${flag} INPUT -j ACCEPT`, 'ipv4'));
    expect(e.field).toBe('spec');
    expect(e.message).toContain(`${flag} (`);
    expect(e.message).toContain('not part of a rule spec');
  });

  it.each<[string, string | undefined, string]>([
    ['-p tcp -m tcp --dportt 22', 'spec.matches[0]', 'unknown option --dportt for tcp'],
    ['--dport 22', 'spec', 'unknown option --dport for the rule'],
    ['-p udp --syn', 'spec', 'unknown option --syn'],
    ['-j LOG --log-prefx x', 'spec.target', 'unknown option --log-prefx for LOG'],
    ['-p tcp -p udp', 'spec.protocol', 'given twice'],
    ['-j', 'spec', '-j needs a value'],
    ['-s', 'spec', '-s needs a value'],
    ['-s -j ACCEPT', 'spec', '-s needs a value'],
    ['-p tcp --dport ! 22', 'spec', 'put ! before the option'],
    ['-j ACCEPT -j DROP', 'spec.target', 'at most one target'],
    ['-g ACCEPT', 'spec.target', 'must name a user chain'],
    ['-g FOO --x 1', 'spec.target', 'takes no options'],
    ['! -j ACCEPT', 'spec', 'cannot be negated'],
    ['!', 'spec', 'must be followed'],
    ['! !', 'spec', 'must be followed'],
    ['-m tcp --dport 22', 'spec.matches[0]', 'needs protocol tcp'],
    ['! -p tcp --dport 22', 'spec.matches[0]', 'not negated'],
    ['-p icmp -m icmp --icmp-type 8', undefined, ''],
    ['-m recent', 'spec.matches[0]', 'needs one of --set'],
    ['-m "bad name"', 'spec', 'not a valid match name'],
    ['-j "bad name"', 'spec.target', 'may only contain'],
    ['-j X\\;', 'spec.target', 'may only contain'],
    ['-s example.com', 'spec.source', 'host names are not accepted'],
    ['-s 2001:db8::1', 'spec.source', 'not an IPv4'],
    ['-i abcdefghijklmno+', 'spec.inInterface', '1 to 15'],
    ['-p tcp --dport 65536', 'spec.matches[0].dport', '0 to 65535'],
    ['-p tcp --dport -1', 'spec.matches[0].dport', 'must be a port'],
    ['-p tcp --dport 99999999999999999999', 'spec.matches[0].dport', 'must be a port'],
    [`-m comment --comment "${'ü'.repeat(128)}"`, 'spec.matches[0].comment', 'at most 255'],
    [`-m comment --comment "${'x'.repeat(256)}"`, 'spec.matches[0].comment', 'at most 255'],
    ['-m comment --comment a\tb', 'spec.matches[0]', 'unknown option b'],
    ["-m comment --comment 'two words'", 'spec.matches[0]', 'single quotes do not group'],
    ['-j LOG --log-prefix "a\nb"', 'spec', 'single line'],
    ['-j LOG --log-prefix "a\u0000b"', 'spec', 'single line'],
    ['-j ACCEPT; -F', 'spec.target', 'may only contain'],
  ])('%# %j', (spec, field, message) => {
    if (field === undefined) {
      expect(() => parseRuleSpec(spec, 'ipv4')).not.toThrow();
      return;
    }
    const e = invalidArgument(() => parseRuleSpec(spec, 'ipv4'));
    expect(e.field).toBe(field);
    expect(e.message).toContain(message);
  });

  it('family checks apply', () => {
    expect(invalidArgument(() => parseRuleSpec('-f', 'ipv6')).field).toBe('spec.fragment');
    expect(invalidArgument(() => parseRuleSpec('-p icmp --icmp-type 8', 'ipv6')).message).toContain(
      'only for ipv4',
    );
    expect(ruleText(parseRuleSpec('-p ipv6-icmp --icmpv6-type echo-request', 'ipv6'))).toBe(
      '-p ipv6-icmp -m icmp6 --icmpv6-type 128',
    );
  });

  it('refuses 33 matches and 10 kB specs without crashing', () => {
    const many = Array.from({ length: 33 }, () => '-m foo').join(' ');
    expect(invalidArgument(() => parseRuleSpec(many, 'ipv4')).message).toContain('at most 32');
    invalidArgument(() => parseRuleSpec(`-m comment --comment "${'x'.repeat(10_240)}"`, 'ipv4'));
    invalidArgument(() => parseRuleSpec('-m foo '.repeat(2000), 'ipv4'));
  });
});

describe('parseRuleArgs in save mode (kernel output)', () => {
  it('takes the next token as a value even when it looks like an option', () => {
    // iptables-save prints a comment "-j" without quotes: `--comment -j`.
    expect(parseSaved('-m comment --comment -j -j ACCEPT')).toEqual({
      matches: [{ module: 'comment', comment: '-j' }],
      target: { target: 'ACCEPT' },
    });
    expect(parseSaved('-m comment --comment "!" -j ACCEPT').matches[0]).toEqual({
      module: 'comment',
      comment: '!',
    });
  });

  it('keeps a typed extension it cannot read as raw tokens', () => {
    expect(parseSaved('-p tcp -m tcp --dport 22 --future-option 1 -j ACCEPT').matches[0]).toEqual({
      module: 'tcp',
      raw: ['--dport', '22', '--future-option', '1'],
    });
  });

  it('tells a jump to a declared chain from an untyped target', () => {
    expect(parseSaved('-j LOG_AND_DROP', (c) => c === 'LOG_AND_DROP').target).toEqual({
      jump: 'LOG_AND_DROP',
    });
    expect(parseSaved('-j NOSUCHTARGET', (c) => c === 'LOG_AND_DROP').target).toEqual({
      target: 'NOSUCHTARGET',
      raw: [],
    });
    expect(parseSaved('-j TEE', () => true).target).toMatchObject({ target: 'TEE' });
  });
});
