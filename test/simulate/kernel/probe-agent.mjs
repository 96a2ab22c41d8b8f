// A packet sender for the kernel agreement test, run inside a test network namespace with
// `ip netns exec NS node probe-agent.mjs MAX_LIFETIME_MS`, so its sockets belong to that
// namespace. It sends exactly the packets the test asks for, one per request:
//   { id, cmd: 'tcp', src, sport, dst, dport }               one SYN (connect, dropped after 300 ms)
//   { id, cmd: 'udp', src, sport, dst, dport, size, ttl }    one datagram
//   { id, cmd: 'ping', family, src, dst, size, ttl }         one ICMP echo request (iputils ping)
//   { id, cmd: 'echo', addr, port, size, ttl }               bind; answer the first datagram once
//   { id, cmd: 'send', src, sport, dst, dport, size }        bind, send one datagram, keep the socket 5 s
// and answers { id, ok, error? } on stdout once the packet is on its way. It exits when stdin
// ends or after MAX_LIFETIME_MS. Every socket and timer is bounded.
import { spawn } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { connect } from 'node:net';
import { createInterface } from 'node:readline';

const lifetime = Number(process.argv[2] ?? '600000');
setTimeout(() => process.exit(0), lifetime > 0 ? lifetime : 600_000).unref();

const reply = (msg) => process.stdout.write(`${JSON.stringify(msg)}\n`);
const children = new Set();
const udpType = (addr) => (addr.includes(':') ? 'udp6' : 'udp4');

function tcp(req) {
  let done = false;
  const finish = (error) => {
    if (done) return;
    done = true;
    reply({ id: req.id, ok: true, ...(error ? { error } : {}) });
  };
  const socket = connect({ host: req.dst, port: req.dport, localAddress: req.src, localPort: req.sport });
  socket.on('error', (e) => finish(e.code));
  socket.on('connect', () => finish());
  // The SYN leaves with connect(); answer soon, and give up before the first retransmission (1 s).
  setTimeout(() => finish(), 20);
  setTimeout(() => socket.destroy(), 300);
}

function udp(req) {
  const s = createSocket({ type: udpType(req.src) });
  s.on('error', (e) => {
    reply({ id: req.id, ok: false, error: e.message });
    s.close();
  });
  s.bind(req.sport, req.src, () => {
    s.setTTL(req.ttl);
    s.send(Buffer.alloc(req.size, 0x61), req.dport, req.dst, (err) => {
      reply({ id: req.id, ok: !err, ...(err ? { error: err.message } : {}) });
      s.close();
    });
  });
}

function ping(req) {
  const argv = [req.family === 'ipv6' ? '-6' : '-4', '-n', '-q', '-c', '1', '-W', '1'];
  argv.push('-I', req.src, '-s', String(req.size), '-t', String(req.ttl), req.dst);
  const child = spawn('ping', argv, { stdio: 'ignore' });
  children.add(child);
  child.on('error', (e) => reply({ id: req.id, ok: false, error: e.message }));
  child.on('spawn', () => reply({ id: req.id, ok: true }));
  child.on('exit', () => children.delete(child));
}

function echo(req) {
  const s = createSocket({ type: udpType(req.addr) });
  const stop = setTimeout(() => s.close(), 5000);
  s.on('error', (e) => reply({ id: req.id, ok: false, error: e.message }));
  s.on('message', (_msg, from) => {
    s.setTTL(req.ttl);
    s.send(Buffer.alloc(req.size, 0x62), from.port, from.address, () => {
      clearTimeout(stop);
      s.close();
    });
  });
  s.bind(req.port, req.addr, () => reply({ id: req.id, ok: true }));
}

function send(req) {
  const s = createSocket({ type: udpType(req.src) });
  setTimeout(() => s.close(), 5000);
  s.on('error', (e) => reply({ id: req.id, ok: false, error: e.message }));
  s.on('message', () => {});
  s.bind(req.sport, req.src, () => {
    s.send(Buffer.alloc(req.size, 0x63), req.dport, req.dst, (err) =>
      reply({ id: req.id, ok: !err, ...(err ? { error: err.message } : {}) }),
    );
  });
}

const handlers = { tcp, udp, ping, echo, send };
const lines = createInterface({ input: process.stdin });
lines.on('line', (line) => {
  let req;
  try {
    req = JSON.parse(line);
  } catch {
    reply({ id: null, ok: false, error: 'not JSON' });
    return;
  }
  const handler = handlers[req.cmd];
  if (!handler) reply({ id: req.id, ok: false, error: `unknown command ${String(req.cmd)}` });
  else handler(req);
});
lines.on('close', () => {
  for (const c of children) c.kill('SIGKILL');
  process.exit(0);
});
reply({ id: 0, ok: true, ready: true });
