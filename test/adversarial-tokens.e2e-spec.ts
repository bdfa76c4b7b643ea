import { generateKeyPairSync } from 'node:crypto';
import jwt from 'jsonwebtoken';
import { SecretKeys } from 'nestjs-otp-auth';
import { enabledBackends } from './support/databases.js';
import { startSample, type SampleHarness } from './support/sample-harness.js';
import { refreshCookie, type Platform } from './support/test-app.js';

/**
 * Black-box token attacks against the sample app: whatever an attacker can build without the
 * secret, and what a holder of one kind of token tries to use as another, answers 401, never 500.
 */
const SECRET = 'adversarial-secret-0123456789abcdef0123456789';
const b64 = (value: unknown) =>
  Buffer.from(typeof value === 'string' ? value : JSON.stringify(value)).toString('base64url');

const cases = enabledBackends().flatMap((backend) =>
  (['express', 'fastify'] as Platform[]).map((platform) => [backend, platform] as const),
);

describe.each(cases)('token attacks on the sample app (%s / %s)', (backend, platform) => {
  let sample: SampleHarness;
  let access: string;
  let refresh: string;
  let claims: Record<string, unknown>;
  const http = () => sample.http();

  beforeAll(async () => {
    sample = await startSample({ backend, platform, env: { OTP_AUTH_SECRET: SECRET } });
    const email = 'target@example.com';
    await http().post('/auth/request-otp').send({ email }).expect(200);
    const verified = await http()
      .post('/auth/verify-otp')
      .send({ email, code: sample.lastCode(email) })
      .expect(200);
    access = verified.body.access_token as string;
    refresh = refreshCookie(verified)!;
    claims = JSON.parse(Buffer.from(access.split('.')[1]!, 'base64url').toString()) as Record<string, unknown>;
  });
  afterAll(async () => {
    await sample?.close();
  });

  /** Every route that reads an access token must refuse `token` with 401. */
  const refusedEverywhere = async (token: string) => {
    for (const path of ['/protected', '/verified-only', '/claims', '/auth/verify']) {
      const res = await http().get(path).set('authorization', `Bearer ${token}`);
      expect({ path, status: res.status }).toEqual({ path, status: 401 });
    }
  };

  it('accepts the genuine token (the control)', async () => {
    await http().get('/protected').set('authorization', `Bearer ${access}`).expect(200);
  });

  it.each(['none', 'None', 'NONE', 'nOnE'])('refuses alg "%s", with or without a signature', async (alg) => {
    const [, payload, signature] = access.split('.');
    await refusedEverywhere(`${b64({ alg, typ: 'JWT' })}.${payload}.`);
    await refusedEverywhere(`${b64({ alg, typ: 'JWT' })}.${payload}.${signature}`);
  });

  it('refuses HS/RS confusion and other algorithms', async () => {
    const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    await refusedEverywhere(jwt.sign(claims, privateKey, { algorithm: 'RS256' }));
    // The classic confusion: HS256 "signed" with a public key as the HMAC secret.
    const pem = publicKey.export({ type: 'spki', format: 'pem' }).toString();
    await refusedEverywhere(jwt.sign(claims, pem, { algorithm: 'HS256' }));
    const [, payload, signature] = access.split('.');
    for (const alg of ['HS384', 'HS512', 'RS256', 'ES256', 'PS256']) {
      await refusedEverywhere(`${b64({ alg, typ: 'JWT' })}.${payload}.${signature}`);
    }
  });

  it('refuses tampered payloads and tokens signed with keys named in kid, jku or jwk headers', async () => {
    const [header, , signature] = access.split('.');
    for (const change of [
      { sub: '999' },
      { amr: ['otp', 'totp'] },
      { exp: 9_999_999_999 },
      { typ: 'access', role: 'admin' },
    ]) {
      await refusedEverywhere(`${header}.${b64({ ...claims, ...change })}.${signature}`);
    }
    const attacker = 'attacker-secret-attacker-secret-attacker';
    const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const jwk = publicKey.export({ format: 'jwk' });
    await refusedEverywhere(jwt.sign(claims, attacker, { header: { alg: 'HS256', kid: '../../dev/null' } }));
    await refusedEverywhere(jwt.sign(claims, attacker, { header: { alg: 'HS256', jku: 'https://evil.example/jwks' } }));
    await refusedEverywhere(
      jwt.sign(claims, privateKey, { algorithm: 'RS256', header: { alg: 'RS256', jwk } as jwt.JwtHeader }),
    );
  });

  it('with the real key: refuses missing exp, a future nbf, wrong iss or aud, and non-access types', async () => {
    // Tokens only a key holder could make: each check must hold on its own, not only the signature.
    const key = new SecretKeys(SECRET).accessToken;
    const base = Object.fromEntries(Object.entries(claims).filter(([k]) => k !== 'exp' && k !== 'iat'));
    const sign = (payload: object) => jwt.sign(payload, key, { algorithm: 'HS256', noTimestamp: true });
    const now = Math.floor(Date.now() / 1000);
    await refusedEverywhere(sign({ ...base, iat: now })); // no exp
    await refusedEverywhere(sign({ ...base, iat: now, exp: now + 600, nbf: now + 300 }));
    await refusedEverywhere(sign({ ...base, iat: now, exp: now + 600, iss: 'someone-else' }));
    await refusedEverywhere(sign({ ...base, iat: now, exp: now + 600, aud: 'another-api' }));
    for (const typ of ['mfa', 'refresh', 'id', undefined]) {
      await refusedEverywhere(sign({ ...base, iat: now, exp: now + 600, typ }));
    }
    // The mfa key signs mfa tokens only; an access-shaped token under it is still refused.
    const mfaKey = new SecretKeys(SECRET).mfaToken;
    await refusedEverywhere(jwt.sign({ ...base, iat: now, exp: now + 600 }, mfaKey, { algorithm: 'HS256' }));
  });

  it('never reads tokens from the query string, and never mixes token kinds', async () => {
    await http().get(`/protected?access_token=${access}`).expect(401);
    await http().get(`/auth/verify?token=${access}`).expect(401);
    await refusedEverywhere(refresh); // a refresh token as a bearer token
    const asRefresh = await http().post('/auth/refresh').set('cookie', `otp_refresh=${access}`);
    expect(asRefresh.status).toBe(401);
    const asMfa = await http().post('/auth/totp/verify').send({ mfa_token: access, code: '123456' });
    expect(asMfa.status).toBe(401);
  });

  it('answers garbage of every shape with 401, never 500', async () => {
    for (const token of [
      '',
      '.',
      '..',
      '...',
      'a.b',
      'a.b.c.d',
      '\xff\xfe.\xe9\xe9.\xff',
      'x'.repeat(20_000),
      `${access}x`,
      `${access}.`,
    ]) {
      const res = await http().get('/protected').set('authorization', `Bearer ${token}`);
      expect([400, 401, 431]).toContain(res.status);
    }
  });
});
