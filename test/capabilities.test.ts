/** The privilege check reads CAP_NET_ADMIN from CapEff, not the uid. */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { CAP_NET_ADMIN, effectiveCapabilities, hasCapability } from '../src/capabilities.js';

const status = (capEff: string) =>
  `Name:\tnode\nUid:\t65534\t65534\t65534\t65534\nCapInh:\t0000000000000000\nCapEff:\t${capEff}\n`;

describe('hasCapability', () => {
  it('reads bit 12 of CapEff', () => {
    expect(effectiveCapabilities(status('0000000000001004'))).toBe(0x1004n);
    expect(hasCapability(CAP_NET_ADMIN, status('0000000000001000'))).toBe(true);
    expect(hasCapability(CAP_NET_ADMIN, status('000001fffeffffff'))).toBe(true);
    expect(hasCapability(CAP_NET_ADMIN, status('000001ffffffefff'))).toBe(false);
    expect(hasCapability(CAP_NET_ADMIN, status('0000000000000000'))).toBe(false);
  });

  it("agrees with this process's own /proc/self/status", () => {
    const own = effectiveCapabilities(readFileSync('/proc/self/status', 'utf8'));
    expect(own).toBeDefined();
    expect(hasCapability(CAP_NET_ADMIN)).toBe(((own as bigint) & (1n << 12n)) !== 0n);
  });
});
