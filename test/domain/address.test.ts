import { describe, expect, it } from 'vitest';
import {
  canonicalAddress,
  canonicalCidr,
  formatIPv6,
  parseIPv4,
  parseIPv6,
  preview,
} from '../../src/domain/address.js';
import type { Family } from '../../src/domain/family.js';
import { invalidArgument } from '../helpers/errors.js';

describe('parseIPv4', () => {
  it.each<[string, number[]]>([
    ['0.0.0.0', [0, 0, 0, 0]],
    ['192.0.2.7', [192, 0, 2, 7]],
    ['255.255.255.255', [255, 255, 255, 255]],
  ])('reads %s', (text, bytes) => {
    expect(parseIPv4(text)).toEqual(bytes);
  });

  it.each([
    '',
    '192.0.2',
    '192.0.2.1.5',
    '256.0.0.1',
    '192.0.2.-1',
    '192.000.2.1',
    '192.0.2.01',
    '0x7f.0.0.1',
    '1e2.0.0.1',
    ' 192.0.2.1',
    '192.0.2.1 ',
    '192.0.2.',
    '１９２.0.2.1',
    'localhost',
  ])('refuses %j', (text) => {
    expect(parseIPv4(text)).toBeUndefined();
  });
});

describe('parseIPv6 and formatIPv6 (RFC 5952, as glibc inet_ntop)', () => {
  it.each<[string, string]>([
    ['::', '::'],
    ['::1', '::1'],
    ['0:0:0:0:0:0:0:1', '::1'],
    ['2001:DB8::1', '2001:db8::1'],
    ['2001:0db8:0000:0000:0000:0000:0000:0001', '2001:db8::1'],
    ['2001:db8:0:0:1:0:0:1', '2001:db8::1:0:0:1'],
    ['2001:db8:0:1:1:1:1:1', '2001:db8:0:1:1:1:1:1'],
    ['2001:db8::', '2001:db8::'],
    ['2001:db8:1:2:3:4:5::', '2001:db8:1:2:3:4:5:0'],
    ['::2001:db8:1:2:3:4:5', '0:2001:db8:1:2:3:4:5'],
    ['1:0:0:2:0:0:0:3', '1:0:0:2::3'],
    ['1:0:0:0:2:0:0:3', '1::2:0:0:3'],
    ['fe80::', 'fe80::'],
    ['::ffff:192.0.2.1', '::ffff:192.0.2.1'],
    ['::ffff:c000:201', '::ffff:192.0.2.1'],
    ['::192.0.2.1', '::192.0.2.1'],
    ['::ffff:0:0', '::ffff:0.0.0.0'],
    ['64:ff9b::192.0.2.1', '64:ff9b::c000:201'],
    ['1:2:3:4:5:6:192.0.2.1', '1:2:3:4:5:6:c000:201'],
  ])('%s -> %s', (text, canonical) => {
    const bytes = parseIPv6(text);
    expect(bytes).toHaveLength(16);
    expect(formatIPv6(bytes as number[])).toBe(canonical);
  });

  it.each([
    '',
    ':',
    ':::',
    '1:::2',
    '1::2::3',
    ':1::2',
    '1::2:',
    '1:2:3:4:5:6:7',
    '1:2:3:4:5:6:7:8:9',
    '1:2:3:4:5:6:7:8::',
    '12345::',
    'g::1',
    'fe80::1%eth0',
    '::ffff:192.0.2.256',
    '::ffff:192.0.02.1',
    '::192.0.2.1:1',
    '1.2.3.4',
    '2001:db8::/32',
    `${'0:'.repeat(30)}0`,
  ])('refuses %j', (text) => {
    expect(parseIPv6(text)).toBeUndefined();
  });
});

describe('canonicalAddress', () => {
  it.each<[Family, string, string]>([
    ['ipv4', '192.0.2.7', '192.0.2.7'],
    ['ipv6', '2001:DB8:0::7', '2001:db8::7'],
  ])('%s %s -> %s', (family, text, out) => {
    expect(canonicalAddress(family, text, 'mask')).toBe(out);
  });

  it.each<[Family, string]>([
    ['ipv4', '2001:db8::1'],
    ['ipv6', '192.0.2.1'],
    ['ipv4', 'example.com'],
  ])('%s refuses %s, naming the field', (family, text) => {
    const e = invalidArgument(() => canonicalAddress(family, text, 'matches[0].mask'));
    expect(e.field).toBe('matches[0].mask');
    expect(e.message).toContain(family === 'ipv4' ? 'not an IPv4 address' : 'not an IPv6 address');
  });
});

