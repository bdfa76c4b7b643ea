import { errorFromFetchFailure, errorFromResponse, OtpAuthError } from './errors.js';
import { OTP_AUTH_ROUTES, routeUrl, type OtpAuthRouteName } from './routes.js';
import type { Clock, FetchLike } from './types.js';

/** How a {@link Transport} reaches the service. */
export interface TransportConfig {
  /** Origin (and path) of the service; `''` for same-origin relative URLs. */
  readonly baseUrl: string;
  /** The module's route prefix. */
  readonly prefix: string;
  /** The fetch to use; undefined: the global `fetch`, looked up at call time. */
  readonly fetch: FetchLike | undefined;
  /** Headers added to every auth-route request. */
  readonly headers: Readonly<Record<string, string>>;
  /** `include` in cookie mode (the refresh cookie travels, also cross-origin); else unset. */
  readonly credentials: 'include' | undefined;
  /** For `Retry-After` dates. */
  readonly clock: Clock;
}

/** One auth-route request. */
export interface RouteRequest {
  /** JSON body (POST routes). */
  readonly body?: Record<string, unknown>;
  /** `Authorization: Bearer <token>`. */
  readonly bearer?: string | null;
  /** Abort signal of the call. */
  readonly signal?: AbortSignal | undefined;
}

/**
 * The parsed body of an answer: JSON when it parses, else its text; undefined when empty or
 * unreadable.
 */
export async function readBody(response: Response): Promise<unknown> {
  let text: string;
  try {
    text = await response.text();
  } catch {
    return undefined;
  }
  if (text === '') return undefined;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return text;
  }
}

/** Throws the route's {@link OtpAuthError} unless the answer is a 2xx; returns the parsed body. */
export async function expectOk(route: OtpAuthRouteName, response: Response, clock: Clock): Promise<unknown> {
  const body = await readBody(response);
  if (!response.ok) throw errorFromResponse(route, response, body, clock.now());
  return body;
}

/** An `invalid_response` error: a 2xx answer without what the route promises. */
export function invalidResponse(route: OtpAuthRouteName, status: number, detail: string, body?: unknown): OtpAuthError {
  return new OtpAuthError({
    code: 'invalid_response',
    status,
    route,
    body,
    message: `Unexpected answer from ${route}: ${detail}. Check baseUrl and prefix (and the server's refreshTokenDelivery).`,
  });
}

/** Sends requests to the module's routes and, for the authenticated fetch, to any URL. */
export class Transport {
  /** @param config - Where and how. */
  constructor(readonly config: TransportConfig) {}

  /** The URL of a route. */
  url(route: OtpAuthRouteName): string {
    return routeUrl(this.config.baseUrl, this.config.prefix, route);
  }

  /**
   * `fetch`, with its rejections turned into {@link OtpAuthError} (`network_error`, `aborted`).
   *
   * @param route - The route, for error messages; undefined for app URLs.
   */
  async send(route: OtpAuthRouteName | undefined, input: string | URL | Request, init: RequestInit): Promise<Response> {
    const fetchImpl: FetchLike | undefined =
      this.config.fetch ?? (typeof fetch === 'function' ? (i, o) => fetch(i, o) : undefined);
    if (!fetchImpl) {
      throw new OtpAuthError({
        code: 'network_error',
        status: 0,
        route,
        message: 'No fetch in this runtime: pass the `fetch` option.',
      });
    }
    try {
      // With the global as `this`: an unbound `window.fetch` passed as the option throws otherwise.
      return await fetchImpl.call(globalThis, input, init);
    } catch (error) {
      const target = typeof input === 'string' ? input : input instanceof URL ? input.href : input.url;
      throw errorFromFetchFailure(route, target, error);
    }
  }

  /** Calls a route: method and URL from the route table, JSON in and out. */
  request(route: OtpAuthRouteName, request: RouteRequest = {}): Promise<Response> {
    const headers: Record<string, string> = { accept: 'application/json', ...this.config.headers };
    if (request.body !== undefined) headers['content-type'] = 'application/json';
    if (request.bearer) headers['authorization'] = `Bearer ${request.bearer}`;
    const init: RequestInit = {
      method: OTP_AUTH_ROUTES[route].method,
      headers,
      ...(request.body !== undefined ? { body: JSON.stringify(request.body) } : {}),
      ...(this.config.credentials ? { credentials: this.config.credentials } : {}),
      ...(request.signal ? { signal: request.signal } : {}),
    };
    return this.send(route, this.url(route), init);
  }
}
