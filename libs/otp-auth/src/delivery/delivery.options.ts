import { OtpAuthConfigurationError } from '../errors.js';
import { integer, unknownOption, YEAR } from '../option-checks.js';
import type { RateLimitRule } from '../rate-limits/rate-limit-rules.js';

/** How codes reach the sender. */
export interface DeliveryOptions {
  /**
   * `inline` (default): `request-otp` waits for the sender and answers 503 if it fails.
   * `outbox`: `request-otp` answers at once and an in-process queue sends with retries; failures
   * are reported through `onEvent` (`code.delivery_failed`) and the code is withdrawn.
   */
  mode?: 'inline' | 'outbox';
  /** Outbox: retries of a transient failure. Default 3. */
  retries?: number;
  /** Outbox: first retry delay in ms, doubled each time (with jitter). Default 1000. */
  retryDelayMs?: number;
  /** Outbox: messages sent at once. Default 4. */
  concurrency?: number;
  /** Outbox: messages queued before `request-otp` answers 503. Default 10000. */
  maxQueue?: number;
  /** Outbox: how long shutdown waits for queued messages. Default 5000 ms. */
  shutdownGraceMs?: number;
  /**
   * Inline, with {@link DeliveryOptions.uniformTiming} on: the fixed time in milliseconds after
   * which `request-otp` answers, for every address (1 to 60000). Addresses that get a message
   * wait for delivery up to this deadline, then get the answer anyway while delivery goes on in
   * the background (a failure after it is reported by `code.delivery_failed` and the log, and the
   * code is withdrawn); addresses that get none wait exactly this long. Choose it above your
   * provider's usual latency, or most requests finish delivery in the background.
   * @default 1000
   */
  responseDeadline?: number;
  /**
   * Inline: answer every `request-otp` at `responseDeadline`, whatever happened to the message,
   * so that response time, status and body never tell whether the address got one. A delivery
   * failure then answers like a success (reported by `code.delivery_failed`), not with 503.
   * Default: on when a response could otherwise differ by address, i.e. with
   * `autoCreateUser: false` or a sender that resolves recipients (`SmsOtpSender`, see
   * `OtpSender.resolvesRecipients`); off otherwise, where every address gets a message. Set
   * `true` for a `sendOtp` function that may find nowhere to send (throws `NoRecipientError`).
   * `false` turns it off even then: unknown addresses are then answered at once, which tells them apart.
   * @default undefined (automatic)
   */
  uniformTiming?: boolean;
  /**
   * Messages per destination (what a sender resolved, e.g. a phone number), whichever addresses
   * asked: one rule `{ limit, window }` (seconds) or several, or `false`. Counted in the
   * rate-limit storage under a keyed hash of the destination (also when `rateLimits.enabled` is
   * false: a gateway cannot see destinations). A refused message is not sent and the requester
   * gets the usual answer; `rate_limit.exceeded` (scope `deliver-recipient`) and `code.not_sent`
   * report it. Senders apply it through `OtpDeliveryContext.admitRecipient` (`SmsOtpSender` does).
   * @default [{ limit: 5, window: 600 }, { limit: 20, window: 86400 }] (what one address may get)
   */
  recipientLimit?: RateLimitRule | RateLimitRule[] | false;
}

/** {@link DeliveryOptions} after defaults and validation. */
export interface ResolvedDeliveryOptions extends Readonly<
  Required<Omit<DeliveryOptions, 'uniformTiming' | 'recipientLimit'>>
> {
  /** `'auto'` until the module knows its sender: on with `autoCreateUser: false` or a sender that resolves recipients. */
  readonly uniformTiming: boolean | 'auto';
  /** Empty when off. */
  readonly recipientLimit: readonly RateLimitRule[];
}

/** Defaults of the delivery options (documented in {@link DeliveryOptions}). */
export const DELIVERY_DEFAULTS = {
  responseDeadline: 1000,
  // One destination gets no more than one address may (`rateLimits.send.perEmail` / `perEmailDaily`).
  recipientLimit: [
    { limit: 5, window: 600 },
    { limit: 20, window: 86_400 },
  ],
} as const;

