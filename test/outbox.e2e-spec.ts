import { CodeOutbox, PermanentDeliveryError, type TimedOtpAuthEvent } from 'nestjs-otp-auth';
import { enabledBackends } from './support/databases.js';
import { createTestApp, type TestApp } from './support/test-app.js';

describe.each(enabledBackends())('background delivery (outbox) on %s', (backend) => {
  let t: TestApp | undefined;
  let events: TimedOtpAuthEvent[];
  beforeEach(() => {
    events = [];
  });
  afterEach(async () => {
    await t?.close();
    t = undefined;
  });
  const drain = () => t!.app.get(CodeOutbox).drain();
  const outbox = { mode: 'outbox' as const, retries: 2, retryDelayMs: 10 };

  it('answers at once while a slow mail server takes its time, the same for known and unknown addresses', async () => {
    t = await createTestApp({
      backend,
      deliveryDelayMs: 800,
      options: { delivery: outbox, autoCreateUser: false, onEvent: (e) => void events.push(e) },
    });
    await t.store.createOrGetUser('known@example.com');
    for (const email of ['known@example.com', 'unknown@example.com']) {
      const started = performance.now();
      const res = await t.http().post('/auth/request-otp').send({ email }).expect(200);
      expect(performance.now() - started).toBeLessThan(400);
      expect(res.body).toEqual({ message: expect.any(String), expires_in: 600 });
    }
    expect(t.sent).toHaveLength(0);
    await drain();
    expect(t.sent.map((s) => s.email)).toEqual(['known@example.com']);
    expect(events.find((e) => e.type === 'code.sent')).toMatchObject({ channel: 'outbox' });
    await t
      .http()
      .post('/auth/verify-otp')
      .send({ email: 'known@example.com', code: t.lastCode('known@example.com') })
      .expect(200);
  });

  it('retries transient failures, then withdraws the code and frees the cooldown', async () => {
    let attempts = 0;
    t = await createTestApp({
      backend,
      failDelivery: () => (attempts += 1) <= 100,
      options: { delivery: outbox, onEvent: (e) => void events.push(e) },
    });
    const email = 'flaky@example.com';
    await t.http().post('/auth/request-otp').send({ email }).expect(200);
    await drain();
    expect(attempts).toBe(3); // the first try and two retries
    expect(events.find((e) => e.type === 'code.delivery_failed')).toMatchObject({ email, permanent: false });
    expect(await t.store.findCode(email, 'login')).toBeNull(); // nothing usable left behind
    attempts = 100; // the mail server is back
    await t.http().post('/auth/request-otp').send({ email }).expect(200); // no cooldown: it was freed
    await drain();
    await t
      .http()
      .post('/auth/verify-otp')
      .send({ email, code: t.lastCode(email) })
      .expect(200);
  });

  it('gives every attempt at one message the same delivery id, and each new code a new one', async () => {
    const attempts: { email: string; deliveryId: string | undefined }[] = [];
    t = await createTestApp({
      backend,
      options: {
        delivery: outbox,
        sendOtp: async (email, _code, context) => {
          attempts.push({ email, deliveryId: context.deliveryId });
          if (attempts.length < 3) throw new Error('421 try again later'); // twice, then delivered
        },
      },
    });
    await t.http().post('/auth/request-otp').send({ email: 'retried@example.com' }).expect(200);
    await t.http().post('/auth/request-otp').send({ email: 'other@example.com' }).expect(200);
    await drain();
    const first = attempts.filter((a) => a.email === 'retried@example.com');
    expect(first.length).toBeGreaterThanOrEqual(2); // retried
    expect(first[0]!.deliveryId).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(new Set(first.map((a) => a.deliveryId)).size).toBe(1);
    const ids = new Set(attempts.map((a) => a.deliveryId));
    expect(ids.size).toBe(2); // two codes, two messages
  });

  it('does not retry a permanent failure', async () => {
    let attempts = 0;
    t = await createTestApp({
      backend,
      options: {
        delivery: outbox,
        onEvent: (e) => void events.push(e),
        sendOtp: async () => {
          attempts += 1;
          throw new PermanentDeliveryError('550 mailbox unavailable');
        },
      },
    });
    await t.http().post('/auth/request-otp').send({ email: 'gone@example.com' }).expect(200);
    await drain();
    expect(attempts).toBe(1);
    expect(events.find((e) => e.type === 'code.delivery_failed')).toMatchObject({ permanent: true });
  });

  it('answers 503 and keeps no code when the queue is full, for unknown addresses too', async () => {
    t = await createTestApp({
      backend,
      deliveryDelayMs: 300,
      options: { delivery: { ...outbox, maxQueue: 1 }, autoCreateUser: false },
    });
    await t.store.createOrGetUser('first@example.com');
    await t.store.createOrGetUser('second@example.com');
    await t.http().post('/auth/request-otp').send({ email: 'first@example.com' }).expect(200);
    await t.http().post('/auth/request-otp').send({ email: 'second@example.com' }).expect(503);
    // An unknown address would never be queued, but must not answer differently.
    await t.http().post('/auth/request-otp').send({ email: 'nobody@example.com' }).expect(503);
    expect(await t.store.findCode('second@example.com', 'login')).toBeNull();
    await drain();
  });
});
