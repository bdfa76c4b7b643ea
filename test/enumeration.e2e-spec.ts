import { createTestApp, type TestApp } from './support/test-app.js';
import { enabledBackends } from './support/databases.js';

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

async function timed(t: TestApp, path: string, body: object): Promise<{ ms: number; status: number; body: unknown }> {
  const started = performance.now();
  const res = await t.http().post(path).send(body);
  return { ms: performance.now() - started, status: res.status, body: res.body };
}

// Delivery takes 40 ms here, as a mail server would; unknown addresses get no mail, so the
// module spends the average delivery time instead. Tolerance: 20 ms between medians, half
// the delivery time, so a missing pad (a 40 ms gap) fails while scheduler noise passes.
describe.each(enabledBackends())('no user enumeration on %s', (backend) => {
  let t: TestApp;
  beforeAll(async () => {
    t = await createTestApp({ backend, deliveryDelayMs: 40, options: { autoCreateUser: false } });
    for (let i = 0; i < 12; i++) await t.store.createOrGetUser(`member${i}@example.com`);
  });
  afterAll(async () => {
    await t.close();
  });

  it('request-otp: same status, body and median latency for known and unknown addresses', async () => {
    const known: number[] = [];
    const unknown: number[] = [];
    const bodies = new Set<string>();
    // Warm up the delivery estimate, then interleave the two kinds.
    await timed(t, '/auth/request-otp', { email: 'member11@example.com' });
    for (let i = 0; i < 10; i++) {
      const k = await timed(t, '/auth/request-otp', { email: `member${i}@example.com` });
      const u = await timed(t, '/auth/request-otp', { email: `stranger${i}@example.com` });
      expect(k.status).toBe(200);
      expect(u.status).toBe(200);
      bodies.add(JSON.stringify(k.body)).add(JSON.stringify(u.body));
      known.push(k.ms);
      unknown.push(u.ms);
    }
    expect(bodies.size).toBe(1);
    expect(Math.abs(median(known) - median(unknown))).toBeLessThan(20);
  });

  it('verify-otp: same status and body for a known address with a wrong code and an unknown one', async () => {
    const k = await timed(t, '/auth/verify-otp', { email: 'member0@example.com', code: '123456' });
    const u = await timed(t, '/auth/verify-otp', { email: 'stranger0@example.com', code: '123456' });
    const never = await timed(t, '/auth/verify-otp', { email: 'never-asked@example.com', code: '123456' });
    expect([k.status, u.status, never.status]).toEqual([401, 401, 401]);
    expect(u.body).toEqual(k.body);
    expect(never.body).toEqual(k.body);
  });
});
