import {
  errorFromFetchFailure,
  errorFromResponse,
  isOtpAuthError,
  OtpAuthError,
  parseRetryAfter,
  type OtpAuthErrorCode,
} from './errors.js';
import type { OtpAuthRouteName } from './routes.js';
import { decodeJwtPayload } from './jwt.js';
import { jwt } from './__spec__/fakes.js';

const nest = (statusCode: number, message: string | string[], error = 'Error') => ({ statusCode, message, error });

function answer(status: number, body: unknown, headers: Record<string, string> = {}): Response {
  return new Response(JSON.stringify(body), { status, headers: { 'content-type': 'application/json', ...headers } });
}

describe('errorFromResponse', () => {
  // What the server module answers (bodies as nestjs-otp-auth sends them), and the code each gets.
  const cases: [OtpAuthRouteName | undefined, number, unknown, Record<string, string>, OtpAuthErrorCode][] = [
    ['verifyOtp', 401, nest(401, 'Invalid or expired code', 'Unauthorized'), {}, 'invalid_code'],
    ['verifyMfa', 401, nest(401, 'Invalid two-factor code', 'Unauthorized'), {}, 'invalid_code'],
    ['verifyMfa', 401, nest(401, 'Invalid or expired two-factor challenge', 'Unauthorized'), {}, 'invalid_mfa_token'],
    ['totp.confirm', 401, nest(401, 'Invalid two-factor code', 'Unauthorized'), {}, 'invalid_code'],
    ['totp.disable', 401, nest(401, 'Invalid two-factor code', 'Unauthorized'), {}, 'invalid_code'],
    ['totp.disable', 401, nest(401, 'Invalid or expired access token', 'Unauthorized'), {}, 'unauthorized'],
    ['refresh', 401, nest(401, 'Invalid or expired refresh token', 'Unauthorized'), {}, 'unauthorized'],
    [
      'totp.setup',
      401,
      { statusCode: 401, error: 'insufficient_user_authentication', message: 'Sign in again: …' },
      { 'www-authenticate': 'Bearer error="insufficient_user_authentication", max_age=900' },
      'reauthentication_required',
    ],
    [undefined, 403, nest(403, 'Two-factor authentication required', 'Forbidden'), {}, 'mfa_required'],
    ['refresh', 403, nest(403, 'Cross-site requests cannot set, use or clear the session cookie.'), {}, 'forbidden'],
    ['introspect', 404, nest(404, 'Token introspection is disabled'), {}, 'not_found'],
    ['totp.setup', 409, nest(409, 'Two-factor authentication is already enabled; disable it first.'), {}, 'conflict'],
    [
      'requestOtp',
      429,
      { ...nest(429, 'Please wait 42 seconds before requesting another code.'), retry_after: 42 },
      { 'retry-after': '42' },
      'cooldown',
    ],
    [
      'requestOtp',
      429,
      { ...nest(429, 'Too many requests. Please try again in 300 seconds.'), retry_after: 300 },
      { 'retry-after': '300' },
      'rate_limited',
    ],
    ['verifyOtp', 429, nest(429, 'Too many requests. Please try again in 5 seconds.'), {}, 'rate_limited'],
    ['requestOtp', 400, nest(400, ['email must be a valid email address'], 'Bad Request'), {}, 'validation_failed'],
    ['requestOtp', 503, nest(503, 'The code could not be sent. Please try again later.'), {}, 'service_unavailable'],
    ['requestOtp', 500, nest(500, 'Internal server error'), {}, 'server_error'],
    ['requestOtp', 415, nest(415, 'The request body must be application/json.'), {}, 'http_error'],
  ];

  it.each(cases)('%s %i %j → %s', (route, status, body, headers, code) => {
    const error = errorFromResponse(route, answer(status, body, headers), body);
    expect(error).toBeInstanceOf(OtpAuthError);
    expect(error).toBeInstanceOf(Error);
    expect(error.name).toBe('OtpAuthError');
    expect(error.code).toBe(code);
    expect(error.status).toBe(status);
    expect(error.route).toBe(route);
    expect(isOtpAuthError(error)).toBe(true);
  });

  it('carries the validation messages as details, and the message', () => {
    const body = nest(400, [
      'email must be a valid email address',
      'locale must be a language tag such as en or de-CH',
    ]);
    const error = errorFromResponse('requestOtp', answer(400, body), body);
    expect(error.details).toEqual(body.message);
    expect(error.message).toBe(
      'email must be a valid email address; locale must be a language tag such as en or de-CH',
    );
  });

  it('reads Retry-After (seconds or HTTP date), falling back to the body (header not exposed by CORS)', () => {
    const now = Date.UTC(2026, 0, 1);
    const body = { ...nest(429, 'Too many requests.'), retry_after: 17 };
    expect(errorFromResponse('verifyOtp', answer(429, body, { 'retry-after': '30' }), body, now).retryAfter).toBe(30);
    const date = new Date(now + 90_500).toUTCString();
    expect(errorFromResponse('verifyOtp', answer(429, body, { 'retry-after': date }), body, now).retryAfter).toBe(90);
    expect(errorFromResponse('verifyOtp', answer(429, body), body, now).retryAfter).toBe(17);
    expect(errorFromResponse('verifyOtp', answer(401, nest(401, 'x')), nest(401, 'x')).retryAfter).toBeUndefined();
  });

  it('reads max_age of the step-up answer, also when only the body says so', () => {
    const body = { statusCode: 401, error: 'insufficient_user_authentication', message: 'Sign in again' };
    const withHeader = errorFromResponse(
      'totp.disable',
      answer(401, body, { 'www-authenticate': 'Bearer error="insufficient_user_authentication", max_age=300' }),
      body,
    );
    expect(withHeader).toMatchObject({ code: 'reauthentication_required', maxAge: 300 });
    const bodyOnly = errorFromResponse('totp.disable', answer(401, body), body);
    expect(bodyOnly).toMatchObject({ code: 'reauthentication_required', maxAge: undefined });
  });

  it('handles non-JSON bodies (a proxy page)', () => {
    const error = errorFromResponse(
      'refresh',
      new Response('<html>Bad Gateway</html>', { status: 502 }),
      '<html>Bad Gateway</html>',
    );
    expect(error).toMatchObject({ code: 'server_error', status: 502, details: ['<html>Bad Gateway</html>'] });
  });
});

