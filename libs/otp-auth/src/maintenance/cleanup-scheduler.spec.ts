import 'reflect-metadata';
import { afterEach, beforeEach, describe, expect, it, jest } from '@jest/globals';
import { Logger } from '@nestjs/common';
import type { OtpAuthEvent } from '../events/otp-auth-event.js';
import type { OtpAuthService } from '../otp-auth.service.js';
import { resolveOtpAuthOptions, type ResolvedOtpAuthOptions } from '../options/resolve-options.js';
import type { CleanupReport, OtpAuthStore } from '../store/otp-auth-store.interface.js';
import {
  CleanupScheduler,
  CLEANUP_JITTER,
  firstCleanupDelayMs,
  MIN_FIRST_CLEANUP_DELAY_MS,
  nextCleanupDelayMs,
} from './cleanup-scheduler.js';
import { OtpStoreUnavailableException } from '../errors.js';
import { type OtpAuthEvents } from '../events/otp-auth-events.js';

const REPORT: CleanupReport = { codes: 2, refreshTokens: 3, sessions: 1, revocations: 4, mfa: 0, total: 10 };
const HOUR = 3_600_000;

function deferred<T>(): { promise: Promise<T>; resolve: (value: T) => void; reject: (error: unknown) => void } {
  let resolve!: (value: T) => void;
  let reject!: (error: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

function build(cleanupInterval: number | null, cleanup: () => Promise<CleanupReport>) {
  const events: OtpAuthEvent[] = [];
  const calls = jest.fn(cleanup);
  const scheduler = new CleanupScheduler(
    { cleanupInterval } as ResolvedOtpAuthOptions,
    { cleanup: calls } as unknown as OtpAuthService,
    { emit: (event: OtpAuthEvent) => events.push(event) } as unknown as OtpAuthEvents,
  );
  return { scheduler, events, calls };
}

describe('cleanup delays', () => {
  it('puts the first run within the first interval, never in its first 5 minutes (or half)', () => {
    expect(firstCleanupDelayMs(HOUR, 0)).toBe(MIN_FIRST_CLEANUP_DELAY_MS);
    expect(firstCleanupDelayMs(HOUR, 0.999999)).toBeLessThanOrEqual(HOUR);
    expect(firstCleanupDelayMs(HOUR, 0.5)).toBe(Math.round(MIN_FIRST_CLEANUP_DELAY_MS + 0.5 * (HOUR - 300_000)));
    expect(firstCleanupDelayMs(60_000, 0)).toBe(30_000);
    expect(firstCleanupDelayMs(60_000, 0.999999)).toBeLessThanOrEqual(60_000);
  });

  it('spreads later runs over the interval ± 10 %', () => {
    expect(CLEANUP_JITTER).toBe(0.1);
    expect(nextCleanupDelayMs(HOUR, 0)).toBe(0.9 * HOUR);
    expect(nextCleanupDelayMs(HOUR, 0.5)).toBe(HOUR);
    expect(nextCleanupDelayMs(HOUR, 0.999999)).toBeLessThanOrEqual(1.1 * HOUR);
  });
});

describe('cleanupInterval option', () => {
  const base = {
    secret: 'cleanup-scheduler-secret-0123456789abcdef',
    store: { findCode() {}, insertSuccessor() {} } as unknown as OtpAuthStore,
  };

  it('defaults to an hour; false turns it off', () => {
    expect(resolveOtpAuthOptions(base).cleanupInterval).toBe(3600);
    expect(resolveOtpAuthOptions({ ...base, cleanupInterval: 600 }).cleanupInterval).toBe(600);
    expect(resolveOtpAuthOptions({ ...base, cleanupInterval: false }).cleanupInterval).toBeNull();
  });

  it.each([59, 0, -60, 7 * 24 * 3600 + 1, 1.5, '3600', true])('refuses %j', (value) => {
    expect(() => resolveOtpAuthOptions({ ...base, cleanupInterval: value as number })).toThrow(
      '`cleanupInterval` must be an integer from 60 to 604800',
    );
  });
});

describe('CleanupScheduler', () => {
  let warn: ReturnType<typeof jest.spyOn>;
  beforeEach(() => {
    jest.useFakeTimers();
    warn = jest.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
    jest.spyOn(Logger.prototype, 'log').mockImplementation(() => undefined);
    jest.spyOn(Logger.prototype, 'debug').mockImplementation(() => undefined);
  });
  afterEach(() => {
    jest.useRealTimers();
    jest.restoreAllMocks();
  });

  it('runs first within the first interval, then every interval ± jitter, and reports each run', async () => {
    jest.spyOn(Math, 'random').mockReturnValue(0.5);
    const { scheduler, events, calls } = build(3600, async () => REPORT);
    scheduler.onApplicationBootstrap();
    expect(scheduler.scheduled).toBe(true);
    await jest.advanceTimersByTimeAsync(firstCleanupDelayMs(HOUR, 0.5) - 1);
    expect(calls).not.toHaveBeenCalled();
    await jest.advanceTimersByTimeAsync(1);
    expect(calls).toHaveBeenCalledTimes(1);
    expect(events).toEqual([{ type: 'cleanup.completed', ...REPORT, durationMs: expect.any(Number) }]);
    await jest.advanceTimersByTimeAsync(HOUR - 1);
    expect(calls).toHaveBeenCalledTimes(1);
    await jest.advanceTimersByTimeAsync(1);
    expect(calls).toHaveBeenCalledTimes(2);
    await scheduler.onModuleDestroy();
    expect(scheduler.scheduled).toBe(false);
    await jest.advanceTimersByTimeAsync(10 * HOUR);
    expect(calls).toHaveBeenCalledTimes(2);
  });

  it('schedules nothing with cleanupInterval: false', async () => {
    const { scheduler, calls } = build(null, async () => REPORT);
    scheduler.onApplicationBootstrap();
    expect(scheduler.scheduled).toBe(false);
    expect(jest.getTimerCount()).toBe(0);
    await jest.advanceTimersByTimeAsync(30 * 24 * HOUR);
    expect(calls).not.toHaveBeenCalled();
  });

  it('never overlaps runs: the next is planned when a slow one ends', async () => {
    jest.spyOn(Math, 'random').mockReturnValue(0);
    const slow = deferred<CleanupReport>();
    const { scheduler, calls, events } = build(60, () => slow.promise);
    scheduler.onApplicationBootstrap();
    await jest.advanceTimersByTimeAsync(30_000);
    expect(calls).toHaveBeenCalledTimes(1);
    expect(scheduler.scheduled).toBe(false); // nothing planned while it runs
    await jest.advanceTimersByTimeAsync(10 * 60_000);
    expect(calls).toHaveBeenCalledTimes(1);
    slow.resolve(REPORT);
    await jest.advanceTimersByTimeAsync(0);
    expect(events.map((e) => e.type)).toEqual(['cleanup.completed']);
    expect(scheduler.scheduled).toBe(true);
    await jest.advanceTimersByTimeAsync(54_000); // 60 s − 10 %
    expect(calls).toHaveBeenCalledTimes(2);
    await scheduler.onApplicationShutdown();
  });

  it('logs and reports a failure once per run, without throwing, keeps going, and says when it recovers', async () => {
    jest.spyOn(Math, 'random').mockReturnValue(0);
    let fail = true;
    const cause = Object.assign(new Error('connect ECONNREFUSED postgres://app:s3cret@db:5432/app'), {
      code: 'ECONNREFUSED',
    });
    const { scheduler, events } = build(60, async () => {
      if (fail) throw new OtpStoreUnavailableException(undefined, { cause });
      return REPORT;
    });
    scheduler.onApplicationBootstrap();
    await jest.advanceTimersByTimeAsync(30_000);
    expect(events).toEqual([
      {
        type: 'cleanup.failed',
        errorClass: 'OtpStoreUnavailableException',
        error: expect.stringContaining('ECONNREFUSED'),
      },
    ]);
    expect(warn).toHaveBeenCalledTimes(1);
    const logged = String(warn.mock.calls[0]?.[0]);
    expect(logged).toContain('Scheduled cleanup failed (OtpStoreUnavailableException');
    for (const text of [logged, JSON.stringify(events)]) expect(text).not.toContain('s3cret');

    await jest.advanceTimersByTimeAsync(54_000);
    expect(events.map((e) => e.type)).toEqual(['cleanup.failed', 'cleanup.failed']);
    expect(warn).toHaveBeenCalledTimes(2);
    fail = false;
    await jest.advanceTimersByTimeAsync(54_000);
    expect(events.map((e) => e.type)).toEqual(['cleanup.failed', 'cleanup.failed', 'cleanup.completed']);
    expect(Logger.prototype.log).toHaveBeenCalledWith('Scheduled cleanup works again.');
    await scheduler.onModuleDestroy();
  });

  it('reports a synchronous throw and a non-Error rejection too', async () => {
    jest.spyOn(Math, 'random').mockReturnValue(0);
    let call = 0;
    const { scheduler, events } = build(60, () => {
      call += 1;
      if (call === 1) throw new TypeError('boom');
      return Promise.reject('plain string') as Promise<CleanupReport>;
    });
    scheduler.onApplicationBootstrap();
    await jest.advanceTimersByTimeAsync(30_000);
    await jest.advanceTimersByTimeAsync(54_000);
    expect(events).toEqual([
      { type: 'cleanup.failed', errorClass: 'TypeError', error: 'boom' },
      { type: 'cleanup.failed', errorClass: 'string', error: 'plain string' },
    ]);
    await scheduler.onModuleDestroy();
  });

  it('on shutdown, clears the timer and waits for a run in progress', async () => {
    jest.spyOn(Math, 'random').mockReturnValue(0);
    const slow = deferred<CleanupReport>();
    const { scheduler, calls } = build(60, () => slow.promise);
    scheduler.onApplicationBootstrap();
    await jest.advanceTimersByTimeAsync(30_000);
    let closed = false;
    const closing = scheduler.onModuleDestroy().then(() => (closed = true));
    await jest.advanceTimersByTimeAsync(1000);
    expect(closed).toBe(false);
    slow.resolve(REPORT);
    await closing;
    expect(scheduler.scheduled).toBe(false); // nothing planned after the last run
    await jest.advanceTimersByTimeAsync(HOUR);
    expect(calls).toHaveBeenCalledTimes(1);
    // A second shutdown hook and a late bootstrap change nothing.
    await scheduler.onApplicationShutdown();
    scheduler.onApplicationBootstrap();
    expect(scheduler.scheduled).toBe(false);
  });

  it('does not wait forever for a hung run', async () => {
    jest.spyOn(Math, 'random').mockReturnValue(0);
    const { scheduler } = build(60, () => new Promise<CleanupReport>(() => undefined));
    scheduler.onApplicationBootstrap();
    await jest.advanceTimersByTimeAsync(30_000);
    const closing = scheduler.onModuleDestroy();
    await jest.advanceTimersByTimeAsync(5000);
    await expect(closing).resolves.toBeUndefined();
  });

  it('unrefs its timer', () => {
    jest.useRealTimers();
    const timers: NodeJS.Timeout[] = [];
    const real = globalThis.setTimeout;
    jest.spyOn(globalThis, 'setTimeout').mockImplementation(((...args: Parameters<typeof setTimeout>) => {
      const timer = real(...args);
      timers.push(timer);
      return timer;
    }) as typeof setTimeout);
    const { scheduler } = build(3600, async () => REPORT);
    scheduler.onApplicationBootstrap();
    expect(timers).toHaveLength(1);
    expect(timers[0]!.hasRef()).toBe(false);
    return scheduler.onModuleDestroy();
  });
});
