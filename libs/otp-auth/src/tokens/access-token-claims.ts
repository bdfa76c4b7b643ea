/** Claims the module sets on every access token; custom claims can never replace them. */
export const REGISTERED_CLAIMS: ReadonlySet<string> = new Set([
  'sub',
  'sid',
  'jti',
  'typ',
  'iat',
  'exp',
  'nbf',
  'iss',
  'aud',
  'amr',
  'auth_time',
]);

/** Kinds of JWT the module issues; each endpoint accepts exactly one. */
export type TokenType = 'access' | 'mfa';

/** The verified payload of an access token. */
export interface AccessTokenClaims {
  /** The user id, always a string. */
  readonly sub: string;
  /** The session (refresh-token family) the token belongs to. */
  readonly sid: string;
  /** Unique token id. */
  readonly jti: string;
  readonly typ: 'access';
  readonly iat: number;
  readonly exp: number;
  readonly iss: string;
  readonly aud: string;
  /** Authentication methods used for the session, e.g. `["otp"]`. */
  readonly amr: readonly string[];
  /**
   * When the user signed in to this session (epoch seconds, OIDC `auth_time`): refreshes keep it,
   * so it tells how long ago the user last proved who they are. Absent on tokens from versions
   * before it existed; treat that as "long ago".
   */
  readonly auth_time?: number;
  readonly [custom: string]: unknown;
}

/** Only the custom claims of a payload (what `getAdditionalClaims` added). */
export function customClaimsOf(claims: AccessTokenClaims): Record<string, unknown> {
  const custom: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(claims)) {
    if (!REGISTERED_CLAIMS.has(key)) custom[key] = value;
  }
  return custom;
}
