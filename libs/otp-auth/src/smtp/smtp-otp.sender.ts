import type { OnModuleDestroy } from '@nestjs/common';
import { isIP } from 'node:net';
import { createTransport, type NodemailerError, type SMTPPoolOptions, type Transporter } from 'nodemailer';
import addressparser from 'nodemailer/lib/addressparser';
import { OtpMessageTemplates, type OtpMessageTemplatesOptions } from '../delivery/message-templates.js';
import { type OtpDeliveryContext, type OtpSender } from '../delivery/otp-sender.interface.js';
import { PermanentDeliveryError } from '../errors.js';

/** TLS settings of {@link SmtpOtpSender}. */
export interface SmtpTlsOptions {
  /** Refuse servers whose certificate does not verify. Default `true`; `false` only for tests. */
  rejectUnauthorized?: boolean;
  /** Trusted CA certificates (PEM) instead of Node's bundled ones, e.g. for a private relay. */
  ca?: string | Buffer | readonly (string | Buffer)[];
  /** Oldest TLS version accepted. Default `TLSv1.2`. */
  minVersion?: 'TLSv1.2' | 'TLSv1.3';
  /**
   * `smtp://` only: fail unless the server upgrades to TLS with STARTTLS, instead of going on in
   * clear text (the mail carries a working sign-in code, and the URL's password may follow it).
   * A failure is retryable, so the code is withdrawn and the client gets a 503.
   * `false` is the explicit opt-out for a relay without TLS on a network you trust (e.g. Mailpit
   * in a Docker network): the sender still upgrades when the server offers STARTTLS, but no
   * longer insists. `smtps://` is TLS from the first byte and ignores this.
   *
   * @default `true` unless the host is loopback (`localhost`, `127.0.0.0/8`, `::1`); see
   * {@link defaultSmtpRequireTls}.
   */
  requireTLS?: boolean;
}

/** Connection pool settings of {@link SmtpOtpSender}. */
export interface SmtpPoolSettings {
  /** Concurrent connections. Default 5. */
  maxConnections?: number;
  /** Messages per connection before it is replaced. Default 100. */
  maxMessages?: number;
}

/** Settings of {@link SmtpOtpSender}. */
export interface SmtpOtpSenderOptions {
  /**
   * `smtp://[user:pass@]host[:port]` (STARTTLS when offered, port 587 by default) or
   * `smtps://…` (TLS from the first byte, port 465 by default). User and password are
   * percent-encoded. Query options are not read; use the fields below.
   */
  url: string;
  /** Sender: `no-reply@example.com`, `Acme <no-reply@example.com>` or `{ name, address }`. */
  from: string | { name?: string; address: string };
  /** Messages; a ready instance, or its options (the `appName` below fills in a missing one). */
  templates?: OtpMessageTemplates | Partial<OtpMessageTemplatesOptions>;
  /** The `{{app_name}}` of the built-in messages. Default: the name in `from`, else its domain. */
  appName?: string;
  tls?: SmtpTlsOptions;
  /** Limit in milliseconds for connecting, the server greeting and each wait on the socket. Default 10000. */
  timeoutMs?: number;
  /** Keep connections open and reuse them (`true` for the defaults). Call `close()` on shutdown. Default off. */
  pool?: boolean | SmtpPoolSettings;
}

const DEFAULT_TIMEOUT_MS = 10_000;

/**
 * Sends codes by email over SMTP with nodemailer. A 5xx reply refusing the message (a rejected
 * recipient or sender, a message refused after DATA) becomes {@link PermanentDeliveryError};
 * 4xx replies, timeouts, connection and TLS failures, and refused logins are plain errors,
 * which callers may retry. Error messages never contain the password of `url`. An `smtp://`
 * server that is not on loopback must upgrade with STARTTLS unless `tls.requireTLS` is `false`
 * (see {@link defaultSmtpRequireTls}): a sign-in code never crosses a network in clear text by default.
 */
export class SmtpOtpSender implements OtpSender, OnModuleDestroy {
  private readonly transporter: Transporter;
  private readonly templates: OtpMessageTemplates;
  private readonly from: { name: string; address: string };
  /** Forms of the password that could show up in a server reply; scrubbed from errors. */
  private readonly secrets: string[];