describe('errorFromFetchFailure', () => {
  it('maps fetch rejections to network_error and aborts to aborted, keeping the cause', () => {
    const cause = new TypeError('fetch failed');
    expect(errorFromFetchFailure('refresh', 'https://x/auth/refresh', cause)).toMatchObject({
      code: 'network_error',
      status: 0,
      cause,
    });
    const abort = new DOMException('The operation was aborted.', 'AbortError');
    expect(errorFromFetchFailure(undefined, 'https://x', abort)).toMatchObject({ code: 'aborted', status: 0 });
    const timeout = new DOMException('The operation timed out.', 'TimeoutError');
    expect(errorFromFetchFailure(undefined, 'https://x', timeout)).toMatchObject({ code: 'aborted' });
  });
});

describe('isOtpAuthError', () => {
  it('recognizes errors of another copy of the SDK (ESM and CJS builds loaded side by side)', () => {
    const brand = Symbol.for('nestjs-otp-auth-client.OtpAuthError');
    const foreign = Object.assign(new Error('x'), { code: 'unauthorized', [brand]: true });
    expect(isOtpAuthError(foreign)).toBe(true);
    expect(isOtpAuthError(new Error('x'))).toBe(false);
    expect(isOtpAuthError(null)).toBe(false);
    expect(isOtpAuthError({ code: 'unauthorized' })).toBe(false);
  });
});

describe('parseRetryAfter', () => {
  it('reads delta-seconds and dates, and ignores garbage', () => {
    expect(parseRetryAfter('120', 0)).toBe(120);
    expect(parseRetryAfter(' 7 ', 0)).toBe(7);
    expect(parseRetryAfter(new Date(5_000).toUTCString(), 10_000)).toBe(0);
    expect(parseRetryAfter('soon', 0)).toBeUndefined();
    expect(parseRetryAfter(null, 0)).toBeUndefined();
  });
});

describe('decodeJwtPayload', () => {
  it('decodes UTF-8 claims without verifying, and refuses what is not a JWT', () => {
    const token = jwt({ sub: '42', name: 'Zoë 🚀', amr: ['otp'] });
    expect(decodeJwtPayload(token)).toEqual({ sub: '42', name: 'Zoë 🚀', amr: ['otp'] });
    expect(decodeJwtPayload('opaque')).toBeNull();
    expect(decodeJwtPayload('a.b')).toBeNull();
    expect(decodeJwtPayload('a.!!!.c')).toBeNull();
    expect(decodeJwtPayload(`x.${Buffer.from('[1,2]').toString('base64url')}.y`)).toBeNull();
    expect(decodeJwtPayload(`x.${Buffer.from('not json').toString('base64url')}.y`)).toBeNull();
  });
});
