import { isOtpAuthError } from './errors.js';
import { OtpAuthServerClient } from './server-client.js';
import type { FetchLike } from './types.js';

const API_KEY = 'k'.repeat(40);

function fakeService() {
  const calls: { url: string; init: RequestInit }[] = [];
  const fetch: FetchLike = (input, init = {}) => {
    calls.push({ url: String(input), init });
    const authorization = new Headers(init.headers).get('authorization');
    const url = new URL(String(input));
    if (url.pathname === '/auth/introspect') {
      if (authorization !== `Bearer ${API_KEY}`) {
        return Promise.resolve(
          Response.json(
            { statusCode: 401, message: 'A valid introspection API key is required as the bearer token.' },
            { status: 401, headers: { 'www-authenticate': 'Bearer realm="introspection"' } },
          ),
        );
      }
      const { token } = JSON.parse(String(init.body)) as { token: string };
      return Promise.resolve(
        Response.json(
          token === 'good'
            ? {
                active: true,
                token_type: 'access_token',
                sub: '7',
                exp: 2_000_000_000,
                sid: 's1',
                amr: ['otp'],
                plan: 'pro',
              }
            : { active: false },
        ),
      );
    }
    if (url.pathname === '/auth/verify') {
      if (authorization !== 'Bearer good') return Promise.resolve(new Response(null, { status: 401 }));
      const claims = Buffer.from(JSON.stringify({ sub: 'ü/7', amr: ['otp'] })).toString('base64url');
      return Promise.resolve(
        new Response(null, {
          status: 200,
          headers: { 'x-auth-user': encodeURIComponent('ü/7'), 'x-auth-claims': claims },
        }),
      );
    }
    return Promise.resolve(Response.json({ statusCode: 404, message: 'Not Found' }, { status: 404 }));
  };
  return { calls, fetch };
}

describe('OtpAuthServerClient', () => {
  it('introspects with the API key: active with claims, or exactly { active: false }', async () => {
    const service = fakeService();
    const client = new OtpAuthServerClient<{ plan: string }>({
      baseUrl: 'http://auth:3000/',
      apiKey: API_KEY,
      fetch: service.fetch,
    });
    const active = await client.introspect('good', { tokenTypeHint: 'access_token' });
    expect(active).toEqual({
      active: true,
      token_type: 'access_token',
      sub: '7',
      exp: 2_000_000_000,
      sid: 's1',
      amr: ['otp'],
      plan: 'pro',
    });
    if (active.active) expect(active.plan).toBe('pro'); // typed custom claim
    expect(await client.introspect('bad')).toEqual({ active: false });
    expect(service.calls[0]).toMatchObject({ url: 'http://auth:3000/auth/introspect', init: { method: 'POST' } });
    expect(JSON.parse(String(service.calls[0]!.init.body))).toEqual({ token: 'good', token_type_hint: 'access_token' });
  });

  it('reports a wrong API key as unauthorized, and a missing one before any request', async () => {
    const service = fakeService();
    const wrong = new OtpAuthServerClient({ baseUrl: 'http://auth:3000', apiKey: 'nope', fetch: service.fetch });
    const error: unknown = await wrong.introspect('good').catch((e: unknown) => e);
    expect(isOtpAuthError(error) && error.code).toBe('unauthorized');
    const none = new OtpAuthServerClient({ baseUrl: 'http://auth:3000', fetch: service.fetch });
    await expect(none.introspect('good')).rejects.toThrow(TypeError);
    expect(service.calls).toHaveLength(1);
  });

  it('verifyToken reads the gateway headers, and answers null for a refused token', async () => {
    const service = fakeService();
    const client = new OtpAuthServerClient({ baseUrl: 'http://auth:3000', prefix: '/auth', fetch: service.fetch });
    expect(await client.verifyToken('good')).toEqual({ userId: 'ü/7', claims: { sub: 'ü/7', amr: ['otp'] } });
    expect(await client.verifyToken('bad')).toBeNull();
  });

  it('needs an absolute baseUrl', () => {
    expect(() => new OtpAuthServerClient({ baseUrl: '/auth' })).toThrow(TypeError);
  });
});
