import {
  Inject,
  Injectable,
  Logger,
  type OnApplicationBootstrap,
  type OnApplicationShutdown,
  type OnModuleDestroy,
} from '@nestjs/common';
import { OTP_CLEANUP_CONFIG, type CleanupConfig } from './cleanup.options.js';
import { OtpAuthService } from '../otp-auth.service.js';
import { OtpAuthEvents } from '../events/otp-auth-events.js';

/** The first run never comes sooner than this after startup (or half the interval, if shorter). */
export const MIN_FIRST_CLEANUP_DELAY_MS = 5 * 60_000;
/** Later runs come every interval ± this fraction of it. */
export const CLEANUP_JITTER = 0.1;
/** How long shutdown waits for a run in progress, so the app does not close the database under it. */
const SHUTDOWN_WAIT_MS = 5000;
/** Error messages in logs and events are cut to this length. */
const MAX_ERROR_LENGTH = 300;

/**
 * Delay of the first run: random within the first interval, so instances started together (a
 * deployment, an autoscaler) do not all clean at once, but not right at startup, which is busy
 * enough (and would make short test runs see cleanups at random).
 * @param random - A number in [0, 1), e.g. `Math.random()`.
 */
export function firstCleanupDelayMs(intervalMs: number, random: number): number {
  const floor = Math.min(MIN_FIRST_CLEANUP_DELAY_MS, intervalMs / 2);
  return Math.round(floor + random * (intervalMs - floor));
}

/**
 * Delay between the end of one run and the start of the next: the interval ± {@link CLEANUP_JITTER}.
 * @param random - A number in [0, 1), e.g. `Math.random()`.
 */
export function nextCleanupDelayMs(intervalMs: number, random: number): number {
  return Math.round(intervalMs * (1 - CLEANUP_JITTER + 2 * CLEANUP_JITTER * random));
}

/** An error's class and message for a log line or an event: credentials in URLs masked, length bounded. */
function describeError(error: unknown): { errorClass: string; message: string } {
  if (!(error instanceof Error)) return { errorClass: typeof error, message: clip(String(error)) };
  // OtpStoreUnavailableException says "the database cannot be reached"; its cause says why.
  const cause = error.cause instanceof Error ? ` (${error.cause.name}: ${error.cause.message})` : '';
  return { errorClass: error.name || error.constructor.name, message: clip(`${error.message}${cause}`) };
}

function clip(message: string): string {
  const masked = message.replace(/\/\/[^\s/@]*:[^\s/@]*@/g, '//***:***@');
  return masked.length > MAX_ERROR_LENGTH ? `${masked.slice(0, MAX_ERROR_LENGTH)}…` : masked;
}

/**
 * Runs `OtpAuthService.cleanup()` every `cleanupInterval` seconds, so expired codes, tokens,
 * sessions, revocations and MFA rows do not pile up without the app writing a cron job.
 *
 * - One timer, unref'd: it never keeps a process alive, and it is cleared when the app closes.
 * - Runs never overlap: the next is planned only when one has ended.
 * - Several instances may clean at the same moment: cleanup deletes only expired rows, so a
 *   second run finds nothing left and reports zeros.
 * - A failure (database down) is logged once per run and reported as `cleanup.failed`; it never
 *   throws, and the next run comes as planned. Each success is reported as `cleanup.completed`.
 */
@Injectable()
export class CleanupScheduler implements OnApplicationBootstrap, OnModuleDestroy, OnApplicationShutdown {
  private readonly logger = new Logger('OtpAuth');
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private stopped = false;
  private failing = false;

  constructor(
    @Inject(OTP_CLEANUP_CONFIG) private readonly config: CleanupConfig,
    private readonly auth: OtpAuthService,
    private readonly events: OtpAuthEvents,
  ) {}

  /** Whether a run is planned (false with `cleanupInterval: false`, before startup and after shutdown). */
  get scheduled(): boolean {
    return this.timer !== undefined;
  }

  /** Plans the first run once the whole app has started (not when a module is merely compiled). */
  onApplicationBootstrap(): void {
    const interval = this.config.cleanupInterval;
    if (interval === null || this.stopped || this.timer !== undefined) return;
    this.schedule(firstCleanupDelayMs(interval * 1000, Math.random()));
  }

  /** Stops the timer and waits (briefly) for a run in progress, before the database is closed. */
  async onModuleDestroy(): Promise<void> {
    await this.stop();
  }

  /** The same as {@link onModuleDestroy}, for apps that only enable shutdown hooks. */
  async onApplicationShutdown(): Promise<void> {
    await this.stop();
  }

  private async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    this.timer = undefined;
    const running = this.running;
    if (running === undefined) return;
    let wait: NodeJS.Timeout | undefined;
    await Promise.race([running, new Promise((resolve) => (wait = setTimeout(resolve, SHUTDOWN_WAIT_MS).unref()))]);
    clearTimeout(wait);
  }

  private schedule(delayMs: number): void {
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.tick();
    }, delayMs);
    this.timer.unref();
  }

  private async tick(): Promise<void> {
    this.running = this.runOnce();
    await this.running;
    this.running = undefined;
    const interval = this.config.cleanupInterval;
    if (!this.stopped && interval !== null) this.schedule(nextCleanupDelayMs(interval * 1000, Math.random()));
  }

  /** One run; never rejects. */
  private async runOnce(): Promise<void> {
    const started = performance.now();
    try {
      const report = await this.auth.cleanup();
      const durationMs = Math.round(performance.now() - started);
      if (this.failing) {
        this.failing = false;
        this.logger.log('Scheduled cleanup works again.');
      }
      this.logger.debug(`Scheduled cleanup removed ${report.total} expired rows in ${durationMs} ms.`);
      this.events.emit({ type: 'cleanup.completed', ...report, durationMs });
    } catch (error) {
      this.failing = true;
      const { errorClass, message } = describeError(error);
      this.logger.warn(`Scheduled cleanup failed (${errorClass}: ${message}); the next run comes as planned.`);
      this.events.emit({ type: 'cleanup.failed', errorClass, error: message });
    }
  }
}
