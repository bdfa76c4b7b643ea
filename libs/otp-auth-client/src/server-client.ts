import { errorFromResponse } from './errors.js';
import { decodeBase64UrlJson, isRecord } from './jwt.js';
import { DEFAULT_ROUTE_PREFIX } from './routes.js';
import { expectOk, invalidResponse, readBody, Transport } from './transport.js';
import { systemClock, type AccessTokenClaims, type CallOptions, type Clock, type FetchLike } from './types.js';

/** Options of {@link OtpAuthServerClient}. */
export interface OtpAuthServerClientOptions {
  /** Absolute URL of the service running the module (`https://auth.internal:3000`). */
  readonly baseUrl: string;
  /** The module's `routePrefix`; default `/auth`. */
  readonly prefix?: string;
  /**
   * One of the server's `tokenEndpoints.introspectionApiKeys` (the sample app:
   * `OTP_INTROSPECTION_API_KEYS`); needed by {@link OtpAuthServerClient.introspect}. Keep it
   * server-side: it lets its holder check any token.
   */
  readonly apiKey?: string;
  /** The `fetch` to use; default the global one. */
  readonly fetch?: FetchLike;
  /** Headers added to every request. */
  readonly headers?: Readonly<Record<string, string>>;
  /** Time (tests). */
  readonly clock?: Clock;
}

/** Options of {@link OtpAuthServerClient.introspect}. */
export interface IntrospectOptions extends CallOptions {
  /** RFC 7662 §2.1 hint; refresh tokens always introspect as inactive here. */
  readonly tokenTypeHint?: 'access_token' | 'refresh_token';
}

/** An active token, as RFC 7662 introspection describes it: the claims, `active: true`. */
export type ActiveIntrospection<TClaims extends object = Record<string, unknown>> = AccessTokenClaims &
  TClaims & {
    /** The token is valid: signature, expiry, not revoked. */
    readonly active: true;
    /** Always `access_token` (refresh tokens introspect as inactive). */
    readonly token_type: 'access_token';
  };

/** Result of {@link OtpAuthServerClient.introspect}: discriminated by `active`. */
export type IntrospectionResult<TClaims extends object = Record<string, unknown>> =
  | ActiveIntrospection<TClaims>
  | {
      /** Expired, revoked, malformed, a refresh or MFA token, or not ours: nothing else is said. */
      readonly active: false;
    };

/** Result of {@link OtpAuthServerClient.verifyToken} for a valid token. */
export interface VerifiedToken<TClaims extends object = Record<string, unknown>> {
  /** The user id (`X-Auth-User`). */
  readonly userId: string;
  /** The token's claims (`X-Auth-Claims`). */
  readonly claims: AccessTokenClaims & TClaims;
}

/**
 * For other services (APIs, workers, gateways written in Node, Deno, Bun) that receive access
 * tokens issued by a nestjs-otp-auth service and need to know whether they are valid *now*
 * (signature, expiry and revocation: a logout is seen at once, which a local JWT check cannot do).
 *
 * @typeParam TClaims - Your custom claims.
 *
 * @example
 * ```ts
 * const tokens = new OtpAuthServerClient({ baseUrl: 'http://auth:3000', apiKey: process.env.OTP_INTROSPECTION_API_KEY });
 * const result = await tokens.introspect(bearerToken);
 * if (!result.active) return reply.code(401).send();
 * request.userId = result.sub;
 * ```
 */
export class OtpAuthServerClient<TClaims extends object = Record<string, unknown>> {
  private readonly transport: Transport;
  private readonly apiKey: string | undefined;
  private readonly clock: Clock;

  /**
   * @param options - Where the service is, and the introspection API key.
   * @throws TypeError when `baseUrl` is not an absolute http(s) URL.
   */
  constructor(options: OtpAuthServerClientOptions) {
    if (!/^https?:\/\//i.test(options.baseUrl ?? '')) {
      throw new TypeError(`baseUrl must be an absolute http(s) URL (got '${String(options.baseUrl)}')`);
    }
    this.apiKey = options.apiKey;
    this.clock = options.clock ?? systemClock;
    this.transport = new Transport({
      baseUrl: options.baseUrl,
      prefix: options.prefix ?? DEFAULT_ROUTE_PREFIX,
      fetch: options.fetch,
      headers: { ...options.headers },
      credentials: undefined,
      clock: this.clock,
    });
  }

  /**
   * `POST /introspect` (RFC 7662) with the API key: whether `token` is an active access token,
   * and its claims.
   *
   * @param token - The access token to check (e.g. from an `Authorization: Bearer` header).
   * @param options - `tokenTypeHint` (RFC 7662 §2.1) and an abort signal.
   * @returns `{ active: true, sub, exp, sid, amr, …custom }` or exactly `{ active: false }`.
   * @throws TypeError without `apiKey`. {@link OtpAuthError} `unauthorized` (wrong API key),
   *   `not_found` (introspection not enabled on the server: no API keys configured).
   */
  async introspect(token: string, options: IntrospectOptions = {}): Promise<IntrospectionResult<TClaims>> {
    if (!this.apiKey) throw new TypeError('introspect needs the apiKey option (one of introspectionApiKeys)');
    const body: Record<string, unknown> = { token };
    if (options.tokenTypeHint) body['token_type_hint'] = options.tokenTypeHint;
    const response = await this.transport.request('introspect', { body, bearer: this.apiKey, signal: options.signal });
    const data = await expectOk('introspect', response, this.clock);
    if (!isRecord(data) || typeof data['active'] !== 'boolean') {
      throw invalidResponse('introspect', response.status, 'no active field', data);
    }
    if (!data['active']) return { active: false };
    if (typeof data['sub'] !== 'string') throw invalidResponse('introspect', response.status, 'no sub', data);
    return Object.freeze({ ...data, active: true, token_type: 'access_token' }) as ActiveIntrospection<TClaims>;
  }

  /**
   * `GET /verify` (the gateway endpoint, e.g. for nginx `auth_request`): whether `accessToken`
   * is valid, and its user id and claims. Needs no API key; the token is the credential.
   *
   * @returns The user and claims, or null for an invalid, expired or revoked token (401).
   * @throws {@link OtpAuthError} `not_found` when the server has `tokenEndpoints.verify` off.
   */
  async verifyToken(accessToken: string, options: CallOptions = {}): Promise<VerifiedToken<TClaims> | null> {
    const response = await this.transport.request('verifyToken', { bearer: accessToken, signal: options.signal });
    if (response.status === 401) {
      await response.body?.cancel().catch(() => undefined);
      return null;
    }
    if (!response.ok) throw errorFromResponse('verifyToken', response, await readBody(response), this.clock.now());
    await response.body?.cancel().catch(() => undefined);
    const user = response.headers.get('x-auth-user');
    const claims = decodeBase64UrlJson(response.headers.get('x-auth-claims') ?? '');
    if (user === null || !claims) {
      throw invalidResponse('verifyToken', response.status, 'no X-Auth-User / X-Auth-Claims headers');
    }
    return Object.freeze({
      userId: decodeURIComponent(user),
      claims: Object.freeze(claims) as AccessTokenClaims & TClaims,
    });
  }
}
