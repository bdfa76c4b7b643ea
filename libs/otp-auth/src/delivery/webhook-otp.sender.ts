import { createHmac } from 'node:crypto';
import type { OtpDeliveryContext, OtpSender } from './otp-sender.interface.js';

/** Settings of {@link WebhookOtpSender}. */
export interface WebhookOtpSenderOptions {
  /** Where to POST. */
  url: string;
  /** Key of the HMAC-SHA256 signature header; share it with the receiver. */
  secret: string;
  /** Abort after this many milliseconds. Default 5000. */
  timeoutMs?: number;
}

/** Header carrying `sha256=<hex HMAC of "<timestamp>.<body>">`. */
export const WEBHOOK_SIGNATURE_HEADER = 'x-otp-signature';
/** Header carrying the Unix time (seconds) the signature covers; receivers reject old ones. */
export const WEBHOOK_TIMESTAMP_HEADER = 'x-otp-timestamp';

/** Signs a webhook body the way {@link WebhookOtpSender} does; for receivers and tests. */
export function signWebhookBody(secret: string, timestamp: string, body: string): string {
  return `sha256=${createHmac('sha256', secret).update(`${timestamp}.${body}`).digest('hex')}`;
}

/**
 * Delivers codes by POSTing JSON `{email, code, purpose, expires_at}` to a URL, signed so the
 * receiver can tell the request came from this service. A non-2xx answer or a timeout is a
 * failed delivery.
 */
export class WebhookOtpSender implements OtpSender {
  constructor(private readonly options: WebhookOtpSenderOptions) {
    if (!/^https?:\/\//.test(options.url)) throw new Error('WebhookOtpSender: `url` must be an http(s) URL.');
    if (!options.secret) throw new Error('WebhookOtpSender: `secret` is required to sign requests.');
  }

  async send(email: string, code: string, context: OtpDeliveryContext): Promise<void> {
    const body = JSON.stringify({ email, code, purpose: context.purpose, expires_at: context.expiresAt.toISOString() });
    const timestamp = Math.floor(Date.now() / 1000).toString();
    const response = await fetch(this.options.url, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        [WEBHOOK_TIMESTAMP_HEADER]: timestamp,
        [WEBHOOK_SIGNATURE_HEADER]: signWebhookBody(this.options.secret, timestamp, body),
      },
      body,
      signal: AbortSignal.timeout(this.options.timeoutMs ?? 5000),
    });
    // Drain the body so the connection can be reused.
    await response.arrayBuffer().catch(() => undefined);
    if (!response.ok) throw new Error(`webhook answered ${response.status}`);
  }
}
