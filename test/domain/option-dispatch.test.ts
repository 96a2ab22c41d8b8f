/**
 * Typed JSON whose options iptables would hand to another match is refused up
 * front, naming the match as given (the kernel side of the same class is
 * test/iptables/option-dispatch.test.ts).
 */
import { describe, expect, it } from 'vitest';
import { dispatchConflict } from '../../src/domain/extensions/option-dispatch.js';
import type { Match } from '../../src/domain/model.js';
import { normalizeRule } from '../../src/iptables/catalogue.js';
import { ruleText } from '../../src/iptables/rule-writer.js';
import { invalidArgument } from '../helpers/errors.js';

const mark = (v: string) => ({ module: 'mark', mark: v });
const connmark = (v: string) => ({ module: 'connmark', mark: v });

describe('option dispatch', () => {
  it('refuses a mark match whose --mark connmark, loaded in between, would take', () => {
    const e = invalidArgument(
      () => normalizeRule({ matches: [mark('0x1'), connmark('0x2'), mark('0x3')] }, 'ipv4'),
      500,
      'rule.matches[2]',
    );
    expect(e.message).toContain('--mark');
    expect(e.message).toContain('connmark match at matches[1]');
  });

  it('accepts the same matches when no other module knows the name', () => {
    const r = normalizeRule(
      { matches: [mark('0x1'), { module: 'comment', comment: 'x' }, mark('0x3')] },
      'ipv4',
    );
    expect(ruleText(r)).toBe('-m mark --mark 0x1 -m comment --comment x -m mark --mark 0x3');
    // connmark first: the later mark match is loaded after it and takes its own --mark.
    expect(() =>
      normalizeRule({ matches: [connmark('0x2'), mark('0x1'), mark('0x3')] }, 'ipv4'),
    ).not.toThrow();
  });

  it('names the position as given when tcp matches were merged before it', () => {
    invalidArgument(
      () =>
        normalizeRule(
          {
            protocol: 'tcp',
            matches: [
              { module: 'tcp', dport: 22 },
              { module: 'tcp', sport: 1000 },
              mark('0x1'),
              connmark('0x2'),
              mark('0x3'),
            ],
          },
          'ipv4',
        ),
      500,
      'rule.matches[4]',
    );
  });

  it('knows the option names an untyped match uses', () => {
    const raw = (raw: string[]): Match => ({ module: 'foo', raw });
    const typed = normalizeRule({ matches: [mark('0x1')] }, 'ipv4').matches[0] as Match;
    expect(dispatchConflict([typed, raw(['--mark', '7']), typed])).toEqual({
      at: 2,
      flag: '--mark',
      takenBy: 1,
    });
    expect(dispatchConflict([raw(['--x', '1']), typed, raw(['--x', '2'])])).toBeUndefined();
    expect(dispatchConflict([raw(['--mark', '1']), typed, raw(['--mark', '2'])])).toEqual({
      at: 2,
      flag: '--mark',
      takenBy: 1,
    });
  });
});