  constructor(options: SmtpOtpSenderOptions) {
    const server = parseSmtpUrl(options.url);
    this.secrets = secretForms(server.user, server.pass, server.rawPass);
    this.from = parseFrom(options.from);
    this.templates = resolveTemplates(options, this.from);

    const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    if (!Number.isInteger(timeoutMs) || timeoutMs <= 0) {
      throw new Error('SmtpOtpSender: `timeoutMs` must be a positive integer (milliseconds).');
    }
    const tls = options.tls ?? {};
    if (tls.minVersion !== undefined && !['TLSv1.2', 'TLSv1.3'].includes(tls.minVersion)) {
      throw new Error("SmtpOtpSender: `tls.minVersion` must be 'TLSv1.2' or 'TLSv1.3'.");
    }
    const pool = options.pool === true ? {} : options.pool || undefined;
    for (const key of ['maxConnections', 'maxMessages'] as const) {
      const value = pool?.[key];
      if (value !== undefined && (!Number.isInteger(value) || value < 1)) {
        throw new Error(`SmtpOtpSender: \`pool.${key}\` must be a positive integer.`);
      }
    }

    const transport: SMTPPoolOptions = {
      host: server.host,
      port: server.port,
      secure: server.secure,
      auth: server.user ? { user: server.user, pass: server.pass } : undefined,
      // An explicit `tls.requireTLS` wins either way; smtps:// is encrypted before any command.
      requireTLS: !server.secure && (tls.requireTLS ?? defaultSmtpRequireTls(server.host)),
      tls: {
        rejectUnauthorized: tls.rejectUnauthorized ?? true,
        minVersion: tls.minVersion ?? 'TLSv1.2',
        ...(tls.ca !== undefined && {
          ca: typeof tls.ca === 'string' || Buffer.isBuffer(tls.ca) ? tls.ca : [...tls.ca],
        }),
      },
      // nodemailer waits minutes by default; a sign-in request cannot.
      connectionTimeout: timeoutMs,
      greetingTimeout: timeoutMs,
      socketTimeout: timeoutMs,
      dnsTimeout: timeoutMs,
      pool: pool !== undefined,
      ...(pool?.maxConnections !== undefined && { maxConnections: pool.maxConnections }),
      ...(pool?.maxMessages !== undefined && { maxMessages: pool.maxMessages }),
      logger: false,
    };
    this.transporter = createTransport(transport);
    // Failures reach send() as rejections; an unheard 'error' event would crash the process.
    this.transporter.on('error', () => undefined);
  }

  async send(email: string, code: string, context: OtpDeliveryContext): Promise<void> {
    // One plain address: no display name, list or angle brackets that could add recipients.
    if (!/^[^\s\p{Cc}@,;<>"()\\[\]]+@[^\s\p{Cc}@,;<>"()\\[\]]+$/u.test(email)) {
      throw new PermanentDeliveryError('SMTP delivery failed: the recipient is not a plain email address.');
    }
    const message = this.templates.render(code, context);
    try {
      await this.transporter.sendMail({
        from: this.from,
        to: { name: '', address: email },
        envelope: { from: this.from.address, to: [email] },
        subject: message.subject,
        text: message.text,
        html: message.html,
        // RFC 3834: keeps vacation responders from answering.
        headers: { 'Auto-Submitted': 'auto-generated' },
        // One Message-ID for every attempt at this message, so a mailbox that got an attempt
        // whose answer was lost can drop the retry as a duplicate.
        ...(context.deliveryId !== undefined &&
          /^[\w.-]{1,128}$/.test(context.deliveryId) && {
            messageId: `<${context.deliveryId}@${this.from.address.split('@')[1]!}>`,
          }),
      });
    } catch (error) {
      throw this.deliveryError(error);
    }
  }

  /** Closes pooled connections. Sends after this open new ones. */
  close(): void {
    this.transporter.close();
  }

  /** Nest calls this on shutdown when the sender is a provider. */
  onModuleDestroy(): void {
    this.close();
  }

  /** Maps a nodemailer failure to a permanent or retryable error, with secrets scrubbed. */
  private deliveryError(error: unknown): Error {
    // Not `instanceof Error`: socket errors may come from another realm (e.g. Jest's VM).
    const failure: NodemailerError =
      typeof error === 'object' && error !== null && typeof (error as Error).message === 'string'
        ? (error as NodemailerError)
        : new Error(String(error));
    const responseCode = typeof failure.responseCode === 'number' ? failure.responseCode : undefined;
    // Only a refusal of this message is permanent: a reply to MAIL FROM, RCPT TO or DATA
    // (EENVELOPE, EMESSAGE) in the 5xx class (RFC 5321) except 503 "bad sequence", or an
    // address or message nodemailer refused before sending. A 5xx to AUTH, STARTTLS or EHLO
    // is a problem of this sender's setup that affects every message, so it stays retryable.
    const aboutThisMessage = failure.code === 'EENVELOPE' || failure.code === 'EMESSAGE';
    const permanent =
      aboutThisMessage &&
      (responseCode === undefined || (responseCode >= 500 && responseCode < 600 && responseCode !== 503));
    const labels = [failure.code, responseCode].filter((label) => label !== undefined).join(', ');
    const message = `SMTP delivery failed${labels ? ` (${labels})` : ''}: ${this.scrub(failure.message)}`;
    return permanent ? new PermanentDeliveryError(message) : new Error(message);
  }

  private scrub(text: string): string {
    let out = text;
    for (const secret of this.secrets) out = out.split(secret).join('***');
    return out;
  }
}

