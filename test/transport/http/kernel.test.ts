/**
 * The SSH brute-force seed through the REST app on a real kernel firewall, in the test's own
 * network namespace: iptables-save afterwards is the seed fixture, line for line.
 */
import { readFileSync } from 'node:fs';
import request from 'supertest';
import { expect, it } from 'vitest';
import { createApp } from '../../../src/transport/http/app.js';
import { describeKernel } from '../../helpers/kernel.js';
import { useKernelService } from '../../helpers/kernel-service.js';
import { authenticator, checked, WRITE } from './helpers.js';

const C = '/v1/tables/filter/chains';

describeKernel('REST on the kernel: the SSH brute-force seed', () => {
  const k = useKernelService({ prefix: 'prest' });

  it('pasted as spec strings, gives exactly the seed ruleset', async () => {
    const app = createApp({ service: k().service, auth: authenticator(), requireAuth: true });
    const post = async (path: string, body: object) => {
      const r = checked(await request(app).post(path).set('Authorization', WRITE).send(body));
      expect(r.status, JSON.stringify(r.body)).toBe(201);
    };
    await post(C, { name: 'LOG_AND_DROP' });
    await post(`${C}/INPUT/rules`, {
      spec: '-p tcp -m tcp --dport 22 -m state --state NEW -m recent --set --name DEFAULT --rsource',
    });
    await post(`${C}/INPUT/rules`, {
      spec: '-p tcp -m tcp --dport 22 -m state --state NEW -m recent --update --seconds 60 --hitcount 4 --name DEFAULT --rsource -j LOG_AND_DROP',
    });
    await post(`${C}/INPUT/rules`, { spec: '-p tcp -m tcp --dport 22 -j ACCEPT' });
    await post(`${C}/LOG_AND_DROP/rules`, { spec: '-j LOG --log-prefix "iptables deny: " --log-level 7' });
    await post(`${C}/LOG_AND_DROP/rules`, { spec: '-j DROP' });

    const fixture = readFileSync(
      new URL('../../fixtures/seeds/ssh-bruteforce.ipv4.save', import.meta.url),
      'utf8',
    );
    const strip = (t: string) =>
      t
        .split('\n')
        .filter((l) => l !== '' && !l.startsWith('#'))
        .join('\n');
    expect(strip(await k().save('ipv4', { table: 'filter' }))).toBe(strip(fixture));
    const text = await request(app)
      .get('/v1/ruleset')
      .set('Authorization', WRITE)
      .set('Accept', 'text/plain');
    expect(strip(text.text)).toBe(strip(fixture));
  });
});
