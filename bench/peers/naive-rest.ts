/**
 * Peer for the benchmarks: a naive iptables REST wrapper, the shape of the open-source ones
 * (one `iptables` process per request, no queue, no model, reads from the kernel every time).
 * Not part of Portcullis. `node --import tsx bench/peers/naive-rest.ts NETNS PORT`: listens on
 * 127.0.0.1:PORT and runs iptables inside network namespace NETNS.
 *
 *   POST   /rules/:chain  {"spec": "-s 192.0.2.1/32 -j DROP"}  -> iptables -A chain ...
 *   DELETE /rules/:chain  {"spec": "..."}                      -> iptables -D chain ...
 *   GET    /rules/:chain                                       -> iptables -S chain, as JSON lines
 */
import { execFile } from 'node:child_process';
import express from 'express';

const [netns = '', port = '0'] = process.argv.slice(2);
const iptables = (args: string[]) =>
  new Promise<{ ok: boolean; out: string }>((resolve) =>
    execFile('ip', ['netns', 'exec', netns, 'iptables', ...args], { maxBuffer: 1 << 28 }, (err, out, errs) =>
      resolve({ ok: !err, out: err ? errs : out }),
    ),
  );
const words = (spec: unknown) =>
  String(spec ?? '')
    .split(' ')
    .filter(Boolean);

const app = express();
app.use(express.json());
app.post('/rules/:chain', async (req, res) => {
  const r = await iptables(['-A', req.params.chain, ...words(req.body?.spec)]);
  res.status(r.ok ? 201 : 500).json(r.ok ? { ok: true } : { error: r.out });
});
app.delete('/rules/:chain', async (req, res) => {
  const r = await iptables(['-D', req.params.chain, ...words(req.body?.spec)]);
  res.status(r.ok ? 200 : 500).json(r.ok ? { ok: true } : { error: r.out });
});
app.get('/rules/:chain', async (req, res) => {
  const r = await iptables(['-S', req.params.chain]);
  res.status(r.ok ? 200 : 500).json(r.ok ? { rules: r.out.split('\n').filter(Boolean) } : { error: r.out });
});
const server = app.listen(Number(port), '127.0.0.1', () => {
  process.stdout.write(`listening ${(server.address() as { port: number }).port}\n`);
});
process.on('SIGTERM', () => server.close(() => process.exit(0)));
