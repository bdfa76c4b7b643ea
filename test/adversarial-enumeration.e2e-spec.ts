import type { Response } from 'supertest';
import { DataSource } from 'typeorm';
import { User } from '../apps/sample/src/user.entity.js';
import { enabledBackends } from './support/databases.js';
import { startSample, type SampleHarness } from './support/sample-harness.js';

const DELIVERY_MS = 40;
// Unknown addresses get no mail; every request is answered at a fixed deadline instead (the
// whole distributions are compared in sms-delivery.e2e-spec.ts, with a variable-latency peer).
// Tolerance between medians: half the delivery time. A missing pad (a 40 ms gap) fails; the
// scheduler noise of a loaded 2-core machine (a few ms on medians of 15) passes.
const TOLERANCE_MS = DELIVERY_MS / 2;
const PAIRS = 15;

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

/** Headers a client could compare, without those that differ per request by nature. */
function comparable(res: Response): Record<string, string> {
  const skip = new Set(['date', 'retry-after', 'connection', 'keep-alive']);
  return Object.fromEntries(
    Object.entries(res.headers as Record<string, string>).filter(([name]) => !skip.has(name.toLowerCase())),
  );
}

interface Observed {
  status: number;
  body: unknown;
  headers: Record<string, string>;
  retryAfter: number | undefined;
  ms: number;
}

// Invite-only sample (OTP_AUTO_CREATE_USERS=false): known addresses get mail, unknown ones get
// nothing; a client must not tell them apart by status, body, headers or median latency.
describe.each(enabledBackends())('no user enumeration through the sample app on %s', (backend) => {
  let sample: SampleHarness;
  const known = (i: number) => `member${i}@example.com`;
  const unknown = (i: number) => `stranger${i}@example.com`;

  beforeAll(async () => {
    sample = await startSample({
      backend,
      deliveryDelayMs: DELIVERY_MS,
      env: {
        OTP_AUTO_CREATE_USERS: 'false',
        RATE_LIMITS_ENABLED: 'false',
        OTP_RESEND_COOLDOWN: '60',
        // Every request is answered at this fixed time (default 1 s); above the 40 ms delivery.
        OTP_DELIVERY_DEADLINE_MS: '150',
      },
    });
    const users = sample.app.get(DataSource).getRepository(User);
    for (let i = 0; i < PAIRS + 2; i++) await users.save(users.create({ email: known(i) }));
  });
  afterAll(async () => {
    await sample?.close();
  });

  async function observe(path: string, body: object): Promise<Observed> {
    const started = performance.now();
    const res = await sample.http().post(path).send(body);
    const retryAfter = res.headers['retry-after'] as string | undefined;
    return {
      status: res.status,
      body: res.body as unknown,
      headers: comparable(res),
      retryAfter: retryAfter === undefined ? undefined : Number(retryAfter),
      ms: performance.now() - started,
    };
  }

  function expectAlike(a: Observed, b: Observed): void {
    expect(b.status).toBe(a.status);
    expect(b.body).toEqual(a.body);
    expect(b.headers).toEqual(a.headers);
    if (a.retryAfter !== undefined || b.retryAfter !== undefined) {
      expect(Math.abs(a.retryAfter! - b.retryAfter!)).toBeLessThanOrEqual(1);
    }
  }

  it('request-otp, then the cooldown: alike in status, body, headers and median latency', async () => {
    // A first request warms up the app (JIT, connection pool), so it does not skew the medians.
    await observe('/auth/request-otp', { email: known(PAIRS + 1) });
    const sent: number[] = [];
    const padded: number[] = [];
    for (let i = 0; i < PAIRS; i++) {
      const k = await observe('/auth/request-otp', { email: known(i) });
      const u = await observe('/auth/request-otp', { email: unknown(i) });
      expect(k.status).toBe(200);
      expectAlike(k, u);
      sent.push(k.ms);
      padded.push(u.ms);
    }
    expect(sample.deliveredTo(known(0))).toBe(1);
    expect(sample.deliveredTo(unknown(0))).toBe(0);
    expect(Math.abs(median(sent) - median(padded))).toBeLessThan(TOLERANCE_MS);

    // Asking again inside the cooldown: the same 429 for both.
    const k = await observe('/auth/request-otp', { email: known(0) });
    const u = await observe('/auth/request-otp', { email: unknown(0) });
    expect(k.status).toBe(429);
    expectAlike(k, u);
    // Each answer waits the 150 ms deadline: 2 × PAIRS of them, on a loaded machine.
  }, 30_000);

  it('verify-otp with a wrong code, up to and past the lockout: alike for known and unknown', async () => {
    // Codes were requested for member/stranger 1..: the unknown address holds a code row too.
    const wrong = { code: '000000' };
    const known1: number[] = [];
    const unknown1: number[] = [];
    for (let attempt = 0; attempt < 7; attempt++) {
      const k = await observe('/auth/verify-otp', { email: known(1), ...wrong });
      const u = await observe('/auth/verify-otp', { email: unknown(1), ...wrong });
      expect(k.status).toBe(401);
      expectAlike(k, u);
      known1.push(k.ms);
      unknown1.push(u.ms);
    }
    expect(Math.abs(median(known1) - median(unknown1))).toBeLessThan(TOLERANCE_MS);
    // The right code is refused after the lockout, like everything the stranger tries.
    const locked = await observe('/auth/verify-otp', { email: known(1), code: sample.lastCode(known(1)) });
    const never = await observe('/auth/verify-otp', { email: 'never-asked@example.com', code: '123456' });
    expectAlike(locked, never);
  });
});
