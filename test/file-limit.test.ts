/** Raising the open-file limit with prlimit: what is asked for, in which order, and what is reported. */
import { describe, expect, it } from 'vitest';
import { type FileLimit, parseFileLimit, raiseFileLimit } from '../src/file-limit.js';

const LIMITS = `Limit                     Soft Limit           Hard Limit           Units
Max processes             95436                95436                processes
Max open files            1024                 524288               files
Max locked memory         8388608              8388608              bytes
`;

function fake(start: FileLimit, allowHard: boolean) {
  let current = start;
  const calls: string[][] = [];
  return {
    calls,
    deps: {
      pid: 42,
      read: () => current,
      run: async (args: readonly string[]) => {
        calls.push([...args]);
        const m = /^--nofile=(\d+):(\d*|unlimited)$/.exec(args[2] as string);
        if (!m) throw new Error('bad argv');
        const soft = Number(m[1]);
        const hard = m[2] === '' ? current.hard : Number(m[2]);
        if (hard > current.hard && !allowHard) throw new Error('Operation not permitted');
        if (soft > hard) throw new Error('Invalid argument');
        current = { soft, hard };
      },
    },
  };
}

describe('the open-file limit', () => {
  it('parses /proc/PID/limits', () => {
    expect(parseFileLimit(LIMITS)).toEqual({ soft: 1024, hard: 524288 });
    expect(parseFileLimit('Max processes 1 1 processes\n')).toBeUndefined();
    expect(
      parseFileLimit('Max open files            unlimited            unlimited            files\n'),
    ).toEqual({
      soft: Number.POSITIVE_INFINITY,
      hard: Number.POSITIVE_INFINITY,
    });
  });

  it('asks for nothing when the limit is enough', async () => {
    const f = fake({ soft: 4096, hard: 4096 }, false);
    expect(await raiseFileLimit(2128, f.deps)).toEqual({
      before: { soft: 4096, hard: 4096 },
      after: { soft: 4096, hard: 4096 },
    });
    expect(f.calls).toEqual([]);
  });

  it('raises soft and hard with CAP_SYS_RESOURCE', async () => {
    const f = fake({ soft: 256, hard: 256 }, true);
    const r = await raiseFileLimit(2128, f.deps);
    expect(f.calls).toEqual([['--pid', '42', '--nofile=2128:2128']]);
    expect(r.after).toEqual({ soft: 2128, hard: 2128 });
    expect(r.error).toBeUndefined();
  });

  it('without it, raises the soft limit as far as the hard one allows, and says why not further', async () => {
    const f = fake({ soft: 256, hard: 1024 }, false);
    const r = await raiseFileLimit(2128, f.deps);
    expect(f.calls).toEqual([
      ['--pid', '42', '--nofile=2128:2128'],
      ['--pid', '42', '--nofile=1024:'],
    ]);
    expect(r.after).toEqual({ soft: 1024, hard: 1024 });
    const stuck = fake({ soft: 256, hard: 256 }, false);
    const s = await raiseFileLimit(2128, stuck.deps);
    expect(s.after).toEqual({ soft: 256, hard: 256 });
    expect(s.error).toBe('Operation not permitted');
  });
});
