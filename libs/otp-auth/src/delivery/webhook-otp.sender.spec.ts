import { jest } from '@jest/globals';
import type { ServerResponse } from 'node:http';
import {
  failureOf,
  freePort,
  startRecordingServer,
  type RecordingServer,
} from '../../../../test/support/network-peers.js';
import { type OtpDeliveryContext } from './otp-sender.interface.js';
import {
  signWebhookBody,
  verifyWebhookRequest,
  WEBHOOK_SIGNATURE_HEADER,
  WEBHOOK_TIMESTAMP_HEADER,
  WebhookOtpSender,
} from './webhook-otp.sender.js';
import { PermanentDeliveryError } from '../errors.js';

const SECRET = 'webhook-secret';
const context: OtpDeliveryContext = {
  purpose: 'login',
  expiresAt: new Date('2030-01-02T03:04:05.000Z'),
  ttlSeconds: 600,
};
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
/** The `delivery_id` of a recorded request's body. */
const deliveryIdOf = (request: { body: string }): unknown =>
  (JSON.parse(request.body) as Record<string, unknown>).delivery_id;

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
      // The context has no deliveryId here: the sender makes one up.
      delivery_id: expect.stringMatching(UUID),
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
      deliveryId: 'delivery-1',
    });
    expect(JSON.parse(server.received[0]!.body)).toEqual({
      delivery_id: 'delivery-1',
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
      await new WebhookOtpSender({ url, secret: SECRET, retryDelayMs: 40 }).send('user@example.com', '123456', {
        ...context,
        deliveryId: 'b7e0c2de-5d0c-4a55-8d7e-2f1e9a4b6c31',
      });
      // Backoff: 20–40 ms, then 40–80 ms.
      expect(realNow() - started).toBeGreaterThanOrEqual(55);
    } finally {
      clock.mockRestore();
    }

    expect(server.received).toHaveLength(3);
    const timestamps = server.received.map((request) => request.headers[WEBHOOK_TIMESTAMP_HEADER] as string);
    expect(new Set(timestamps).size).toBe(3);
    for (const request of server.received) {
      // The same message, so the same signed delivery id: the receiver can drop repeats.
      expect(deliveryIdOf(request)).toBe('b7e0c2de-5d0c-4a55-8d7e-2f1e9a4b6c31');
      expect(request.body).toBe(server.received[0]!.body);
      expect(request.headers[WEBHOOK_SIGNATURE_HEADER]).toBe(
        signWebhookBody(SECRET, request.headers[WEBHOOK_TIMESTAMP_HEADER] as string, request.body),
      );
    }
  });

  it('without a deliveryId in the context, gives each send() its own id, kept across its retries', async () => {
    const statuses = [503, 204, 500, 204];
    answer = (res) => res.writeHead(statuses.shift() ?? 204).end();
    const sender = new WebhookOtpSender({ url, secret: SECRET, retryDelayMs: 1 });
    await sender.send('user@example.com', '123456', context);
    await sender.send('user@example.com', '123456', context);

    const ids = server.received.map(deliveryIdOf);
    expect(ids).toHaveLength(4);
    expect(ids[0]).toMatch(UUID);
    expect(ids[1]).toBe(ids[0]);
    expect(ids[2]).toMatch(UUID);
    expect(ids[3]).toBe(ids[2]);
    expect(ids[2]).not.toBe(ids[0]);
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

describe('verifyWebhookRequest', () => {
  const NOW = Date.UTC(2030, 0, 1, 12, 0, 0);
  const now = () => NOW;
  const timestamp = String(NOW / 1000);
  const body = JSON.stringify({
    delivery_id: '0d9a7c1e-52b4-4b8f-9f0e-6a2d3c4b5a61',
    email: 'user@example.com',
    code: '123456',
    purpose: 'login',
    expires_at: '2030-01-01T12:10:00.000Z',
  });
  const headersFor = (text: string, at = timestamp): Record<string, string> => ({
    [WEBHOOK_TIMESTAMP_HEADER]: at,
    [WEBHOOK_SIGNATURE_HEADER]: signWebhookBody(SECRET, at, text),
  });
  const delivery = {
    deliveryId: '0d9a7c1e-52b4-4b8f-9f0e-6a2d3c4b5a61',
    email: 'user@example.com',
    code: '123456',
    purpose: 'login',
    expiresAt: '2030-01-01T12:10:00.000Z',
  };

  it('returns the delivery of a request signed with the secret, from Node or fetch headers, string or Buffer body', () => {
    expect(verifyWebhookRequest(SECRET, headersFor(body), body, { now })).toEqual(delivery);
    expect(verifyWebhookRequest(SECRET, headersFor(body), Buffer.from(body), { now })).toEqual(delivery);
    expect(verifyWebhookRequest(SECRET, new Headers(headersFor(body)), body, { now })).toEqual(delivery);
    const withLocale = JSON.stringify({ ...JSON.parse(body), locale: 'de-CH' });
    expect(verifyWebhookRequest(SECRET, headersFor(withLocale), withLocale, { now })).toEqual({
      ...delivery,
      locale: 'de-CH',
    });
  });

  it('accepts what WebhookOtpSender really sends', async () => {
    let answer: ((res: ServerResponse) => void) | undefined = (res) => res.writeHead(204).end();
    const server = await startRecordingServer(() => answer);
    try {
      await new WebhookOtpSender({ url: `${server.baseUrl}/hook`, secret: SECRET }).send('user@example.com', '654321', {
        ...context,
        deliveryId: 'delivery-42',
      });
      const request = server.received[0]!;
      expect(verifyWebhookRequest(SECRET, request.headers, request.body)).toMatchObject({
        deliveryId: 'delivery-42',
        code: '654321',
      });
    } finally {
      answer = undefined;
      await server.close();
    }
  });

  it('refuses, without throwing, missing, repeated or malformed headers', () => {
    const good = headersFor(body);
    const signature = good[WEBHOOK_SIGNATURE_HEADER]!;
    const cases: Record<string, unknown>[] = [
      {},
      { [WEBHOOK_TIMESTAMP_HEADER]: timestamp },
      { [WEBHOOK_SIGNATURE_HEADER]: signature },
      { ...good, [WEBHOOK_SIGNATURE_HEADER]: '' },
      { ...good, [WEBHOOK_SIGNATURE_HEADER]: 'sha256=' },
      { ...good, [WEBHOOK_SIGNATURE_HEADER]: signature.slice(0, -1) },
      { ...good, [WEBHOOK_SIGNATURE_HEADER]: `${signature}0` },
      { ...good, [WEBHOOK_SIGNATURE_HEADER]: signature.toUpperCase() },
      { ...good, [WEBHOOK_SIGNATURE_HEADER]: signature.replace('sha256=', 'sha1=') },
      { ...good, [WEBHOOK_SIGNATURE_HEADER]: `${signature.slice(0, -1)}g` },
      { ...good, [WEBHOOK_SIGNATURE_HEADER]: [signature, signature] },
      { ...good, [WEBHOOK_SIGNATURE_HEADER]: `${signature}, ${signature}` },
      { ...good, [WEBHOOK_SIGNATURE_HEADER]: 42 },
      { ...good, [WEBHOOK_TIMESTAMP_HEADER]: '' },
      { ...good, [WEBHOOK_TIMESTAMP_HEADER]: 'yesterday' },
      { ...good, [WEBHOOK_TIMESTAMP_HEADER]: `${timestamp}.5` },
      { ...good, [WEBHOOK_TIMESTAMP_HEADER]: '1e9' },
      { ...good, [WEBHOOK_TIMESTAMP_HEADER]: [timestamp, timestamp] },
    ];
    for (const headers of cases) {
      expect(verifyWebhookRequest(SECRET, headers as never, body, { now })).toBeUndefined();
    }
    expect(verifyWebhookRequest(SECRET, null as never, body, { now })).toBeUndefined();
    expect(verifyWebhookRequest(SECRET, good, 42 as never, { now })).toBeUndefined();
    const repeated = new Headers(good);
    repeated.append(WEBHOOK_SIGNATURE_HEADER, signature);
    expect(verifyWebhookRequest(SECRET, repeated, body, { now })).toBeUndefined();
    // A request header that happens to be called "get" does not pass for fetch's Headers.
    expect(verifyWebhookRequest(SECRET, { ...good, get: 'x' }, body, { now })).toEqual(delivery);
  });

  it('refuses another secret, a changed body or a changed timestamp', () => {
    const good = headersFor(body);
    expect(verifyWebhookRequest('other-secret', good, body, { now })).toBeUndefined();
    expect(verifyWebhookRequest(SECRET, good, body.replace('123456', '123457'), { now })).toBeUndefined();
    expect(verifyWebhookRequest(SECRET, good, `${body} `, { now })).toBeUndefined();
    const moved = { ...good, [WEBHOOK_TIMESTAMP_HEADER]: String(NOW / 1000 - 1) };
    expect(verifyWebhookRequest(SECRET, moved, body, { now })).toBeUndefined();
  });

  it('refuses a timestamp outside the window (default five minutes either way)', () => {
    const at = (offsetSeconds: number) => String(NOW / 1000 + offsetSeconds);
    for (const offset of [-300, 300, 0]) {
      expect(verifyWebhookRequest(SECRET, headersFor(body, at(offset)), body, { now })).toEqual(delivery);
    }
    for (const offset of [-301, 301, -86_400]) {
      expect(verifyWebhookRequest(SECRET, headersFor(body, at(offset)), body, { now })).toBeUndefined();
    }
    const options = { now, toleranceSeconds: 30 };
    expect(verifyWebhookRequest(SECRET, headersFor(body, at(-30)), body, options)).toEqual(delivery);
    expect(verifyWebhookRequest(SECRET, headersFor(body, at(-31)), body, options)).toBeUndefined();
  });

  it('refuses a correctly signed body that is not a delivery', () => {
    for (const text of [
      'not json',
      'null',
      '[]',
      '"text"',
      JSON.stringify({ ...JSON.parse(body), delivery_id: undefined }),
      JSON.stringify({ ...JSON.parse(body), delivery_id: '' }),
      JSON.stringify({ ...JSON.parse(body), delivery_id: 7 }),
      JSON.stringify({ ...JSON.parse(body), code: 123456 }),
      JSON.stringify({ ...JSON.parse(body), email: undefined }),
      JSON.stringify({ ...JSON.parse(body), locale: ['de'] }),
    ]) {
      expect(verifyWebhookRequest(SECRET, headersFor(text), text, { now })).toBeUndefined();
    }
  });

  it('throws on a configuration mistake rather than accepting everything', () => {
    expect(() => verifyWebhookRequest('', headersFor(body), body)).toThrow(/secret/);
    expect(() => verifyWebhookRequest(SECRET, headersFor(body), body, { toleranceSeconds: -1 })).toThrow(
      /toleranceSeconds/,
    );
    expect(() => verifyWebhookRequest(SECRET, headersFor(body), body, { toleranceSeconds: NaN })).toThrow(
      /toleranceSeconds/,
    );
  });
});
