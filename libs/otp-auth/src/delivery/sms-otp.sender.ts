import { isIP } from 'node:net';
import { OtpMessageTemplates, type OtpMessageTemplatesOptions } from './message-templates.js';
import { type OtpDeliveryContext, type OtpSender } from './otp-sender.interface.js';
import { NoRecipientError, PermanentDeliveryError } from '../errors.js';

/**
 * Finds the phone number for an email address: E.164 (`+41791234567`; spaces, dots, dashes and
 * parentheses are ignored), or `null` when there is none. A thrown error is passed on as is.
 * Look the user up by the exact address (`store.findUserByEmail`), not with a query under the
 * column's collation: on MySQL/MariaDB `kévin@example.com` would otherwise reach the phone of
 * `kevin@example.com`.
 */
export type SmsRecipientResolver = (email: string, context: OtpDeliveryContext) => Promise<string | null>;

/** Settings of {@link SmsOtpSender}. */
export interface SmsOtpSenderOptions {
  /** Twilio Account SID (`AC` + 32 hex digits); also the Basic auth user. */
  accountSid: string;
  /** Twilio Auth Token; the Basic auth password. Never appears in errors. */
  authToken: string;
  /** Sending number (E.164) or alphanumeric sender ID. Give this or `messagingServiceSid`. */
  from?: string;
  /** Messaging Service SID (`MG` + 32 hex digits), which picks the sender itself. */
  messagingServiceSid?: string;
  /** Maps the email the library knows to a phone number. */
  resolveRecipient: SmsRecipientResolver;
  /**
   * Messages; the SMS body is each message's `sms` template (see {@link OtpMessageTemplate}).
   * A ready instance, or its options (the `appName` below fills in a missing one).
   */
  templates?: OtpMessageTemplates | Partial<OtpMessageTemplatesOptions>;
  /** The `{{app_name}}` of the built-in messages; required unless `templates` has it. */
  appName?: string;
  /** API origin. Default `https://api.twilio.com`; `http:` only for loopback hosts (tests). */
  baseUrl?: string;
  /** Abort the request after this many milliseconds. Default 5000. */
  timeoutMs?: number;
}

const E164 = /^\+[1-9]\d{6,14}$/;
/** Twilio's alphanumeric sender IDs: up to 11 letters, digits and spaces, at least one letter. */
const ALPHANUMERIC_SENDER = /^(?=.*[A-Za-z])[A-Za-z0-9 ]{1,11}$/;
/** Provider error text is short; more is noise in logs. */
const MAX_DETAIL_LENGTH = 300;

/**
 * Sends codes by SMS through Twilio's Messages API (or anything that speaks its shape):
 * `POST {baseUrl}/2010-04-01/Accounts/{AccountSid}/Messages.json`, form-encoded `To`, `From`
 * or `MessagingServiceSid`, and `Body`, with HTTP Basic auth. The library knows users by
 * email, so `resolveRecipient` supplies the number.
 *
 * No number on file, and a number whose cap (`delivery.recipientLimit`) is reached, are a
 * {@link NoRecipientError}: the module answers as for an unknown address. A 3xx or 4xx answer
 * (other than 429) or an invalid number is a {@link PermanentDeliveryError}; 429, 5xx, timeouts
 * and network errors are plain errors, which callers may retry. Twilio has no idempotency key
 * for messages, so a retry after a timeout can send a second SMS.
 */
export class SmsOtpSender implements OtpSender {
  /** Some addresses have no number: inline delivery answers at a fixed time (see {@link OtpSender}). */
  readonly resolvesRecipients = true;
  private readonly endpoint: string;
  private readonly authorization: string;
  /** `From` or `MessagingServiceSid`. */
  private readonly sender: Readonly<Record<string, string>>;
  private readonly templates: OtpMessageTemplates;
  private readonly timeoutMs: number;

  constructor(private readonly options: SmsOtpSenderOptions) {
    const fail = (problem: string): never => {
      throw new Error(`SmsOtpSender: ${problem}`);
    };
    if (typeof options.accountSid !== 'string' || !/^AC[0-9a-fA-F]{32}$/.test(options.accountSid)) {
      fail('`accountSid` must be a Twilio Account SID ("AC" and 32 hex digits).');
    }
    if (typeof options.authToken !== 'string' || !options.authToken) fail('`authToken` is required.');
    if ((options.from === undefined) === (options.messagingServiceSid === undefined)) {
      fail('give exactly one of `from` (sending number or sender ID) and `messagingServiceSid`.');
    }
    if (options.from !== undefined && !E164.test(options.from) && !ALPHANUMERIC_SENDER.test(options.from)) {
      fail(
        '`from` must be an E.164 number such as "+14155550100" or an alphanumeric sender ID of up to 11 characters.',
      );
    }
    if (options.messagingServiceSid !== undefined && !/^MG[0-9a-fA-F]{32}$/.test(options.messagingServiceSid)) {
      fail('`messagingServiceSid` must be "MG" and 32 hex digits.');
    }
    if (typeof options.resolveRecipient !== 'function') {
      fail('`resolveRecipient(email, context)` is required: it returns the phone number for an email address.');
    }
    this.timeoutMs = options.timeoutMs ?? 5000;
    if (!Number.isInteger(this.timeoutMs) || this.timeoutMs <= 0) {
      fail('`timeoutMs` must be a positive integer (milliseconds).');
    }
    this.endpoint = `${parseBaseUrl(options.baseUrl ?? 'https://api.twilio.com')}/2010-04-01/Accounts/${options.accountSid}/Messages.json`;
    this.authorization = `Basic ${Buffer.from(`${options.accountSid}:${options.authToken}`).toString('base64')}`;
    this.sender =
      options.from !== undefined ? { From: options.from } : { MessagingServiceSid: options.messagingServiceSid! };
    this.templates = resolveTemplates(options);
  }

