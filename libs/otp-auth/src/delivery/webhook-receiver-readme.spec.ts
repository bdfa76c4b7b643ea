import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { OtpDeliveryContext } from './otp-sender.interface.js';
import {
  signWebhookBody,
  WEBHOOK_SIGNATURE_HEADER,
  WEBHOOK_TIMESTAMP_HEADER,
  WebhookOtpSender,
} from './webhook-otp.sender.js';

/** The signature of the README's `receiveOtpWebhook`. */
type ReceiveOtpWebhook = (
  headers: Record<string, string | string[] | undefined>,
  rawBody: Buffer | string,
  deliver: (email: string, code: string) => Promise<void>,
) => Promise<number>;

const SECRET = 'readme-receiver-secret-0123456789abcdef';
const README = new URL('../../README.md', import.meta.url);
const context: OtpDeliveryContext = { purpose: 'login', expiresAt: new Date(Date.now() + 600_000), ttlSeconds: 600 };

/**
 * The receiver of the library README, run as written: the block after the
 * `readme-test:webhook-receiver` marker is copied to a temporary module and imported, so the
 * documented code, not a copy of it, is what these tests exercise.
 */
async function loadReadmeReceiver(): Promise<ReceiveOtpWebhook> {
  const readme = readFileSync(README, 'utf8');
  const block = /<!-- readme-test:webhook-receiver -->\n```ts\n([\s\S]*?)```/.exec(readme)?.[1];
  if (!block) throw new Error('libs/otp-auth/README.md lost its "readme-test:webhook-receiver" block');
  const dir = mkdtempSync(join(tmpdir(), 'readme-receiver-'));
  try {
    const file = join(dir, 'receiver.ts');
    writeFileSync(file, block);
    // ESM like the library's own files (`"type": "module"`), so ts-jest emits import/export.
    writeFileSync(join(dir, 'package.json'), '{"type":"module"}');
    const loaded = (await import(pathToFileURL(file).href)) as { receiveOtpWebhook?: ReceiveOtpWebhook };
    if (typeof loaded.receiveOtpWebhook !== 'function')
      throw new Error('the README block exports no receiveOtpWebhook');
    return loaded.receiveOtpWebhook;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** A signed request as WebhookOtpSender would send it. */
function signed(fields: Record<string, string>, timestamp = Math.floor(Date.now() / 1000).toString()) {
  const body = JSON.stringify({
    purpose: 'login',
    expires_at: context.expiresAt.toISOString(),
    email: 'ada@example.com',
    code: '123456',
    ...fields,
  });
  return {
    body,
    headers: {
      [WEBHOOK_TIMESTAMP_HEADER]: timestamp,
      [WEBHOOK_SIGNATURE_HEADER]: signWebhookBody(SECRET, timestamp, body),
    } as Record<string, string | string[] | undefined>,
  };
}

describe('the webhook receiver of the README', () => {
  let receive: ReceiveOtpWebhook;
  let delivered: { email: string; code: string }[];
  const deliver = async (email: string, code: string) => void delivered.push({ email, code });
  const previousSecret = process.env['OTP_WEBHOOK_SECRET'];

  beforeAll(async () => {
    process.env['OTP_WEBHOOK_SECRET'] = SECRET;
    receive = await loadReadmeReceiver();
  });
  afterAll(() => {
    if (previousSecret === undefined) delete process.env['OTP_WEBHOOK_SECRET'];
    else process.env['OTP_WEBHOOK_SECRET'] = previousSecret;
  });
  beforeEach(() => {
    delivered = [];
  });

  it('answers 401, without throwing, to a missing, malformed, wrong or stale signature', async () => {
    const { body, headers } = signed({ delivery_id: 'd-401' });
    const stale = signed({ delivery_id: 'd-401' }, String(Math.floor(Date.now() / 1000) - 301));
    const attempts: Record<string, string | string[] | undefined>[] = [
      {},
      { [WEBHOOK_TIMESTAMP_HEADER]: headers[WEBHOOK_TIMESTAMP_HEADER] },
      { ...headers, [WEBHOOK_SIGNATURE_HEADER]: 'garbage' },
      { ...headers, [WEBHOOK_SIGNATURE_HEADER]: 'sha256=' },
      { ...headers, [WEBHOOK_SIGNATURE_HEADER]: ['a', 'b'] },
      {
        ...headers,
        [WEBHOOK_SIGNATURE_HEADER]: signWebhookBody('wrong', headers[WEBHOOK_TIMESTAMP_HEADER] as string, body),
      },
      { ...headers, [WEBHOOK_TIMESTAMP_HEADER]: 'now' },
    ];
    for (const attempt of attempts) expect(await receive(attempt, body, deliver)).toBe(401);
    expect(await receive(stale.headers, stale.body, deliver)).toBe(401);
    expect(await receive(headers, body.replace('123456', '000000'), deliver)).toBe(401);
    expect(delivered).toEqual([]);
    // The same request, intact, goes through.
    expect(await receive(headers, Buffer.from(body), deliver)).toBe(204);
    expect(delivered).toEqual([{ email: 'ada@example.com', code: '123456' }]);
  });

  it('sends each delivery id once, and again only after a failed attempt', async () => {
    const first = signed({ delivery_id: 'd-once' });
    expect(await receive(first.headers, first.body, deliver)).toBe(204);
    // A retry: re-signed with a later timestamp, same delivery id.
    const retry = signed({ delivery_id: 'd-once' }, String(Math.floor(Date.now() / 1000) + 1));
    expect(await receive(retry.headers, retry.body, deliver)).toBe(204);
    expect(delivered).toHaveLength(1);
    const next = signed({ delivery_id: 'd-next', code: '654321' });
    expect(await receive(next.headers, next.body, deliver)).toBe(204);
    expect(delivered.map((d) => d.code)).toEqual(['123456', '654321']);

    const failing = signed({ delivery_id: 'd-fails' });
    expect(await receive(failing.headers, failing.body, () => Promise.reject(new Error('sms down')))).toBe(503);
    expect(await receive(failing.headers, failing.body, deliver)).toBe(204);
    expect(delivered).toHaveLength(3);
  });

  describe('behind HTTP, fed by WebhookOtpSender', () => {
    let server: Server;
    let url: string;
    const received: IncomingHttpHeaders[] = [];
    /** How long the receiver holds each answer, per request (first request first). */
    let holdMs: number[] = [];
    /** Answers still being held, awaited before the server closes. */
    const answering: Promise<void>[] = [];

    beforeAll(async () => {
      server = createServer((req, res) => {
        const chunks: Buffer[] = [];
        req.on('data', (chunk: Buffer) => chunks.push(chunk));
        req.on('end', () => {
          received.push(req.headers);
          const hold = holdMs.shift() ?? 0;
          answering.push(
            receive(req.headers, Buffer.concat(chunks), deliver).then(
              (status) =>
                new Promise<void>((resolve) => setTimeout(() => resolve(void res.writeHead(status).end()), hold)),
            ),
          );
        });
      });
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/otp`;
    });
    afterAll(async () => {
      await Promise.all(answering);
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    });

    it('sends once when the first answer is lost and the sender retries the same message', async () => {
      received.length = 0;
      // The first answer comes too late for the sender, which tries again; the SMS went out already.
      holdMs = [600, 0];
      const sender = new WebhookOtpSender({ url, secret: SECRET, timeoutMs: 200, retryDelayMs: 1 });
      await sender.send('grace@example.com', '246810', { ...context, deliveryId: 'd-http' });
      expect(received).toHaveLength(2);
      expect(delivered).toEqual([{ email: 'grace@example.com', code: '246810' }]);
    });
  });
});