interface SmtpServer {
  host: string;
  port: number | undefined;
  secure: boolean;
  user: string | undefined;
  pass: string | undefined;
  /** The password as written in the URL (percent-encoded). */
  rawPass: string | undefined;
}

/** Parses `smtp(s)://user:pass@host:port`; messages never repeat the URL, which may hold a password. */
function parseSmtpUrl(url: string): SmtpServer {
  const fail = (problem: string): never => {
    throw new Error(`SmtpOtpSender: \`url\` ${problem} (expected smtp://[user:pass@]host[:port] or smtps://…).`);
  };
  if (typeof url !== 'string' || !url) return fail('is required');
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return fail('is not a valid URL');
  }
  if (parsed.protocol !== 'smtp:' && parsed.protocol !== 'smtps:') {
    return fail(`has the scheme "${parsed.protocol.slice(0, 20)}"`);
  }
  const host = parsed.hostname.replace(/^\[(.*)\]$/, '$1');
  if (!host) fail('has no host');
  if (parsed.pathname && parsed.pathname !== '/') fail('has a path');
  if (parsed.search || parsed.hash)
    fail('has a query or fragment; set `tls`, `pool` and `timeoutMs` as options instead');
  if (parsed.password && !parsed.username) fail('has a password but no user');
  const decode = (part: string): string => {
    try {
      return decodeURIComponent(part);
    } catch {
      return fail('has a badly percent-encoded user or password');
    }
  };
  return {
    host,
    port: parsed.port ? Number(parsed.port) : undefined,
    secure: parsed.protocol === 'smtps:',
    user: parsed.username ? decode(parsed.username) : undefined,
    pass: parsed.username ? decode(parsed.password) : undefined,
    rawPass: parsed.password || undefined,
  };
}

/** The password as typed, as in the URL, and base64 inside AUTH PLAIN/LOGIN commands. */
function secretForms(user: string | undefined, pass: string | undefined, rawPass: string | undefined): string[] {
  if (!pass) return [];
  const forms = [
    pass,
    rawPass ?? pass,
    encodeURIComponent(pass),
    Buffer.from(pass).toString('base64'),
    Buffer.from(`\0${user ?? ''}\0${pass}`).toString('base64'),
  ];
  // Longest first, so a short form does not break up a longer one.
  return [...new Set(forms)].sort((a, b) => b.length - a.length);
}

function parseFrom(from: SmtpOtpSenderOptions['from']): { name: string; address: string } {
  const fail = (): never => {
    throw new Error(
      'SmtpOtpSender: `from` must be one address: "no-reply@example.com", "Acme <no-reply@example.com>" or { name, address }.',
    );
  };
  if (typeof from === 'object' && from !== null) {
    if (typeof from.address !== 'string' || !isPlainAddress(from.address)) fail();
    if (from.name !== undefined && (typeof from.name !== 'string' || /[\r\n]/.test(from.name))) fail();
    return { name: from.name ?? '', address: from.address };
  }
  if (typeof from !== 'string' || /[\r\n]/.test(from)) return fail();
  const parsed = addressparser(from, { flatten: true });
  if (parsed.length !== 1 || !isPlainAddress(parsed[0]!.address)) return fail();
  return parsed[0]!;
}

function isPlainAddress(address: string): boolean {
  return /^[^\s\p{Cc}@<>,;"]+@[^\s\p{Cc}@<>,;"]+$/u.test(address);
}

function resolveTemplates(options: SmtpOtpSenderOptions, from: { name: string; address: string }): OtpMessageTemplates {
  if (options.templates instanceof OtpMessageTemplates) {
    if (options.appName !== undefined) {
      throw new Error('SmtpOtpSender: give `appName` to the OtpMessageTemplates instance, not to the sender.');
    }
    return options.templates;
  }
  const appName = options.templates?.appName ?? options.appName ?? (from.name || from.address.split('@')[1]!);
  return new OtpMessageTemplates({ ...options.templates, appName });
}

/**
 * Whether {@link SmtpOtpSender} insists on STARTTLS for an `smtp://` host when `tls.requireTLS`
 * is not set: `true` for every host except loopback (`localhost`, `127.0.0.0/8`, `::1`), where
 * clear text crosses no network. Names are not resolved: a name such as `mailpit`,
 * `smtp.internal` or `mail.localhost` (which not every resolver maps to loopback) counts as
 * remote even if it points at this machine, and so does any other spelling of an address
 * (`127.1`, `::ffff:7f00:1`); both err on the side of encryption.
 *
 * @param host - The host of the `smtp://` URL, without brackets (`::1`, not `[::1]`).
 */
export function defaultSmtpRequireTls(host: string): boolean {
  const name = host.toLowerCase().replace(/\.$/, '');
  if (name === 'localhost') return false;
  if (isIP(name) === 4) return !name.startsWith('127.');
  return name !== '::1';
}