  async send(email: string, code: string, context: OtpDeliveryContext): Promise<void> {
    const number = await this.options.resolveRecipient(email, context);
    // Like an unknown address: nothing to send, and nothing the requester may tell apart.
    if (number === null || number === undefined || number === '') throw new NoRecipientError('no phone number on file');
    const to = String(number).replace(/[\s().-]/g, '');
    // The number is personal data: errors say what is wrong with it, not what it is.
    if (!E164.test(to)) throw new PermanentDeliveryError('SMS delivery failed: the phone number on file is not E.164');
    // Per number, whichever address asked: look-alike addresses each have fresh per-address counters.
    if (context.admitRecipient && !(await context.admitRecipient(to))) {
      throw new NoRecipientError('the phone number has reached its message limit', 'recipient_limit');
    }

    const body = new URLSearchParams({ To: to, ...this.sender, Body: this.templates.renderSms(code, context) });
    let response: Response;
    let detail: string;
    try {
      response = await fetch(this.endpoint, {
        method: 'POST',
        headers: {
          authorization: this.authorization,
          'content-type': 'application/x-www-form-urlencoded',
          accept: 'application/json',
        },
        body,
        // A redirect would resend the credentials elsewhere.
        redirect: 'manual',
        signal: AbortSignal.timeout(this.timeoutMs),
      });
      // Read within the same timeout, and always, so the connection can be reused.
      detail = await response.text();
    } catch (error) {
      // The cause is fetch's own error, which does not carry the request headers.
      throw new Error(`SMS delivery failed: ${describeNetworkError(error)}`, { cause: error });
    }
    if (response.ok) return;
    const message = `SMS delivery failed: provider answered ${response.status}${this.scrub(providerDetail(detail), to)}`;
    // 429 and 5xx pass; any other 4xx (bad number, unsubscribed recipient, bad credentials) and
    // a redirect (not followed, see above) will not.
    if (response.status === 429 || response.status >= 500) throw new Error(message);
    throw new PermanentDeliveryError(message);
  }

  /**
   * Removes the token (and its Basic form) from provider text, in case a proxy or mock echoes the
   * request, and the recipient's number, which providers quote in their errors (personal data).
   */
  private scrub(text: string, to: string): string {
    const number = to.replace(/^\+/, '');
    let scrubbed = text;
    for (const secret of [this.options.authToken, this.authorization.slice('Basic '.length)]) {
      scrubbed = scrubbed.split(secret).join('***');
    }
    // "+15550100", "15550100" and Twilio's "+1 555 0100"-free E.164 forms.
    return scrubbed.split(`+${number}`).join('[recipient]').split(number).join('[recipient]');
  }
}

function parseBaseUrl(baseUrl: string): string {
  const fail = (): never => {
    throw new Error(
      'SmsOtpSender: `baseUrl` must be an https:// origin such as "https://api.twilio.com" (http:// only for loopback hosts).',
    );
  };
  let url: URL;
  try {
    url = new URL(baseUrl);
  } catch {
    return fail();
  }
  const loopback =
    ['localhost', '[::1]'].includes(url.hostname) || (isIP(url.hostname) === 4 && url.hostname.startsWith('127.'));
  // Basic auth sends the token in clear text over http.
  if (!(url.protocol === 'https:' || (url.protocol === 'http:' && loopback))) fail();
  if (url.username || url.password || url.search || url.hash) fail();
  return `${url.origin}${url.pathname.replace(/\/+$/, '')}`;
}

function resolveTemplates(options: SmsOtpSenderOptions): OtpMessageTemplates {
  if (options.templates instanceof OtpMessageTemplates) {
    if (options.appName !== undefined) {
      throw new Error('SmsOtpSender: give `appName` to the OtpMessageTemplates instance, not to the sender.');
    }
    return options.templates;
  }
  const appName = options.templates?.appName ?? options.appName;
  if (appName === undefined) throw new Error('SmsOtpSender: `appName` is required; it names the app in the SMS.');
  return new OtpMessageTemplates({ ...options.templates, appName });
}

/** Twilio's JSON error (`{code, message}`), shortened; plain text as is. */
function providerDetail(body: string): string {
  let detail = body.trim();
  try {
    const parsed = JSON.parse(detail) as { code?: unknown; message?: unknown };
    if (typeof parsed.message === 'string') {
      detail = typeof parsed.code === 'number' ? `${parsed.code} ${parsed.message}` : parsed.message;
    }
  } catch {
    // Not JSON: keep the text.
  }
  detail = detail.replace(/\s+/g, ' ').slice(0, MAX_DETAIL_LENGTH);
  return detail ? `: ${detail}` : '';
}

/** Names the failure without the request, which carries the credentials. */
function describeNetworkError(error: unknown): string {
  const name = (error as { name?: unknown } | null)?.name;
  if (name === 'TimeoutError') return 'timed out';
  const cause = (error as { cause?: { code?: unknown; message?: unknown } } | null)?.cause;
  if (typeof cause?.code === 'string') return `network error (${cause.code})`;
  return typeof cause?.message === 'string' ? `network error (${cause.message})` : 'network error';
}