/** The keys `delivery` takes (checked at startup). */
export const DELIVERY_KEYS = {
  mode: true,
  retries: true,
  retryDelayMs: true,
  concurrency: true,
  maxQueue: true,
  shutdownGraceMs: true,
  responseDeadline: true,
  uniformTiming: true,
  // A rule or a list of rules: checked by resolveDelivery.
  recipientLimit: true,
} as const satisfies Record<keyof DeliveryOptions, true>;

/** `delivery.recipientLimit`: one rule, several, or false (none). */
function resolveRecipientLimit(value: DeliveryOptions['recipientLimit']): RateLimitRule[] {
  const name = 'delivery.recipientLimit';
  if (value === false) return [];
  if (value === undefined) return DELIVERY_DEFAULTS.recipientLimit.map((r) => ({ ...r }));
  const rules: readonly RateLimitRule[] = Array.isArray(value) ? value : [value];
  if (value === null || typeof value !== 'object' || rules.length === 0) {
    throw new OtpAuthConfigurationError(
      `\`${name}\` must be { limit, window } (window in seconds), a non-empty list of them, or false (got ${Array.isArray(value) ? '[]' : String(value)}).`,
    );
  }
  return rules.map((r, i) => {
    const at = Array.isArray(value) ? `${name}[${i}]` : name;
    if (r === null || typeof r !== 'object') {
      throw new OtpAuthConfigurationError(`\`${at}\` must be { limit, window } (window in seconds).`);
    }
    for (const key of Object.keys(r)) {
      if (key !== 'limit' && key !== 'window') throw unknownOption(at, key, ['limit', 'window']);
    }
    return {
      limit: integer(`${at}.limit`, r.limit, r.limit, 1, 10_000_000),
      window: integer(`${at}.window`, r.window, r.window, 1, YEAR),
    };
  });
}

/** Validates `delivery` and fills in the defaults. */
export function resolveDelivery(options: DeliveryOptions = {}): ResolvedDeliveryOptions {
  const mode = options.mode ?? 'inline';
  if (mode !== 'inline' && mode !== 'outbox') {
    throw new OtpAuthConfigurationError(`\`delivery.mode\` must be 'inline' or 'outbox' (got ${String(mode)}).`);
  }
  return {
    mode,
    retries: integer('delivery.retries', options.retries, 3, 0, 20),
    retryDelayMs: integer('delivery.retryDelayMs', options.retryDelayMs, 1000, 1, 600_000),
    concurrency: integer('delivery.concurrency', options.concurrency, 4, 1, 1000),
    maxQueue: integer('delivery.maxQueue', options.maxQueue, 10_000, 1, 10_000_000),
    shutdownGraceMs: integer('delivery.shutdownGraceMs', options.shutdownGraceMs, 5000, 0, 600_000),
    responseDeadline: resolveResponseDeadline(options.responseDeadline),
    uniformTiming: resolveUniformTiming(options.uniformTiming),
    recipientLimit: resolveRecipientLimit(options.recipientLimit),
  };
}

function resolveResponseDeadline(value: number | undefined): number {
  const deadline = value ?? DELIVERY_DEFAULTS.responseDeadline;
  if (typeof deadline !== 'number' || !Number.isInteger(deadline) || deadline < 1 || deadline > 60_000) {
    throw new OtpAuthConfigurationError(
      `\`delivery.responseDeadline\` must be a whole number of milliseconds from 1 to 60000 (got ${String(deadline)}): ` +
        `the time at which request-otp answers every address when responses are uniformly timed; e.g. 1000 for one second, above your provider's usual latency.`,
    );
  }
  return deadline;
}

function resolveUniformTiming(value: boolean | undefined): boolean | 'auto' {
  if (value === undefined) return 'auto';
  if (typeof value !== 'boolean') {
    throw new OtpAuthConfigurationError(
      `\`delivery.uniformTiming\` must be true, false or left out (automatic: on with \`autoCreateUser: false\` or a sender that resolves recipients) (got ${String(value)}).`,
    );
  }
  return value;
}

/** What the delivery services (inline, outbox, recipient limit) read of the module's options. */
export interface DeliveryConfig {
  readonly delivery: ResolvedDeliveryOptions;
  /** Whether unknown addresses become users (decides automatic uniform timing). */
  readonly autoCreateUser: boolean;
  /** Epoch milliseconds. */
  readonly clock: () => number;
}

/** DI token of {@link DeliveryConfig}. */
export const OTP_DELIVERY_CONFIG = Symbol('OTP_DELIVERY_CONFIG');
