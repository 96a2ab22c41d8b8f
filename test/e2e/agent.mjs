// A tiny network agent for the e2e harness, run inside a test network namespace with
// `ip netns exec NS node agent.mjs MAX_LIFETIME_MS`. Its sockets belong to that namespace, so
// it plays a host there: it listens (a TCP service that greets with a banner) and connects
// (a client that waits for the greeting, so data flowed both ways).
//
// Protocol: one JSON request per line on stdin, one JSON reply per line on stdout, matched
// by `id`:
//   { id, cmd: 'listen', port }                      -> { id, ok: true, port }
//   { id, cmd: 'connect', host, port, timeoutMs }    -> { id, ok: true, connected, ms, error? }
// It exits when stdin ends (its parent went away) or after MAX_LIFETIME_MS, whichever is first.
import { connect, createServer } from 'node:net';
import { createInterface } from 'node:readline';

const maxLifetimeMs = Number(process.argv[2] ?? '600000');
setTimeout(() => process.exit(0), maxLifetimeMs > 0 ? maxLifetimeMs : 600_000);

const servers = [];
const reply = (msg) => process.stdout.write(`${JSON.stringify(msg)}\n`);

function listen(id, port) {
  const server = createServer((socket) => {
    socket.on('error', () => {});
    socket.setTimeout(5000, () => socket.destroy());
    socket.end(`hello from port ${port}\n`);
  });
  server.on('error', (err) => reply({ id, ok: false, error: err.message }));
  // '::' without ipv6Only listens on IPv4 and IPv6 alike.
  server.listen({ host: '::', port, ipv6Only: false }, () => {
    servers.push(server);
    reply({ id, ok: true, port: server.address().port });
  });
}

function tryConnect(id, host, port, timeoutMs) {
  const started = Date.now();
  let done = false;
  const socket = connect({ host, port });
  const finish = (connected, error) => {
    if (done) return;
    done = true;
    clearTimeout(timer);
    socket.destroy();
    reply({ id, ok: true, connected, ms: Date.now() - started, ...(error ? { error } : {}) });
  };
  const timer = setTimeout(() => finish(false, 'timeout'), timeoutMs);
  let banner = '';
  socket.setEncoding('utf8');
  socket.on('data', (d) => {
    banner += d;
    if (banner.includes('\n')) finish(true);
  });
  socket.on('error', (err) => finish(false, err.code ?? err.message));
  socket.on('close', () => finish(false, 'closed before the greeting'));
}

const lines = createInterface({ input: process.stdin });
lines.on('line', (line) => {
  let req;
  try {
    req = JSON.parse(line);
  } catch {
    reply({ id: null, ok: false, error: `not JSON: ${line}` });
    return;
  }
  if (req.cmd === 'listen') listen(req.id, req.port);
  else if (req.cmd === 'connect') tryConnect(req.id, req.host, req.port, req.timeoutMs);
  else reply({ id: req.id, ok: false, error: `unknown command ${String(req.cmd)}` });
});
lines.on('close', () => {
  for (const s of servers) s.close();
  process.exit(0);
});
reply({ id: 0, ok: true, ready: true });
