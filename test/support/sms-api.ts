import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { recordSecret } from './log-capture.js';

/** One message the fake SMS provider accepted. */
export interface ReceivedSms {
  readonly to: string;
  readonly body: string;
  /** The 6-digit code in the body. */
  readonly code: string | undefined;
}

/** A Twilio-shaped Messages API on loopback that answers after a variable delay. */
export interface SmsApi {
  readonly baseUrl: string;
  readonly messages: ReceivedSms[];
  /** Messages to one number. */
  to(number: string): ReceivedSms[];
  /** Resolves once `count` messages have arrived (background deliveries), or rejects after `timeoutMs`. */
  waitFor(count: number, timeoutMs?: number): Promise<void>;
  close(): Promise<void>;
}

/** Starts the fake provider; `latencyMs` is drawn per message, like a real provider's. */
export async function startSmsApi(latencyMs: () => number): Promise<SmsApi> {
  const messages: ReceivedSms[] = [];
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      setTimeout(() => {
        const form = new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
        const body = form.get('Body') ?? '';
        const code = /\b(\d{6})\b/.exec(body)?.[1];
        // The leak check must know every code, so a code in a log line fails the test.
        recordSecret(code);
        messages.push({ to: form.get('To') ?? '', body, code });
        res.statusCode = 201;
        res.setHeader('content-type', 'application/json');
        res.end(JSON.stringify({ sid: `SM${'0'.repeat(32)}`, status: 'queued' }));
      }, latencyMs());
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    baseUrl: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    messages,
    to: (number) => messages.filter((m) => m.to === number),
    waitFor: async (count, timeoutMs = 5000) => {
      const until = Date.now() + timeoutMs;
      while (messages.length < count) {
        if (Date.now() > until) throw new Error(`expected ${count} SMS, got ${messages.length}`);
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
    },
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
