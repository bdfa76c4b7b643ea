import { type AuthRequest, bearerToken } from './auth-request.js';

function withAuthorization(value: string | string[] | undefined): AuthRequest {
  return { headers: { authorization: value } };
}

describe('bearerToken', () => {
  it.each(['Bearer x', 'bearer x', 'BEARER x', 'BeArEr x'])('accepts %j', (header) => {
    expect(bearerToken(withAuthorization(header))).toBe('x');
  });

  it('returns a whole token, trimmed', () => {
    expect(bearerToken(withAuthorization('Bearer eyJ.abc.def '))).toBe('eyJ.abc.def');
  });

  it('rejects a missing header', () => {
    expect(bearerToken({ headers: {} })).toBeUndefined();
    expect(bearerToken(withAuthorization(undefined))).toBeUndefined();
  });

  it.each(['Basic x', 'Bearerx', 'Bearerxy', 'Bearer ', 'Bearer    ', '', 'x Bearer y', 'Token x'])(
    'rejects %j',
    (header) => {
      expect(bearerToken(withAuthorization(header))).toBeUndefined();
    },
  );

  it('rejects array headers', () => {
    expect(bearerToken(withAuthorization(['Bearer x']))).toBeUndefined();
    expect(bearerToken(withAuthorization(['Bearer x', 'Bearer y']))).toBeUndefined();
  });
});
