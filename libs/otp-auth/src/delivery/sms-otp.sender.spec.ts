import type { ServerResponse } from 'node:http';
import {
  failureOf,
  freePort,
  startRecordingServer,
  type RecordingServer,
} from '../../../../test/support/network-peers.js';
import { type OtpDeliveryContext } from './otp-sender.interface.js';
import { SmsOtpSender, type SmsOtpSenderOptions } from './sms-otp.sender.js';
import { NoRecipientError, PermanentDeliveryError } from '../errors.js';

const ACCOUNT_SID = `AC${'0123456789abcdef'.repeat(2)}`;
const SERVICE_SID = `MG${'fedcba9876543210'.repeat(2)}`;
const AUTH_TOKEN = 'twilio-auth-token-value';
const context: OtpDeliveryContext = {
  purpose: 'login',
  expiresAt: new Date('2030-01-02T03:04:05.000Z'),
  ttlSeconds: 300,
};
const phones: Record<string, string> = {
  'ada@example.com': '+41 79 123 45 67',
  'bob@example.com': '0791234567',
};

describe('SmsOtpSender', () => {
  let server: RecordingServer;
  let baseUrl: string;
  /** How the server answers the next requests; `undefined` means never. */
  let answer: ((res: ServerResponse) => void) | undefined;

  const sms = (options: Partial<SmsOtpSenderOptions> = {}): SmsOtpSender =>
    new SmsOtpSender({
      accountSid: ACCOUNT_SID,
      authToken: AUTH_TOKEN,
      from: '+14155550100',
      appName: 'Acme',
      baseUrl,
      resolveRecipient: async (email) => phones[email] ?? null,
      ...options,
    });

  beforeAll(async () => {
    server = await startRecordingServer(() => answer);
    baseUrl = `${server.baseUrl}`;
  });

  afterAll(async () => {
    await server.close();
  });

  beforeEach(() => {
    server.received.length = 0;
    answer = (res) => res.writeHead(201, { 'content-type': 'application/json' }).end('{"sid":"SM1","status":"queued"}');
  });

  it('POSTs the form to the Messages endpoint with Basic auth', async () => {
    await sms().send('ada@example.com', '482913', context);

    expect(server.received).toHaveLength(1);
    const request = server.received[0]!;
    expect(request.method).toBe('POST');
    expect(request.url).toBe(`/2010-04-01/Accounts/${ACCOUNT_SID}/Messages.json`);
    expect(request.headers['content-type']).toBe('application/x-www-form-urlencoded');
    expect(request.headers.authorization).toBe(
      `Basic ${Buffer.from(`${ACCOUNT_SID}:${AUTH_TOKEN}`).toString('base64')}`,
    );
    const form = new URLSearchParams(request.body);
    expect([...form.keys()].sort()).toEqual(['Body', 'From', 'To']);
    // Separators in the number on file are dropped.
    expect(form.get('To')).toBe('+41791234567');
    expect(form.get('From')).toBe('+14155550100');
    expect(form.get('Body')).toBe("482913 is your Acme sign-in code. It expires in 5 min. Don't share it.");
    expect(/\b(\d{6})\b/.exec(form.get('Body')!)?.[1]).toBe('482913');
  });

  it('sends MessagingServiceSid instead of From, and the sms template for the locale', async () => {
    const sender = sms({
      from: undefined,
      messagingServiceSid: SERVICE_SID,
      templates: {
        messages: { login: { de: { subject: 's', text: 'lang {{code}}', sms: '{{code}} ist Ihr {{app_name}}-Code' } } },
      },
    });
    await sender.send('ada@example.com', '123456', { ...context, locale: 'de-CH' });
    const form = new URLSearchParams(server.received[0]!.body);
    expect(form.get('MessagingServiceSid')).toBe(SERVICE_SID);
    expect(form.has('From')).toBe(false);
    expect(form.get('Body')).toBe('123456 ist Ihr Acme-Code');
  });

  it('passes the context to resolveRecipient', async () => {
    const calls: [string, OtpDeliveryContext][] = [];
    await sms({
      resolveRecipient: async (email, ctx) => {
        calls.push([email, ctx]);
        return '+15550001111';
      },
    }).send('x@example.com', '1', context);
    expect(calls).toEqual([['x@example.com', context]]);
  });

  it('reports no recipient without a number on file, and fails permanently with a number that is not E.164', async () => {
    expect(sms().resolvesRecipients).toBe(true);
    const missing = await failureOf(sms().send('nobody@example.com', '1', context));
    // Not a failure: the module answers as for an unknown address (no 503).
    expect(missing).toBeInstanceOf(NoRecipientError);
    expect(missing).not.toBeInstanceOf(PermanentDeliveryError);
    expect((missing as NoRecipientError).reason).toBe('no_recipient');
    expect(missing.message).toContain('no phone number on file');

    const local = await failureOf(sms().send('bob@example.com', '1', context));
    expect(local).toBeInstanceOf(PermanentDeliveryError);
    expect(local.message).toContain('not E.164');
    expect(local.message).not.toContain('0791234567');
    expect(server.received).toHaveLength(0);
  });

  it('asks the per-number cap before each message, with the normalised number, and sends nothing when refused', async () => {
    const asked: string[] = [];
    let admit = true;
    const limited: OtpDeliveryContext = {
      ...context,
      admitRecipient: async (recipient) => {
        asked.push(recipient);
        return admit;
      },
    };
    await sms().send('ada@example.com', '482913', limited);
    admit = false;
    const refused = await failureOf(sms().send('ada@example.com', '482913', limited));
    expect(refused).toBeInstanceOf(NoRecipientError);
    expect((refused as NoRecipientError).reason).toBe('recipient_limit');
    expect(refused.message).not.toContain('791234567');
    expect(asked).toEqual(['+41791234567', '+41791234567']);
    expect(server.received).toHaveLength(1);
  });

  it('maps 400 to PermanentDeliveryError with the provider message', async () => {
    answer = (res) =>
      res
        .writeHead(400, { 'content-type': 'application/json' })
        .end(JSON.stringify({ code: 21211, message: "The 'To' number is not a valid phone number.", status: 400 }));
    const error = await failureOf(sms().send('ada@example.com', '1', context));
    expect(error).toBeInstanceOf(PermanentDeliveryError);
    expect(error.message).toBe(
      "SMS delivery failed: provider answered 400: 21211 The 'To' number is not a valid phone number.",
    );
  });

  it('keeps 429 and 5xx retryable', async () => {
    for (const status of [429, 500, 503]) {
      answer = (res) => res.writeHead(status).end('busy');
      const error = await failureOf(sms().send('ada@example.com', '1', context));
      expect(error).not.toBeInstanceOf(PermanentDeliveryError);
      expect(error.message).toBe(`SMS delivery failed: provider answered ${status}: busy`);
    }
  });

  it("keeps the recipient's number out of errors when the provider quotes it", async () => {
    answer = (res) =>
      res.writeHead(400).end(`{"code":21211,"message":"The 'To' number +41791234567 is not a valid phone number."}`);
    const invalid = await failureOf(sms().send('ada@example.com', '1', context));
    expect(invalid.message).toBe(
      "SMS delivery failed: provider answered 400: 21211 The 'To' number [recipient] is not a valid phone number.",
    );
  });

  it('does not follow redirects, which would resend the credentials', async () => {
    answer = (res) => res.writeHead(307, { location: 'http://127.0.0.2:9/elsewhere' }).end();
    const error = await failureOf(sms().send('ada@example.com', '1', context));
    expect(error).toBeInstanceOf(PermanentDeliveryError);
    expect(error.message).toContain('307');
    expect(server.received).toHaveLength(1);
  });

  it('never shows the auth token, fails retryably on timeouts and refused connections', async () => {
    // A provider echoing the token is hypothetical, but scrubbing it is cheap.
    answer = (res) => res.writeHead(401).end(`{"code":20003,"message":"Authenticate ${AUTH_TOKEN}"}`);
    const unauthorized = await failureOf(sms().send('ada@example.com', '1', context));
    expect(unauthorized).toBeInstanceOf(PermanentDeliveryError);
    expect(unauthorized.message).toBe('SMS delivery failed: provider answered 401: 20003 Authenticate ***');

    const refused = await failureOf(
      sms({ baseUrl: `http://127.0.0.1:${await freePort()}` }).send('ada@example.com', '1', context),
    );
    expect(refused).not.toBeInstanceOf(PermanentDeliveryError);
    expect(refused.message).toBe('SMS delivery failed: network error (ECONNREFUSED)');

    answer = undefined;
    const started = Date.now();
    const timeout = await failureOf(sms({ timeoutMs: 200 }).send('ada@example.com', '1', context));
    expect(Date.now() - started).toBeLessThan(2000);
    expect(timeout).not.toBeInstanceOf(PermanentDeliveryError);
    expect(timeout.message).toBe('SMS delivery failed: timed out');
    server.dropConnections();

    const basic = Buffer.from(`${ACCOUNT_SID}:${AUTH_TOKEN}`).toString('base64');
    for (const error of [unauthorized, refused, timeout]) {
      const everything = `${error.message} ${error.stack} ${String(error.cause)} ${JSON.stringify(error)}`;
      expect(everything).not.toContain(AUTH_TOKEN);
      expect(everything).not.toContain(basic);
    }
  });

  it('passes on an error of resolveRecipient', async () => {
    const failure = new Error('directory down');
    await expect(
      sms({
        resolveRecipient: async () => {
          throw failure;
        },
      }).send('ada@example.com', '1', context),
    ).rejects.toBe(failure);
  });

  it('validates its options', () => {
    const build = (options: Partial<SmsOtpSenderOptions>) => () => sms(options);
    expect(build({ accountSid: 'AC123' })).toThrow(/accountSid/);
    expect(build({ authToken: '' })).toThrow(/authToken/);
    expect(build({ messagingServiceSid: SERVICE_SID })).toThrow(/exactly one of `from`/);
    expect(build({ from: undefined })).toThrow(/exactly one of `from`/);
    expect(build({ from: '004155550100' })).toThrow(/`from` must be an E.164 number/);
    expect(build({ from: 'Acme Login Service' })).toThrow(/`from`/);
    expect(build({ from: 'Acme' })).not.toThrow();
    expect(build({ from: undefined, messagingServiceSid: 'MG1' })).toThrow(/messagingServiceSid/);
    expect(build({ resolveRecipient: undefined as never })).toThrow(/resolveRecipient/);
    expect(build({ baseUrl: 'http://api.example.com' })).toThrow(/baseUrl/);
    expect(build({ baseUrl: 'https://user:pw@api.example.com' })).toThrow(/baseUrl/);
    expect(build({ baseUrl: 'https://api.example.com/' })).not.toThrow();
    expect(build({ timeoutMs: -1 })).toThrow(/timeoutMs/);
    expect(build({ appName: undefined })).toThrow(/appName/);
    expect(build({ appName: undefined, templates: { appName: 'Acme' } })).not.toThrow();
    try {
      build({ accountSid: 'bad' })();
    } catch (error) {
      expect((error as Error).message).not.toContain(AUTH_TOKEN);
    }
  });
});
