import { type AccessTokenClaims, customClaimsOf, REGISTERED_CLAIMS } from './access-token-claims.js';

describe('customClaimsOf', () => {
  const registered = {
    sub: '1',
    sid: 'session',
    jti: 'token-id',
    typ: 'access',
    iat: 1,
    exp: 2,
    nbf: 1,
    iss: 'issuer',
    aud: 'audience',
    amr: ['otp'],
    auth_time: 1,
  };

  it('strips every registered claim and keeps the others', () => {
    const claims = { ...registered, role: 'admin', tenant: { id: 7 }, flag: false } as AccessTokenClaims;
    expect(customClaimsOf(claims)).toEqual({ role: 'admin', tenant: { id: 7 }, flag: false });
  });

  it('covers exactly the registered claim names', () => {
    expect([...REGISTERED_CLAIMS].sort()).toEqual(Object.keys(registered).sort());
    expect(customClaimsOf(registered as AccessTokenClaims)).toEqual({});
  });

  it('keeps falsy and null custom values', () => {
    const claims = { ...registered, zero: 0, empty: '', nothing: null } as AccessTokenClaims;
    expect(customClaimsOf(claims)).toEqual({ zero: 0, empty: '', nothing: null });
  });
});