describe('canonicalCidr', () => {
  it.each<[Family, string, string]>([
    ['ipv4', '192.0.2.7', '192.0.2.7/32'],
    ['ipv4', '192.0.2.7/32', '192.0.2.7/32'],
    ['ipv4', '192.0.2.7/24', '192.0.2.0/24'],
    ['ipv4', '198.51.100.255/25', '198.51.100.128/25'],
    ['ipv4', '192.0.2.7/0', '0.0.0.0/0'],
    ['ipv4', '192.0.2.7/255.255.255.0', '192.0.2.0/24'],
    ['ipv4', '192.0.2.7/255.255.255.255', '192.0.2.7/32'],
    ['ipv4', '192.0.2.7/0.0.0.0', '0.0.0.0/0'],
    ['ipv4', '192.0.2.7/255.255.254.0', '192.0.2.0/23'],
    ['ipv4', '192.0.2.7/31', '192.0.2.6/31'],
    ['ipv6', '2001:db8::1', '2001:db8::1/128'],
    ['ipv6', '2001:DB8::1/64', '2001:db8::/64'],
    ['ipv6', '2001:db8:ffff:ffff::1/33', '2001:db8:8000::/33'],
    ['ipv6', '::/0', '::/0'],
    ['ipv6', '2001:db8::1/ffff:ffff::', '2001:db8::/32'],
    ['ipv6', '::ffff:192.0.2.1', '::ffff:192.0.2.1/128'],
    ['ipv6', '::ffff:192.0.2.1/120', '::ffff:192.0.2.0/120'],
  ])('%s %s -> %s', (family, text, out) => {
    expect(canonicalCidr(family, text, 'source')).toBe(out);
  });

  it.each<[Family, string, string]>([
    ['ipv4', 'example.com', 'host names are not accepted'],
    ['ipv4', 'localhost/24', 'host names are not accepted'],
    ['ipv4', '192.0.2.1/33', 'prefix length'],
    ['ipv4', '192.0.2.1/-1', 'prefix length'],
    ['ipv4', '192.0.2.1/', 'prefix length'],
    ['ipv4', '192.0.2.1/24/8', 'prefix length'],
    ['ipv4', '192.0.2.1/255.0.255.0', 'prefix length'],
    ['ipv4', '192.0.2.1/99999999999999999999', 'prefix length'],
    ['ipv4', '/24', 'not an IPv4 address'],
    ['ipv4', '192.0.02.1', 'not an IPv4 address'],
    ['ipv4', '2001:db8::/32', 'not an IPv4 address'],
    ['ipv6', '2001:db8::/129', 'prefix length'],
    ['ipv6', '2001:db8::/ffff:0:ffff::', 'prefix length'],
    ['ipv6', '192.0.2.0/24', 'not an IPv6 address'],
    ['ipv6', 'fe80::1%lo/64', 'not an IPv6 address'],
    ['ipv4', '192.0.2.1\n-A INPUT -j DROP', 'not an IPv4 address'],
    ['ipv4', '192.0.2.1\u0000', 'not an IPv4 address'],
    ['ipv4', '١٩٢.0.2.1', 'not an IPv4 address'],
  ])('%s refuses %j', (family, text, message) => {
    const e = invalidArgument(() => canonicalCidr(family, text, 'rule.source'));
    expect(e.field).toBe('rule.source');
    expect(e.message).toContain(message);
    expect(e.message).not.toMatch(/[\n\u0000]/);
  });

  it('keeps error messages short for a 10 kB input', () => {
    const e = invalidArgument(() => canonicalCidr('ipv4', 'a'.repeat(10_240), 'source'));
    expect(e.message.length).toBeLessThan(200);
  });
});

describe('preview', () => {
  it('escapes non-printable characters and shortens', () => {
    expect(preview('a\nb\u0000ü')).toBe('a\\u000ab\\u0000\\u00fc');
    expect(preview('x'.repeat(100))).toBe(`${'x'.repeat(64)}...`);
  });
});
