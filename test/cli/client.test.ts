/**
 * The client side without a service: where to connect, how an error answer becomes an exit
 * status and one line, the event-stream reader, and the packet `trace` builds.
 */
import { describe, expect, it } from 'vitest';
import { problemError, unreachable } from '../../src/cli/api.js';
import { parseCommandLine, type WordCommand } from '../../src/cli/argv.js';
import { resolveConnection } from '../../src/cli/connection.js';
import type { Io } from '../../src/cli/io.js';
import { packetFrom } from '../../src/cli/verbs/trace.js';
import { parseSse } from '../../src/cli/verbs/watch.js';

function io(env: Record<string, string>, files: Record<string, string> = {}): Io {
  const quiet = { write: () => {}, isTTY: false };
  return {
    stdout: quiet,
    stderr: quiet,
    readStdin: async () => '',
    readFile: async (p) => {
      const t = files[p];
      if (t === undefined) throw new Error(`ENOENT: ${p}`);
      return t;
    },
    env,
    signal: new AbortController().signal,
  };
}

describe('connection', () => {
  it('defaults to the daemon socket, PORTCULLIS_SOCKET, then --socket', async () => {
    expect(await resolveConnection({}, io({}))).toMatchObject({
      socketPath: '/run/portcullis/portcullis.sock',
    });
    expect(await resolveConnection({}, io({ PORTCULLIS_SOCKET: '/tmp/s' }))).toMatchObject({
      socketPath: '/tmp/s',
    });
    expect(
      await resolveConnection({ socket: '/x' }, io({ PORTCULLIS_URL: 'http://127.0.0.1:1' })),
    ).toMatchObject({
      socketPath: '/x',
    });
  });

  it('takes a URL with the token from the environment or a file', async () => {
    expect(
      await resolveConnection({}, io({ PORTCULLIS_URL: 'http://127.0.0.1:8080/', PORTCULLIS_TOKEN: 't' })),
    ).toEqual({
      baseUrl: 'http://127.0.0.1:8080',
      describe: 'http://127.0.0.1:8080',
      token: 't',
    });
    const fromFile = await resolveConnection(
      { url: 'https://[::1]:8443', tokenFile: '/tok', cacert: '/ca' },
      io({}, { '/tok': 's3cret\n', '/ca': 'PEM' }),
    );
    expect(fromFile).toMatchObject({ baseUrl: 'https://[::1]:8443', token: 's3cret', ca: 'PEM' });
  });

  it.each<[Parameters<typeof resolveConnection>[0], RegExp]>([
    [{ url: 'http://a', socket: '/s' }, /either --url or --socket/],
    [{ url: 'ftp://host' }, /must be http:\/\/ or https:\/\//],
    [{ url: 'http://u:p@host' }, /must not carry a user/],
    [{ url: 'not a url' }, /is not a URL/],
    [{ url: 'https://h', cert: '/c' }, /needs both --cert and --key/],
    [{ url: 'http://h', tokenFile: '/missing' }, /cannot read the token file \/missing/],
  ])('refuses %j', async (flags, message) => {
    await expect(resolveConnection(flags, io({}))).rejects.toThrow(message);
  });
});

describe('error answers', () => {
  it.each<[number, unknown, number, RegExp]>([
    [404, { code: 'not_found', detail: 'chain X does not exist' }, 1, /^chain X does not exist$/],
    [409, { code: 'already_exists', detail: 'chain X already exists' }, 1, /already exists/],
    [
      400,
      { code: 'invalid_argument', field: 'rule.spec', detail: 'unknown option --x' },
      2,
      /unknown option/,
    ],
    [
      400,
      { code: 'invalid_argument', field: 'position', detail: 'position 9 is past the end' },
      1,
      /past the end/,
    ],
    [
      401,
      { code: 'unauthenticated', detail: 'the token is not valid' },
      4,
      /not valid \(set PORTCULLIS_TOKEN/,
    ],
    [403, { code: 'permission_denied', detail: 'needs a write token' }, 4, /write scope/],
    [503, { code: 'unavailable', detail: 'starting' }, 4, /starting/],
    [
      409,
      { code: 'failed_precondition', reason: 'lockout', detail: 'would lock you out' },
      1,
      /--allow-lockout/,
    ],
    [502, 'Bad gateway\nfrom a proxy', 1, /^the service answered 502: Bad gateway from a proxy$/],
  ])('HTTP %i %j is exit %i', (status, body, code, message) => {
    const err = problemError(status, body);
    expect(err.exitCode).toBe(code);
    expect(err.message).toMatch(message);
    expect(err.message).not.toContain('\n');
  });

  it('names the socket it could not reach', () => {
    const err = unreachable(
      { baseUrl: 'http://localhost', socketPath: '/s', describe: 'unix:/s' },
      Object.assign(new Error('x'), { code: 'EACCES' }),
    );
    expect(err.exitCode).toBe(4);
    expect(err.message).toBe(
      'cannot reach the service at unix:/s: permission denied (the socket is for root only)',
    );
  });
});

describe('event stream', () => {
  it('reads events split anywhere, skipping comments', () => {
    const text =
      'retry: 2000\n: connected\n\nid: 3\nevent: service\ndata: {"revision":3}\n\nid: 4\nevent: ext';
    const first = parseSse(text);
    expect(first.events).toEqual([{ event: 'service', data: '{"revision":3}' }]);
    const second = parseSse(`${first.rest}ernal\ndata: {"a":\ndata: 1}\n\n`);
    expect(second).toEqual({ events: [{ event: 'external', data: '{"a":\n1}' }], rest: '' });
  });
});

describe('trace packets', () => {
  function trace(argv: string[]): WordCommand {
    const cmd = parseCommandLine(['trace', ...argv]).command;
    if (cmd?.kind !== 'command') throw new Error('not trace');
    return cmd;
  }

  it('describes the packet with iptables options', () => {
    expect(
      packetFrom(
        trace(['-p', 'tcp', '-s', '198.51.100.7', '--dport', '22', '--syn', '--state', 'new']),
        'ipv4',
      ),
    ).toEqual({
      family: 'ipv4',
      hook: 'INPUT',
      protocol: 'tcp',
      source: '198.51.100.7',
      destinationPort: 22,
      tcpFlags: ['SYN'],
      ctState: 'NEW',
    });
    expect(
      packetFrom(trace(['--hook', 'forward', '-p', '58', '--icmp-type', 'echo-request', '-f']), 'ipv6'),
    ).toEqual({
      family: 'ipv6',
      hook: 'FORWARD',
      protocol: 58,
      icmpType: 'echo-request',
      fragment: true,
    });
  });

  it.each([
    [['--dport', '70000'], /--dport must be a number from 0 to 65535/],
    [['--hook', 'NOWHERE'], /--hook must be one of/],
    [['--state', 'HALF'], /--state must be one of/],
    [['stray'], /describe the packet with options/],
  ])('refuses %j', (argv, message) => {
    expect(() => packetFrom(trace(argv), 'ipv4')).toThrow(message);
  });
});
