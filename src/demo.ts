/**
 * `npm run demo`: the SSH brute-force article (../shared/seeds/secure-server-with-iptables)
 * tried safely, end to end, in throwaway network namespaces, never touching this machine's
 * own firewall:
 *
 *   1. creates two namespaces, `server` and `client`, joined by a veth pair
 *      (192.0.2.1 <-> 192.0.2.2), with a TCP service on port 22 in `server`;
 *   2. starts Portcullis as a user would (`src/main.ts --netns <server>`, REST on a free
 *      loopback port, a fresh bearer token);
 *   3. sends the article's rules through the REST API as the pasted iptables lines, printing
 *      each request as the equivalent curl command;
 *   4. makes five SSH connection attempts from `client` and prints what happened (three
 *      connect, the fourth and fifth are dropped), then the LOG_AND_DROP counters and the
 *      ruleset as iptables-save text;
 *   5. stops everything and deletes the namespaces (also on Ctrl-C or an error).
 *
 * `npm run demo -- --hold` keeps it running after step 4 (until Ctrl-C) and prints the URL and
 * token, to try more requests by hand. Needs root (network namespaces) and iptables.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { listeningAddress } from './observe/log-lines.js';
import { runCommand } from './sandbox/command.js';
import { Namespaces } from './sandbox/topology.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const MAIN = join(ROOT, 'src', 'main.ts');
const SERVER_ADDR = '192.0.2.1';
const CLIENT_ADDR = '192.0.2.2';
/** Below TCP's first SYN retransmission (1 s): one attempt is one SYN. */
const ATTEMPT_MS = 800;
const ATTEMPTS = 5;
/** Helper processes inside the namespaces end on their own after this long, whatever happens. */
const HELPER_LIFETIME_S = 600;

const out = (line = ''): void => {
  process.stdout.write(`${line}\n`);
};

const SERVICE_SCRIPT = `
const net = require('node:net');
setTimeout(() => process.exit(0), ${HELPER_LIFETIME_S * 1000});
net.createServer((s) => { s.on('error', () => {}); s.end('SSH-2.0-demo\\r\\n'); })
  .listen(22, () => console.log('listening'));
`;

const CONNECT_SCRIPT = `
const net = require('node:net');
const [host, port, ms] = process.argv.slice(1);
const started = Date.now();
const s = net.connect({ host, port: Number(port) });
const done = (text) => { console.log(text); s.destroy(); process.exit(0); };
setTimeout(() => done('timeout ' + (Date.now() - started)), Number(ms));
s.setEncoding('utf8');
s.on('data', (d) => done('connected ' + (Date.now() - started) + ' ' + d.trim()));
s.on('error', (e) => done('error ' + e.code));
`;

interface Sandbox {
  readonly server: string;
  readonly client: string;
  readonly namespaces: Namespaces;
  readonly children: ChildProcess[];
  /** The demo service's state directory (its change journal), deleted with the sandbox. */
  readonly stateDir: string;
}

async function createSandbox(sandbox: Sandbox): Promise<void> {
  for (const ns of [sandbox.server, sandbox.client]) await sandbox.namespaces.add(ns);
  await sandbox.namespaces.link(
    { netns: sandbox.server, dev: 'eth0', addresses: [`${SERVER_ADDR}/30`] },
    { netns: sandbox.client, dev: 'eth0', addresses: [`${CLIENT_ADDR}/30`] },
  );
}

