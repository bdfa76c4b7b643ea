import { capturedLogs, leakedSecrets, seenSecrets } from './support/log-capture.js';
import { startSample, type SampleHarness } from './support/sample-harness.js';
import { refreshCookie } from './support/test-app.js';

// Every e2e file ends with the leak check (test/support/leak-check.ts). This file shows that the
// check sees what it must: logs at every level, the secrets of a real flow, and a planted leak.
describe('the secrets-in-logs check', () => {
  let sample: SampleHarness;
  beforeAll(async () => {
    sample = await startSample({ backend: 'sqlite' });
  });
  afterAll(async () => {
    await sample?.close();
  });

  it('captures the app at debug level and records the flow secrets, none of which were logged', async () => {
    const email = 'leak-check@example.com';
    await sample.http().post('/auth/request-otp').send({ email }).expect(200);
    const code = sample.lastCode(email);
    const signedIn = await sample.http().post('/auth/verify-otp').send({ email, code }).expect(200);
    const access = (signedIn.body as { access_token: string }).access_token;
    const refresh = refreshCookie(signedIn)!;
    const setup = await sample.http().post('/auth/totp/setup').set('authorization', `Bearer ${access}`).expect(200);

    expect(seenSecrets).toContain(code);
    expect(seenSecrets).toContain(access);
    expect(seenSecrets).toContain(refresh);
    expect(seenSecrets).toContain((setup.body as { secret: string }).secret);
    // Nest's route mapping and the sample's audit lines (log and debug levels) were captured.
    expect(capturedLogs.some((line) => line.includes('/auth/request-otp'))).toBe(true);
    expect(capturedLogs.some((line) => line.includes('code.sent'))).toBe(true);
    expect(leakedSecrets()).toEqual([]);
  });

  it('reports a planted code, refresh token or JWT, masked', () => {
    const code = [...seenSecrets].find((s) => /^\d{6}$/.test(s))!;
    const jwt = [...seenSecrets].find((s) => s.startsWith('eyJ'))!;
    const refresh = [...seenSecrets].find((s) => s !== code && s !== jwt && /^[\w-]{32,}$/.test(s))!;
    for (const secret of [code, jwt, refresh]) {
      capturedLogs.push(`debug something about ${secret} here`);
      const leaks = leakedSecrets().join(' ');
      capturedLogs.pop();
      expect(leaks).toContain(secret.slice(0, 4));
      expect(leaks).not.toContain(secret);
    }
    // A code inside a longer number (a timestamp, a port) or a hex id (a session UUID) is no leak.
    for (const harmless of [`debug took 9${code}1 ms`, `log {"sessionId":"3f2a9c1e-ab${code}cd-4e"}`]) {
      capturedLogs.push(harmless);
      expect(leakedSecrets()).toEqual([]);
      capturedLogs.pop();
    }
  });
});
