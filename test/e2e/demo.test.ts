/**
 * `npm run demo` keeps working for a newcomer: it runs to the end on the real kernel, prints
 * the SSH-limiting result (three attempts connect, the fourth and fifth are dropped and
 * counted by LOG_AND_DROP) and leaves no namespace behind.
 */
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { type CommandResult, runCommand } from '../../src/sandbox/command.js';
import { describeKernel } from '../helpers/kernel.js';

const ROOT = join(import.meta.dirname, '..', '..');
const DEMO_TIMEOUT_MS = 90_000;

function runDemo(): Promise<CommandResult> {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('PORTCULLIS_')) env[k] = v;
  return runCommand([process.execPath, '--import', 'tsx', join(ROOT, 'src', 'demo.ts')], {
    cwd: ROOT,
    env,
    timeoutMs: DEMO_TIMEOUT_MS,
    // SIGINT first: the demo deletes its namespaces on it.
    killSignal: 'SIGINT',
  });
}

describeKernel('e2e: npm run demo', () => {
  it(
    'shows SSH brute-force limiting in throwaway namespaces and cleans up',
    async () => {
      const r = await runDemo();
      expect(r.stderr, r.stdout).toBe('');
      expect(r.code).toBe(0);
      for (const i of [1, 2, 3]) expect(r.stdout).toMatch(new RegExp(`attempt ${i}: connected in \\d+ ms`));
      for (const i of [4, 5])
        expect(r.stdout).toMatch(new RegExp(`attempt ${i}: no answer within \\d+ ms: dropped`));
      expect(r.stdout).toMatch(
        /^\s+2 packets\s+\d+ bytes\s+-A LOG_AND_DROP -j LOG --log-prefix "iptables deny: "/m,
      );
      expect(r.stdout).toMatch(/^\s+2 packets\s+\d+ bytes\s+-A LOG_AND_DROP -j DROP$/m);
      expect(r.stdout).toContain('Result: attempts 1-3 connected, attempts 4 and 5 were logged and dropped');

      const names = [...r.stdout.matchAll(/\b(demo-(?:server|client)-\d+-[0-9a-f]+)\b/g)].map((m) => m[1]);
      expect(names.length).toBeGreaterThan(0);
      const left = (await runCommand(['ip', 'netns', 'list'])).stdout;
      for (const n of new Set(names)) expect(left).not.toContain(n);
    },
    DEMO_TIMEOUT_MS + 30_000,
  );
});
