import { OtpAuthConfigurationError } from '../errors.js';
import { MIN_API_KEY_LENGTH } from './introspection-api-keys.js';

/** Endpoints for other services: token introspection and the gateway check. */
export interface TokenEndpointOptions {
  /**
   * API keys (at least 32 characters each) that may call `POST /introspect`, sent as
   * `Authorization: Bearer <key>`. Introspection answers 404 while this is empty. Default none.
   */
  introspectionApiKeys?: string[];
  /** Serve `GET /verify` for nginx `auth_request` and other gateways. Default true. */
  verify?: boolean;
}

/** {@link TokenEndpointOptions} after defaults and validation. */
export interface ResolvedTokenEndpointOptions {
  readonly introspectionApiKeys: readonly string[];
  readonly verify: boolean;
}

/** The keys `tokenEndpoints` takes (checked at startup). */
export const TOKEN_ENDPOINT_KEYS = { introspectionApiKeys: true, verify: true } as const satisfies Record<
  keyof TokenEndpointOptions,
  true
>;

/** Validates `tokenEndpoints` and fills in the defaults. */
export function resolveTokenEndpoints(options: TokenEndpointOptions = {}): ResolvedTokenEndpointOptions {
  const keys = options.introspectionApiKeys ?? [];
  if (!Array.isArray(keys) || keys.some((k) => typeof k !== 'string' || k.length < MIN_API_KEY_LENGTH)) {
    throw new OtpAuthConfigurationError(
      `\`tokenEndpoints.introspectionApiKeys\` must be an array of keys of at least ${MIN_API_KEY_LENGTH} characters; generate one with \`openssl rand -hex 32\`.`,
    );
  }
  if (options.verify !== undefined && typeof options.verify !== 'boolean') {
    throw new OtpAuthConfigurationError('`tokenEndpoints.verify` must be true or false.');
  }
  return { introspectionApiKeys: [...keys], verify: options.verify ?? true };
}

/** What the token endpoints (`introspect`, `verify`) read of the module's options. */
export interface TokenEndpointConfig {
  readonly tokenEndpoints: ResolvedTokenEndpointOptions;
}

/** DI token of {@link TokenEndpointConfig}. */
export const OTP_TOKEN_ENDPOINT_CONFIG = Symbol('OTP_TOKEN_ENDPOINT_CONFIG');
