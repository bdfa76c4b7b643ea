import { generateSync } from 'otplib';
import { DataSource } from 'typeorm';
import { enabledBackends } from './support/databases.js';
import { startSample, type SampleHarness } from './support/sample-harness.js';
import { refreshCookie } from './support/test-app.js';

const COOLDOWN_SECONDS = 1;
const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

// Black-box races against the sample app, as a botnet or a double-clicking user would run them.
// SQLite serialises writes, so the invariants hold trivially there; they mean most on PostgreSQL
// and MariaDB, where requests truly run in parallel on a pool of connections.
describe.each(enabledBackends())('races against the sample app on %s', (backend) => {
  let sample: SampleHarness;
  let db: DataSource;
  const count = async (sql: string, ...params: unknown[]): Promise<number> =>
    Number(((await db.query(sql, params)) as { n: number | string }[])[0]!.n);

  beforeAll(async () => {
    sample = await startSample({
      backend,
      env: { RATE_LIMITS_ENABLED: 'false', OTP_RESEND_COOLDOWN: String(COOLDOWN_SECONDS) },
    });
    db = sample.app.get(DataSource);
  });
  afterAll(async () => {
    await sample?.close();
  });

  async function requestCode(email: string): Promise<string> {
    await sample.http().post('/auth/request-otp').send({ email }).expect(200);
    return sample.lastCode(email);
  }

  /** Signs in with a code; the answer is tokens, or an MFA challenge for TOTP users. */
  async function signIn(email: string): Promise<Record<string, unknown> & { cookie?: string }> {
    const code = await requestCode(email);
    const res = await sample.http().post('/auth/verify-otp').send({ email, code }).expect(200);
    return { ...(res.body as Record<string, unknown>), cookie: refreshCookie(res) };
  }

  it('100 parallel wrong guesses: no more than 5 evaluated, then even the right code is refused', async () => {
    const email = 'guess-race@example.com';
    const right = await requestCode(email);
    const wrong = Array.from({ length: 100 }, (_, i) =>
      String((Number(right) + 1 + i * 7919) % 1_000_000).padStart(6, '0'),
    );
    const answers = await Promise.all(
      wrong.map((code) => sample.http().post('/auth/verify-otp').send({ email, code })),
    );
    expect(answers.map((a) => a.status)).toEqual(Array(100).fill(401));
    // The attempt counter is what the database evaluated: exactly the limit, not one more.
    expect(await count('SELECT MAX(attempts) AS n FROM otp_codes')).toBe(5);
    await sample.http().post('/auth/verify-otp').send({ email, code: right }).expect(401);
  });

  it('50 parallel submissions of the right code open exactly one session', async () => {
    const email = 'code-race@example.com';
    const code = await requestCode(email);
    const before = await count('SELECT COUNT(*) AS n FROM otp_sessions');
    const answers = await Promise.all(
      Array.from({ length: 50 }, () => sample.http().post('/auth/verify-otp').send({ email, code })),
    );
    expect(answers.filter((a) => a.status === 200)).toHaveLength(1);
    expect(answers.filter((a) => a.status === 401)).toHaveLength(49);
    expect(await count('SELECT COUNT(*) AS n FROM otp_sessions')).toBe(before + 1);
  });

  it('50 parallel refreshes of one token rotate it exactly once', async () => {
    const { cookie } = await signIn('refresh-race@example.com');
    const answers = await Promise.all(
      Array.from({ length: 50 }, () => sample.http().post('/auth/refresh').set('cookie', `otp_refresh=${cookie!}`)),
    );
    // Inside the reuse grace period every tab gets the same successor; outside it, one wins and
    // the reuse ends the session. Either way there is one successor, never a fork.
    const successors = new Set(answers.filter((a) => a.status === 200).map((a) => refreshCookie(a)));
    expect(successors.size).toBe(1);
    // The user's one session holds the original token and at most one successor.
    const placeholder = backend === 'postgres' ? '$1' : '?';
    const tokens = await count(
      `SELECT COUNT(*) AS n FROM otp_refresh_tokens t JOIN users u ON t.user_id = ${backend === 'postgres' ? 'CAST(u.id AS varchar)' : 'u.id'} WHERE u.email = ${placeholder}`,
      'refresh-race@example.com',
    );
    expect(tokens).toBe(successors.size + 1);
  });

  describe('with TOTP two-factor', () => {
    const email = 'totp-race@example.com';
    let secret: string;
    let backupCodes: string[];

    beforeAll(async () => {
      const { access_token } = await signIn(email);
      const auth = `Bearer ${String(access_token)}`;
      const setup = await sample.http().post('/auth/totp/setup').set('authorization', auth).expect(200);
      secret = (setup.body as { secret: string }).secret;
      const confirmed = await sample
        .http()
        .post('/auth/totp/confirm')
        .set('authorization', auth)
        .send({ code: generateSync({ secret }) })
        .expect(200);
      backupCodes = (confirmed.body as { backup_codes: string[] }).backup_codes;
    });

    async function challenge(): Promise<string> {
      await pause(COOLDOWN_SECONDS * 1000 + 50);
      const answer = await signIn(email);
      expect(answer['mfa_required']).toBe(true);
      return String(answer['mfa_token']);
    }

    it('50 parallel TOTP submissions across two sign-ins: exactly one session', async () => {
      const [first, second] = [await challenge(), await challenge()];
      // The next step's code (inside the ±1 window): confirmation already used the current one.
      const code = generateSync({ secret, epoch: Math.floor(Date.now() / 1000) + 30 });
      const before = await count('SELECT COUNT(*) AS n FROM otp_sessions');
      const answers = await Promise.all(
        Array.from({ length: 50 }, (_, i) =>
          sample
            .http()
            .post('/auth/totp/verify')
            .send({ mfa_token: i % 2 === 0 ? first : second, code }),
        ),
      );
      expect(answers.filter((a) => a.status === 200)).toHaveLength(1);
      expect(answers.every((a) => a.status === 200 || a.status === 401)).toBe(true);
      expect(await count('SELECT COUNT(*) AS n FROM otp_sessions')).toBe(before + 1);
    });

    it('50 parallel uses of one backup code: exactly one session, and the code is spent', async () => {
      const mfaToken = await challenge();
      const backupCode = backupCodes[0]!;
      const answers = await Promise.all(
        Array.from({ length: 50 }, () =>
          sample.http().post('/auth/totp/verify').send({ mfa_token: mfaToken, backup_code: backupCode }),
        ),
      );
      expect(answers.filter((a) => a.status === 200)).toHaveLength(1);
      const again = await challenge();
      await sample.http().post('/auth/totp/verify').send({ mfa_token: again, backup_code: backupCode }).expect(401);
    });
  });
});
