import { createServer, type IncomingHttpHeaders, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { OtpDeliveryContext } from './otp-sender.interface.js';
import {
  signWebhookBody,
  WEBHOOK_SIGNATURE_HEADER,
  WEBHOOK_TIMESTAMP_HEADER,
  WebhookOtpSender,
} from './webhook-otp.sender.js';

interface Received {
  method: string | undefined;
  url: string | undefined;
  headers: IncomingHttpHeaders;
  body: string;
}

const SECRET = 'webhook-secret';
const context: OtpDeliveryContext = {
  purpose: 'login',
  expiresAt: new Date('2030-01-02T03:04:05.000Z'),
  ttlSeconds: 600,
};

describe('WebhookOtpSender', () => {
  let server: Server;
  let url: string;
  const received: Received[] = [];
  /** How the server answers the next requests; `undefined` means never. */
  let answer: ((res: ServerResponse) => void) | undefined;

  beforeAll(async () => {
    server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (chunk: Buffer) => chunks.push(chunk));
      req.on('end', () => {
        received.push({
          method: req.method,
          url: req.url,
          headers: req.headers,
          body: Buffer.concat(chunks).toString('utf8'),
        });
        answer?.(res);
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`;
  });

  afterAll(async () => {
    server.closeAllConnections();
    await new Promise<void>((resolve, reject) => server.close((error) => (error ? reject(error) : resolve())));
  });

  beforeEach(() => {
    received.length = 0;
    answer = (res) => res.writeHead(204).end();
  });

  it('POSTs the signed JSON body', async () => {
    const sender = new WebhookOtpSender({ url, secret: SECRET });
    const before = Math.floor(Date.now() / 1000);
    await sender.send('user@example.com', '123456', context);
    const after = Math.floor(Date.now() / 1000);

    expect(received).toHaveLength(1);
    const request = received[0]!;
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

  it('rejects when the webhook answers 500', async () => {
    answer = (res) => res.writeHead(500).end('boom');
    const sender = new WebhookOtpSender({ url, secret: SECRET });
    await expect(sender.send('user@example.com', '123456', context)).rejects.toThrow('500');
    expect(received).toHaveLength(1);
  });

  it('rejects within timeoutMs when the webhook never answers', async () => {
    answer = undefined;
    const sender = new WebhookOtpSender({ url, secret: SECRET, timeoutMs: 200 });
    const started = Date.now();
    await expect(sender.send('user@example.com', '123456', context)).rejects.toThrow();
    const elapsed = Date.now() - started;
    expect(elapsed).toBeGreaterThanOrEqual(150);
    expect(elapsed).toBeLessThan(2000);
    server.closeAllConnections();
  });

  it('rejects a non-http URL and an empty secret', () => {
    expect(() => new WebhookOtpSender({ url: 'ftp://example.com/hook', secret: SECRET })).toThrow(/url/);
    expect(() => new WebhookOtpSender({ url: 'example.com/hook', secret: SECRET })).toThrow(/url/);
    expect(() => new WebhookOtpSender({ url, secret: '' })).toThrow(/secret/);
    expect(() => new WebhookOtpSender({ url: 'https://example.com/hook', secret: SECRET })).not.toThrow();
  });
});
