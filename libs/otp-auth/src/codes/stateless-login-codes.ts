import { randomBytes } from 'node:crypto';
import { OTP_CODE_CONFIG, type CodeConfig } from './code.options.js';
import { Inject, Injectable, Logger, UnauthorizedException, type OnApplicationBootstrap } from '@nestjs/common';
import { hashesEqual, SecretKeys } from '../crypto/secret-keys.js';
import { OtpRateLimiter } from '../rate-limits/otp-rate-limiter.js';
import { deriveStatelessCode, windowCounter } from './stateless-code.js';
import { OtpAuthConfigurationError } from '../errors.js';
import { OtpAuthEvents } from '../events/otp-auth-events.js';

/** Thrown by {@link StatelessLoginCodes} for every refused code (same message as stored mode). */
const INVALID = 'Invalid or expired code';

/** Codes one address can be issued per window (each single-use); bounds the verify work too. */
export const MAX_STATELESS_CODES_PER_WINDOW = 8;

/** Random bytes of an address's epoch: two epochs never meet by chance. */
const EPOCH_BYTES = 16;

/** The storage key of an address's epoch (`id` is its keyed identity hash, never the address). */
function statelessEpochKey(id: string): string {
  return `sl:epoch:${id}`;
}

/** A code issued in stateless mode. */
export interface IssuedStatelessCode {
  readonly code: string;
  /** When it stops being accepted: the end of its window plus `drift` windows. */
  readonly expiresAt: number;
  /** Undoes the issue after a failed delivery (frees the resend cooldown). */
  undo(): Promise<void>;
}

/** Raised when an address asks again inside the cooldown, or has used up this window's codes. */
export class StatelessCooldown extends Error {
  constructor(readonly retryAfterSeconds: number) {
    super('cooldown');
  }
}

/**
 * Login codes derived, not stored (`codeMode: 'stateless'`), as in the stateless OTP design, with
 * its gaps closed: each issue in a window takes the next of a few slots, so a second sign-in in
 * the same window gets a new code; a used code is marked and cannot be replayed; guesses are
 * capped per address and per window; the lifetime reported is the real one. Markers and counters
 * live in the rate-limit storage (atomic in memory and in Redis), so several instances need Redis.
 *
 * Each address also has a random epoch in that storage, mixed into every code: if the markers
 * are lost (restart, flush, eviction), so is the epoch, and the next one makes new codes, so a
 * code already used is never issued again. The price: codes issued before the loss stop working.
 */
@Injectable()
export class StatelessLoginCodes implements OnApplicationBootstrap {
  private readonly logger = new Logger('OtpAuth');

  constructor(
    @Inject(OTP_CODE_CONFIG) private readonly config: CodeConfig,
    private readonly keys: SecretKeys,
    private readonly limiter: OtpRateLimiter,
    private readonly events: OtpAuthEvents,
  ) {}

  private get windowMs(): number {
    return this.config.stateless.window * 1000;
  }

  /** How long markers of a window must outlive it: until its codes can no longer be accepted. */
  private get markerMs(): number {
    return this.windowMs * (this.config.stateless.drift + 2);
  }

  /**
   * Refuses marker storage that would let a used code be used again: memory on several
   * instances, a Redis that may evict, a storage without `getOrSet`; warns about memory on one
   * instance and about a policy it could not read. After every module's init, so Redis is
   * connected by then.
   */
  async onApplicationBootstrap(): Promise<void> {
    if (this.config.codeMode !== 'stateless') return;
    // The app's own storage: the module wraps it in a fallback that could not tell.
    const storage = this.config.rateLimits.storage ?? this.limiter.storage;
    if (typeof storage.getOrSet !== 'function') {
      throw new OtpAuthConfigurationError(
        "`codeMode: 'stateless'` keeps a per-address epoch in the rate-limit storage, and `rateLimits.storage` has no `getOrSet` (set-if-absent, atomic across instances). Implement it, or use `RedisRateLimitStorage` from `nestjs-otp-auth/redis`.",
      );
    }
    const report = await storage.describeMarkers?.();
    if (report === undefined) {
      this.logger.warn(
        'Stateless codes: `rateLimits.storage` does not describe its markers (`describeMarkers`). Make sure every instance shares them and that they are never evicted, or used codes can be used again.',
      );
      return;
    }
    if (!report.shared && this.config.stateless.multiInstance) {
      throw new OtpAuthConfigurationError(
        `\`codeMode: 'stateless'\` on several instances (\`stateless.multiInstance\`, implied by \`revocationBroadcaster\`) needs markers shared by every instance, but the rate-limit storage is ${report.detail}: each instance would accept a used code once more. Use \`rateLimits: { storage: new RedisRateLimitStorage({ client }) }\` from \`nestjs-otp-auth/redis\`.`,
      );
    }
    if (!report.shared) {
      this.logger.warn(
        `Stateless codes keep their markers in memory (${report.detail}): fine for one instance, but they are not shared with other instances and are lost on restart (sign-ins in progress then need a new code). With several instances use RedisRateLimitStorage and set \`stateless.multiInstance: true\`.`,
      );
    }
    if (report.mayEvict === true) {
      throw new OtpAuthConfigurationError(
        `\`codeMode: 'stateless'\` needs a rate-limit storage that never evicts live keys, but Redis has ${report.detail}: an evicted used-code marker makes that code valid again. Set \`maxmemory-policy noeviction\` (redis.conf, \`CONFIG SET\`, or the managed service's parameter group), or give the module a Redis of its own.`,
      );
    }
    if (report.mayEvict === undefined) {
      this.logger.warn(
        `Stateless codes: could not check that the rate-limit storage never evicts (${report.detail}). Make sure Redis has \`maxmemory-policy noeviction\`: an evicted used-code marker makes that code valid again.`,
      );
    }
  }

