import { HttpException } from '@nestjs/common';
import type { OtpAuthStore } from './otp-auth-store.interface.js';
import { OtpStoreUnavailableException } from '../errors.js';

/** Node's socket and DNS failures: the same for every driver. */
const NETWORK_ERROR_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ECONNABORTED',
  'ETIMEDOUT',
  'EPIPE',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
]);

/**
 * Whether an error, or an error it wraps (`cause`, TypeORM's `driverError`, an `AggregateError`'s
 * `errors`), is a socket or DNS failure. Stores add their drivers' own signs through
 * `OtpAuthStore.isUnavailableError`.
 */
export function isNetworkError(error: unknown): boolean {
  return someCause(error, (e) => typeof e['code'] === 'string' && NETWORK_ERROR_CODES.has(e['code']));
}

/** Walks an error and what it wraps (bounded: cause chains can be cyclic). */
export function someCause(error: unknown, test: (error: Record<string, unknown>) => boolean): boolean {
  const queue: unknown[] = [error];
  for (let seen = 0; queue.length > 0 && seen < 16; seen += 1) {
    const current = queue.shift();
    if (typeof current !== 'object' || current === null) continue;
    const record = current as Record<string, unknown>;
    if (test(record)) return true;
    queue.push(record['cause'], record['driverError']);
    if (Array.isArray(record['errors'])) queue.push(...(record['errors'] as unknown[]));
  }
  return false;
}

/**
 * The store as the module uses it: every call that fails because the database cannot be reached
 * rejects with {@link OtpStoreUnavailableException} instead of the driver's error (a 500). Other
 * errors pass through untouched. The store object itself is not changed.
 */
export function withStoreAvailability<TStore extends OtpAuthStore>(store: TStore): TStore {
  const unavailable = (error: unknown): boolean =>
    !(error instanceof HttpException) && (isNetworkError(error) || store.isUnavailableError?.(error) === true);
  const translate = (error: unknown): unknown =>
    unavailable(error) ? new OtpStoreUnavailableException(undefined, { cause: error }) : error;
  // Keyed by the function, so a method replaced later (a spy, a patch) is wrapped afresh.
  const wrapped = new WeakMap<(...args: unknown[]) => unknown, (...args: unknown[]) => unknown>();
  return new Proxy(store, {
    get(target, property) {
      const value: unknown = Reflect.get(target, property, target);
      if (typeof value !== 'function' || property === 'isUnavailableError' || property === 'constructor') {
        return value;
      }
      const method = value as (...args: unknown[]) => unknown;
      let wrapper = wrapped.get(method);
      if (wrapper === undefined) {
        wrapper = (...args: unknown[]): unknown => {
          let result: unknown;
          try {
            result = method.apply(target, args);
          } catch (error) {
            throw translate(error);
          }
          // Any thenable (a promise from another realm too), not only this realm's Promise.
          if (typeof (result as { then?: unknown } | null)?.then !== 'function') return result;
          return Promise.resolve(result).catch((error: unknown) => {
            throw translate(error);
          });
        };
        wrapped.set(method, wrapper);
      }
      return wrapper;
    },
  });
}
