import type { LoggerService } from '@nestjs/common';

/**
 * Every e2e app logs at every level (debug and verbose included) into {@link capturedLogs}, and
 * every secret a test sees (codes, tokens, TOTP secrets, backup codes) is recorded in
 * {@link seenSecrets}. After each test file, `test/support/leak-check.ts` fails the file if any
 * secret appears in any log line. Jest gives each test file its own module registry, so these
 * collections are per file.
 */
export const capturedLogs: string[] = [];
export const seenSecrets = new Set<string>();

function render(value: unknown): string {
  if (value instanceof Error) return `${value.name}: ${value.message}\n${value.stack ?? ''}`;
  if (typeof value === 'string') return value;
  try {
    return JSON.stringify(value);
  } catch {
    return String(value);
  }
}

/** A Nest logger that keeps every line, at every level, in {@link capturedLogs}. */
export class CapturingLogger implements LoggerService {
  private write(level: string, message: unknown, params: unknown[]): void {
    capturedLogs.push(`${level} ${[message, ...params].map(render).join(' ')}`);
  }
  log(message: unknown, ...params: unknown[]): void {
    this.write('log', message, params);
  }
  error(message: unknown, ...params: unknown[]): void {
    this.write('error', message, params);
  }
  warn(message: unknown, ...params: unknown[]): void {
    this.write('warn', message, params);
  }
  debug(message: unknown, ...params: unknown[]): void {
    this.write('debug', message, params);
  }
  verbose(message: unknown, ...params: unknown[]): void {
    this.write('verbose', message, params);
  }
  fatal(message: unknown, ...params: unknown[]): void {
    this.write('fatal', message, params);
  }
}

/** Records a secret the test saw; short strings (under 6 characters) are ignored. */
export function recordSecret(value: unknown): void {
  if (typeof value === 'string' && value.length >= 6) seenSecrets.add(value);
}

const SECRET_FIELDS = ['access_token', 'refresh_token', 'mfa_token', 'secret', 'dev_code', 'otpauth_url'];

/** Records the secrets in an auth response: tokens in the body, backup codes, the refresh cookie. */
export function recordResponseSecrets(response: {
  readonly body: unknown;
  readonly headers: Readonly<Record<string, string | string[] | undefined>>;
}): void {
  const body = response.body as Record<string, unknown> | undefined;
  if (body && typeof body === 'object') {
    for (const field of SECRET_FIELDS) recordSecret(body[field]);
    if (Array.isArray(body['backup_codes'])) for (const code of body['backup_codes']) recordSecret(code);
  }
  const raw = response.headers['set-cookie'] as unknown;
  const cookies: string[] = Array.isArray(raw) ? raw : typeof raw === 'string' ? [raw] : [];
  for (const cookie of cookies) recordSecret(/^[^=]+=([^;]*)/.exec(cookie)?.[1]);
}

/** Context of `ConsoleOtpSender`, whose job is printing codes (development only; refused in production). */
const CONSOLE_DELIVERY_CONTEXT = 'OtpAuth:console-delivery';
/** A whole signed JWT (header and payload are base64url JSON objects). */
const FULL_JWT = /eyJ[\w-]{8,}\.eyJ[\w-]{8,}\.[\w-]{16,}/;

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** Secrets that appear in the captured logs (each masked to its first 4 characters). */
export function leakedSecrets(): string[] {
  // The console sender's own line carries its code by design: blank that code, keep the rest.
  const lines = capturedLogs.map((line) =>
    line.endsWith(` ${CONSOLE_DELIVERY_CONTEXT}`) ? line.replace(/: \d+ \(valid /, ': [code] (valid ') : line,
  );
  const text = lines.join('\n');
  const leaks: string[] = [];
  const jwt = FULL_JWT.exec(text);
  if (jwt) leaks.push(`a full JWT (${jwt[0].slice(0, 8)}…)`);
  // Codes must stand alone: six digits inside a longer number (a timestamp, a port) or inside a
  // hex id (a session UUID in an audit line) are no leak.
  const matcher = (secret: string, flags = ''): RegExp =>
    new RegExp(/^\d+$/.test(secret) ? `(?<![0-9A-Za-z])${secret}(?![0-9A-Za-z])` : escapeRegExp(secret), flags);
  for (const secret of seenSecrets) {
    const pattern = matcher(secret);
    if (!pattern.test(text)) continue;
    // Where it was, with every known secret masked, so a failure can be traced without leaking any.
    let line = lines.find((l) => pattern.test(l)) ?? '';
    for (const known of seenSecrets) line = line.replace(matcher(known, 'g'), '<secret>');
    leaks.push(`${secret.slice(0, 4)}… (${secret.length} characters) in "${line.slice(0, 160)}"`);
  }
  return leaks;
}

/** Throws when {@link leakedSecrets} finds any; called after each app closes and after each file. */
export function assertNoLeakedSecrets(): void {
  const leaks = leakedSecrets();
  if (leaks.length > 0) throw new Error(`secrets appeared in the logs of this test file: ${leaks.join(', ')}`);
}