  /**
   * The address's epoch: the stored one, or a new random one stored if absent (set-if-absent, so
   * concurrent instances agree). Its lifetime is extended on every use to outlive any code
   * issued under it.
   */
  private async epochOf(id: string, now: number): Promise<string> {
    const storage = this.limiter.storage;
    if (!storage.getOrSet) throw new TypeError('the rate-limit storage has no getOrSet'); // refused at startup
    return storage.getOrSet(statelessEpochKey(id), randomBytes(EPOCH_BYTES).toString('base64url'), this.markerMs, now);
  }

  private slots(): number {
    const { resendCooldown, stateless } = this.config;
    const byCooldown =
      resendCooldown > 0 ? Math.ceil(stateless.window / resendCooldown) + 1 : MAX_STATELESS_CODES_PER_WINDOW;
    return Math.min(MAX_STATELESS_CODES_PER_WINDOW, byCooldown);
  }

  /** Issues the next code of the current window for an address. */
  async issue(email: string): Promise<IssuedStatelessCode> {
    const { resendCooldown, otpLength, stateless } = this.config;
    const storage = this.limiter.storage;
    const now = this.config.clock();
    const id = this.keys.identityKeyOf(email);
    const window = windowCounter(now, stateless.window);
    // The first request starts the cooldown; later ones inside it are refused (exact, shared).
    const cooldownKey = `sl:cool:${id}`;
    if (resendCooldown > 0 && (await storage.increment(cooldownKey, resendCooldown * 1000, now)) > 1) {
      throw new StatelessCooldown(resendCooldown);
    }
    const slot = (await storage.increment(`sl:slot:${id}:${window}`, this.markerMs, now)) - 1;
    if (slot >= this.slots()) {
      throw new StatelessCooldown(Math.max(1, Math.ceil(((window + 1) * this.windowMs - now) / 1000)));
    }
    const epoch = await this.epochOf(id, now);
    return {
      code: deriveStatelessCode(this.keys.statelessCode, 'login', email, window * 16 + slot, otpLength, epoch),
      expiresAt: (window + 1 + stateless.drift) * this.windowMs,
      undo: async () => {
        if (resendCooldown > 0) await storage.reset([cooldownKey]);
      },
    };
  }

  /**
   * Accepts a code of this window or of the `drift` windows before it, once. Every refusal throws
   * the same 401. Each guess is counted before it is evaluated, so parallel guesses cannot exceed
   * the caps (per address across windows, and `maxAttempts` per window).
   */
  async check(email: string, code: string): Promise<void> {
    const { maxAttempts, addressFailureLimit, otpLength, stateless } = this.config;
    const storage = this.limiter.storage;
    const now = this.config.clock();
    const id = this.keys.identityKeyOf(email);
    const window = windowCounter(now, stateless.window);
    const failures = `sl:fail:${id}`;
    // Guesses per window are an exact count; the per-address cap across windows slides.
    const tries = await storage.increment(`sl:try:${id}:${window}`, this.markerMs, now);
    const reserved =
      tries <= maxAttempts &&
      (
        await storage.consume(
          [{ key: failures, limit: addressFailureLimit.max, windowMs: addressFailureLimit.window * 1000 }],
          now,
        )
      ).allowed;
    if (!reserved) {
      this.events.emit({ type: 'code.locked_out', email });
      throw new UnauthorizedException(INVALID);
    }
    let match: { window: number; slot: number } | undefined;
    // An absent epoch (lost state) is created here too: then no earlier code matches, safe side.
    const epoch = await this.epochOf(id, now);
    // Only codes that were issued: a slot counts once request-otp has taken it.
    for (let w = window - stateless.drift; w <= window; w += 1) {
      const issued = Math.min(this.slots(), await storage.read(`sl:slot:${id}:${w}`, now));
      // Compare against every issued candidate without stopping early: time does not tell which matched.
      for (let slot = 0; slot < issued; slot += 1) {
        const candidate = deriveStatelessCode(this.keys.statelessCode, 'login', email, w * 16 + slot, otpLength, epoch);
        // Constant time for any input, also a code with multi-byte characters (no RangeError).
        if (hashesEqual(candidate, code) && !match) match = { window: w, slot };
      }
    }
    if (!match) {
      this.events.emit({ type: 'code.failed', email, reason: 'wrong' });
      throw new UnauthorizedException(INVALID);
    }
    if ((await storage.increment(`sl:used:${id}:${match.window}:${match.slot}`, this.markerMs, now)) > 1) {
      this.events.emit({ type: 'code.failed', email, reason: 'already_used' });
      throw new UnauthorizedException(INVALID);
    }
    await storage.reset([failures]);
  }
}