/** Stops the processes it started (SIGTERM, SIGKILL after 10 s), then deletes the namespaces. */
async function destroySandbox(sandbox: Sandbox): Promise<void> {
  await Promise.all(
    sandbox.children.map(async (c) => {
      if (c.exitCode !== null || c.signalCode !== null) return;
      const exited = new Promise<void>((res) => c.once('exit', () => res()));
      c.kill('SIGTERM');
      const timer = setTimeout(() => c.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(timer);
    }),
  );
  // Best effort, as on Ctrl-C: what cannot be deleted is left for the operator to see.
  await sandbox.namespaces.destroy().catch(() => {});
  rmSync(sandbox.stateDir, { recursive: true, force: true });
}

/** Starts a process, resolves with it once `ready` matches its output (stdout or stderr). */
function startUntil(
  argv: readonly string[],
  ready: RegExp,
  env: NodeJS.ProcessEnv,
  children: ChildProcess[],
): Promise<{ child: ChildProcess; output: string }> {
  const [cmd, ...args] = argv as [string, ...string[]];
  const child = spawn(cmd, args, { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  return new Promise((resolve, reject) => {
    let output = '';
    const timer = setTimeout(
      () => reject(new Error(`${argv.join(' ')} did not start within 60 s:\n${output}`)),
      60_000,
    );
    const onData = (d: Buffer) => {
      output += d.toString('utf8');
      if (ready.test(output)) {
        clearTimeout(timer);
        resolve({ child, output });
      }
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${argv.join(' ')} exited with ${String(code)}:\n${output.trim()}`));
    });
  });
}

async function attempt(client: string): Promise<string> {
  const r = await runCommand([
    'ip',
    'netns',
    'exec',
    client,
    process.execPath,
    '-e',
    CONNECT_SCRIPT,
    SERVER_ADDR,
    '22',
    String(ATTEMPT_MS),
  ]);
  return r.stdout.trim() || `error ${r.stderr.trim()}`;
}

function shellQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

async function main(argv: readonly string[]): Promise<number> {
  const hold = argv.includes('--hold');
  if (process.getuid?.() !== 0) {
    process.stderr.write(
      'The demo creates network namespaces and manages a firewall inside them: run it as root (sudo npm run demo).\n',
    );
    return 1;
  }
  const id = `${process.pid}-${randomBytes(2).toString('hex')}`;
  const sandbox: Sandbox = {
    server: `demo-server-${id}`,
    client: `demo-client-${id}`,
    namespaces: new Namespaces(),
    children: [],
    stateDir: mkdtempSync(join(tmpdir(), 'portcullis-demo-')),
  };
  let cleaned: Promise<void> | undefined;
  const cleanup = (): Promise<void> => {
    cleaned ??= destroySandbox(sandbox).then(() =>
      out(`Stopped Portcullis and deleted the namespaces ${sandbox.server} and ${sandbox.client}.`),
    );
    return cleaned;
  };
  const onSignal = () => {
    void cleanup().finally(() => process.exit(130));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);

  try {
    out('Portcullis demo: SSH brute-force limiting (secure-server-with-iptables), in throwaway namespaces.');
    out('Your own firewall is not touched: every rule goes into the namespace of the sandbox server.');
    out();
    await createSandbox(sandbox);
    out(`server  ${sandbox.server}  ${SERVER_ADDR}  (a TCP service on port 22 stands in for sshd)`);
    out(`client  ${sandbox.client}  ${CLIENT_ADDR}`);
    await startUntil(
      ['ip', 'netns', 'exec', sandbox.server, process.execPath, '-e', SERVICE_SCRIPT],
      /listening/,
      process.env,
      sandbox.children,
    );

    const token = randomBytes(24).toString('base64url');
    const sha256 = createHash('sha256').update(token).digest('hex');
    const env: NodeJS.ProcessEnv = {};
    for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('PORTCULLIS_')) env[k] = v;
    env.PORTCULLIS_TOKENS = `demo:write:${sha256}`;
    const args = [
      '--netns',
      sandbox.server,
      '--state-dir',
      sandbox.stateDir,
      '--families',
      'ipv4',
      '--rest-port',
      '0',
      '--grpc-port',
      '0',
      '--socket',
      '',
    ];
    out();
    out(`Starting Portcullis: npm start -- ${args.map((a) => (a === '' ? "''" : a)).join(' ')}`);
    const started = await startUntil(
      [process.execPath, '--import', 'tsx', MAIN, ...args],
      /"msg":"ready"/,
      env,
      sandbox.children,
    );
    const address = listeningAddress(started.output, 'rest');
    if (!address) throw new Error(`cannot find the REST address in the log:\n${started.output}`);
    const base = `http://${address}`;
    out(`REST API at ${base}, token in $TOKEN (configured by its SHA-256 in PORTCULLIS_TOKENS).`);
    out();

    const call = async (method: string, path: string, body?: unknown, accept = 'application/json') => {
      const curl = [
        'curl',
        method === 'GET' ? '' : `-X ${method}`,
        '-H "Authorization: Bearer $TOKEN"',
        accept === 'application/json' ? '' : `-H 'Accept: ${accept}'`,
        body === undefined
          ? ''
          : `-H 'Content-Type: application/json' -d ${shellQuote(JSON.stringify(body))}`,
        path.includes('?') ? shellQuote(`${base}${path}`) : `${base}${path}`,
      ].filter((s) => s !== '');
      const res = await fetch(`${base}${path}`, {
        method,
        headers: {
          Authorization: `Bearer ${token}`,
          Accept: accept,
          ...(body === undefined ? {} : { 'Content-Type': 'application/json' }),
        },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
        signal: AbortSignal.timeout(30_000),
      });
      const text = await res.text();
      if (!res.ok) throw new Error(`${curl.join(' ')} -> ${res.status}: ${text}`);
      return {
        curl: curl.join(' '),
        text,
        json: /json/.test(res.headers.get('content-type') ?? '') ? JSON.parse(text) : undefined,
      };
    };

    out("1. The article's rules, sent as the lines an operator pastes:");
    const created = await call('POST', '/v1/tables/filter/chains', { name: 'LOG_AND_DROP' });
    out(`   $ ${created.curl}`);
    const rules: [string, string][] = [
      ['INPUT', '-p tcp -m tcp --dport 22 -m state --state NEW -m recent --set --name DEFAULT --rsource'],
      [
        'INPUT',
        '-p tcp -m tcp --dport 22 -m state --state NEW -m recent --update --seconds 60 --hitcount 4 --name DEFAULT --rsource -j LOG_AND_DROP',
      ],
      ['INPUT', '-p tcp -m tcp --dport 22 -j ACCEPT'],
      ['LOG_AND_DROP', '-j LOG --log-prefix "iptables deny: " --log-level 7'],
      ['LOG_AND_DROP', '-j DROP'],
    ];
    for (const [chain, spec] of rules) {
      const r = await call('POST', `/v1/tables/filter/chains/${chain}/rules`, { spec });
      out(`   $ ${r.curl}`);
      out(`     -> ${chain} #${String(r.json.rule.position)} id ${String(r.json.rule.id)}`);
    }
    out();

    out(`2. ${ATTEMPTS} SSH connection attempts from the client (${CLIENT_ADDR} -> ${SERVER_ADDR}:22):`);
    const outcomes: boolean[] = [];
    for (let i = 1; i <= ATTEMPTS; i++) {
      const result = await attempt(sandbox.client);
      const connected = result.startsWith('connected');
      outcomes.push(connected);
      const [, ms, ...banner] = result.split(' ');
      out(
        connected
          ? `   attempt ${i}: connected in ${ms} ms, greeted with "${banner.join(' ')}"`
          : `   attempt ${i}: no answer within ${ATTEMPT_MS} ms: dropped`,
      );
    }
    out();

    out('3. The LOG_AND_DROP counters, read through the API (LOG writes nothing from a child namespace):');
    const chain = await call('GET', '/v1/tables/filter/chains/LOG_AND_DROP?counters=true');
    out(`   $ ${chain.curl}`);
    for (const r of chain.json.chain.rules as {
      text: string;
      counters: { packets: string; bytes: string };
    }[]) {
      out(
        `   ${r.counters.packets.padStart(3)} packets ${r.counters.bytes.padStart(5)} bytes   -A LOG_AND_DROP ${r.text}`,
      );
    }
    out();
    out('4. The ruleset as iptables-save text:');
    const text = await call('GET', '/v1/ruleset', undefined, 'text/plain');
    out(`   $ ${text.curl}`);
    for (const line of text.text.trimEnd().split('\n')) out(`   ${line}`);
    out();

    const expected = [true, true, true, false, false];
    const ok = outcomes.every((o, i) => o === expected[i]);
    out(
      ok
        ? 'Result: attempts 1-3 connected, attempts 4 and 5 were logged and dropped, as the article promises.'
        : `Result: UNEXPECTED outcomes ${JSON.stringify(outcomes)} (expected ${JSON.stringify(expected)}).`,
    );
    if (hold) {
      out();
      out('Holding the sandbox open; press Ctrl-C to delete it. Try for example:');
      out(`   export TOKEN=${token}`);
      out(`   curl -H "Authorization: Bearer $TOKEN" ${base}/v1/tables/filter/chains/INPUT/rules`);
      out(`   sudo ip netns exec ${sandbox.server} iptables-save`);
      await new Promise<never>(() => {});
    }
    return ok ? 0 : 1;
  } catch (err) {
    process.stderr.write(`demo failed: ${err instanceof Error ? err.message : String(err)}\n`);
    return 1;
  } finally {
    await cleanup();
  }
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`demo failed: ${String(err)}\n`);
    process.exit(1);
  },
);
