import { jest } from '@jest/globals';
import type { ServerResponse } from 'node:http';
import {
  failureOf,
  freePort,
  startRecordingServer,
  type RecordingServer,
} from '../../../../test/support/network-peers.js';
import { PermanentDeliveryError, type OtpDeliveryContext } from './otp-sender.interface.js';
import {
  signWebhookBody,
  WEBHOOK_SIGNATURE_HEADER,
  WEBHOOK_TIMESTAMP_HEADER,
  WebhookOtpSender,
} from './webhook-otp.sender.js';

const SECRET = 'webhook-secret';
const context: OtpDeliveryContext = {
  purpose: 'login',
  expiresAt: new Date('2030-01-02T03:04:05.000Z'),
  ttlSeconds: 600,
};

describe('WebhookOtpSender', () => {
  let server: RecordingServer;
  let url: string;
  /** How the server answers the next requests; `undefined` means never. */
  let answer: ((res: ServerResponse) => void) | undefined;

  beforeAll(async () => {
    server = await startRecordingServer(() => answer);
    url = `${server.baseUrl}/hook`;
  });

  afterAll(async () => {
    await server.close();
  });

  beforeEach(() => {
    server.received.length = 0;
    answer = (res) => res.writeHead(204).end();
  });

  it('POSTs the signed JSON body', async () => {
    const sender = new WebhookOtpSender({ url, secret: SECRET });
    const before = Math.floor(Date.now() / 1000);
    await sender.send('user@example.com', '123456', context);
    const after = Math.floor(Date.now() / 1000);

    expect(server.received).toHaveLength(1);
    const request = server.received[0]!;
    expect(request.method).toBe('POST');
    expect(request.url).toBe('/hook');
    expect(request.headers['content-type']).toBe('application/json');
    expect(JSON.parse(request.body)).toEqual({
      email: 'user@example.com',
      code: '123456',
      purpose: 'login',
      expires_at: '2030-01-02T03:04:05.000Z',
    });

    const timestamp = request.headers[WEBHOOK_TIMESTAMP_HEADER];
    expect(WEBHOOK_TIMESTAMP_HEADER).toBe('x-otp-timestamp');
    expect(WEBHOOK_SIGNATURE_HEADER).toBe('x-otp-signature');
    expect(typeof timestamp).toBe('string');
    expect(Number(timestamp)).toBeGreaterThanOrEqual(before);
    expect(Number(timestamp)).toBeLessThanOrEqual(after);
    expect(request.headers[WEBHOOK_SIGNATURE_HEADER]).toBe(signWebhookBody(SECRET, timestamp as string, request.body));
    expect(request.headers[WEBHOOK_SIGNATURE_HEADER]).toMatch(/^sha256=[0-9a-f]{64}$/);
    // Signed with this secret, not another.
    expect(request.headers[WEBHOOK_SIGNATURE_HEADER]).not.toBe(
      signWebhookBody('other-secret', timestamp as string, request.body),
    );
  });

  it('adds the locale to the body when the client gave one', async () => {
    await new WebhookOtpSender({ url, secret: SECRET }).send('user@example.com', '123456', {
      ...context,
      locale: 'de-CH',
    });
    expect(JSON.parse(server.received[0]!.body)).toEqual({
      email: 'user@example.com',
      code: '123456',
      purpose: 'login',
      expires_at: '2030-01-02T03:04:05.000Z',
      locale: 'de-CH',
    });
  });

  it('rejects when the webhook keeps answering 500, after the default two retries', async () => {
    answer = (res) => res.writeHead(500).end('boom');
    const sender = new WebhookOtpSender({ url, secret: SECRET, retryDelayMs: 1 });
    const error = await failureOf(sender.send('user@example.com', '123456', context));
    expect(error.message).toBe('webhook answered 500 (3 attempts)');
    expect(error).not.toBeInstanceOf(PermanentDeliveryError);
    expect(server.received).toHaveLength(3);
  });

  it('retries after failures, re-signing each attempt, until one succeeds', async () => {
    const statuses = [503, 429];
    answer = (res) => res.writeHead(statuses.shift() ?? 204).end();
    // Each request moves the clock on by a second, so each attempt must carry a new timestamp.
    const realNow = Date.now.bind(Date);
    const clock = jest.spyOn(Date, 'now').mockImplementation(() => realNow() + server.received.length * 1000);
    try {
      const started = realNow();
      await new WebhookOtpSender({ url, secret: SECRET, retryDelayMs: 40 }).send('user@example.com', '123456', context);
      // Backoff: 20–40 ms, then 40–80 ms.
      expect(realNow() - started).toBeGreaterThanOrEqual(55);
    } finally {
      clock.mockRestore();
    }

    expect(server.received).toHaveLength(3);
    const timestamps = server.received.map((request) => request.headers[WEBHOOK_TIMESTAMP_HEADER] as string);
    expect(new Set(timestamps).size).toBe(3);
    for (const request of server.received) {
      expect(request.body).toBe(server.received[0]!.body);
      expect(request.headers[WEBHOOK_SIGNATURE_HEADER]).toBe(
        signWebhookBody(SECRET, request.headers[WEBHOOK_TIMESTAMP_HEADER] as string, request.body),
      );
    }
  });

  it('fails permanently at once on 400 and on a redirect', async () => {
    const sender = new WebhookOtpSender({ url, secret: SECRET, retryDelayMs: 1 });
    answer = (res) => res.writeHead(400).end('bad request');
    const badRequest = await failureOf(sender.send('user@example.com', '123456', context));
    expect(badRequest).toBeInstanceOf(PermanentDeliveryError);
    expect(badRequest.message).toBe('webhook answered 400');
    expect(server.received).toHaveLength(1);

    // Following it would hand the code to another URL.
    answer = (res) => res.writeHead(307, { location: `${url}-moved` }).end();
    const redirect = await failureOf(sender.send('user@example.com', '123456', context));
    expect(redirect).toBeInstanceOf(PermanentDeliveryError);
    expect(redirect.message).toBe('webhook answered 307');
    expect(server.received).toHaveLength(2);
  });

  it('honours a short Retry-After and gives up on a long one', async () => {
    const sender = new WebhookOtpSender({ url, secret: SECRET, retryDelayMs: 1 });
    let first = true;
    answer = (res) => {
      if (!first) return void res.writeHead(204).end();
      first = false;
      res.writeHead(429, { 'retry-after': '1' }).end();
    };
    const started = Date.now();
    await sender.send('user@example.com', '123456', context);
    expect(Date.now() - started).toBeGreaterThanOrEqual(900);
    expect(server.received).toHaveLength(2);

    server.received.length = 0;
    answer = (res) => res.writeHead(429, { 'retry-after': '3600' }).end();
    const error = await failureOf(sender.send('user@example.com', '123456', context));
    expect(error.message).toBe('webhook answered 429 (Retry-After 3600 s is too long to wait)');
    expect(error).not.toBeInstanceOf(PermanentDeliveryError);
    expect(server.received).toHaveLength(1);
  });

  it('retries a refused connection and reports the attempts', async () => {
    const port = await freePort();
    const sender = new WebhookOtpSender({
      url: `http://127.0.0.1:${port}/hook`,
      secret: SECRET,
      retries: 1,
      retryDelayMs: 1,
    });
    const error = await failureOf(sender.send('user@example.com', '123456', context));
    expect(error.message).toBe('webhook request failed (2 attempts)');
    expect(error).not.toBeInstanceOf(PermanentDeliveryError);
    expect(error.cause).toBeDefined();
  });

  it('gives each attempt its own timeout', async () => {
    let calls = 0;
    // The first request hangs; the retry is answered.
    answer = (res) => {
      if (++calls > 1) res.writeHead(204).end();
    };
    const started = Date.now();
    await new WebhookOtpSender({ url, secret: SECRET, timeoutMs: 200, retryDelayMs: 1 }).send(
      'user@example.com',
      '123456',
      context,
    );
    expect(Date.now() - started).toBeGreaterThanOrEqual(150);
    expect(server.received).toHaveLength(2);
  });

  it('rejects within timeoutMs when the webhook never answers', async () => {
    answer = undefined;
    const sender = new WebhookOtpSender({ url, secret: SECRET, timeoutMs: 200, retries: 0 });
    const started = Date.now();
    await expect(sender.send('user@example.com', '123456', context)).rejects.toThrow();
    const elapsed = Date.now() - started;
    expect(elapsed).toBeGreaterThanOrEqual(150);
    expect(elapsed).toBeLessThan(2000);
    server.dropConnections();
  });

  it('rejects a non-http URL and an empty secret', () => {
    expect(() => new WebhookOtpSender({ url: 'ftp://example.com/hook', secret: SECRET })).toThrow(/url/);
    expect(() => new WebhookOtpSender({ url: 'example.com/hook', secret: SECRET })).toThrow(/url/);
    expect(() => new WebhookOtpSender({ url, secret: '' })).toThrow(/secret/);
    expect(() => new WebhookOtpSender({ url: 'https://example.com/hook', secret: SECRET })).not.toThrow();
  });

  it('validates timeoutMs, retries and retryDelayMs', () => {
    const build = (options: object) => () => new WebhookOtpSender({ url, secret: SECRET, ...options });
    expect(build({ timeoutMs: 0 })).toThrow(/timeoutMs/);
    expect(build({ retries: -1 })).toThrow(/retries/);
    expect(build({ retries: 1.5 })).toThrow(/retries/);
    expect(build({ retries: 11 })).toThrow(/retries/);
    expect(build({ retryDelayMs: -5 })).toThrow(/retryDelayMs/);
    expect(build({ retries: 0, retryDelayMs: 0 })).not.toThrow();
  });
});
