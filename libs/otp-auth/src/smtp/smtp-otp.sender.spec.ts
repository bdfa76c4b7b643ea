import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer as createTcpServer, type AddressInfo, type Server as TcpServer, type Socket } from 'node:net';
import { networkInterfaces, tmpdir } from 'node:os';
import { join } from 'node:path';
import { SMTPServer, type SMTPServerError, type SMTPServerOptions } from 'smtp-server';
import { OtpMessageTemplates } from '../delivery/message-templates.js';
import { type OtpDeliveryContext } from '../delivery/otp-sender.interface.js';
import { defaultSmtpRequireTls, SmtpOtpSender, type SmtpOtpSenderOptions } from './smtp-otp.sender.js';
import { failureOf, freePort } from '../../../../test/support/network-peers.js';
import { PermanentDeliveryError } from '../errors.js';

/** What the server got: the envelope, whether the session was encrypted, and the raw message. */
interface ReceivedMail {
  mailFrom: string;
  rcptTo: string[];
  secure: boolean;
  user: unknown;
  raw: string;
}

/** A minimally parsed RFC 822 message: decoded headers and the decoded text/html parts. */
interface ParsedMail {
  headers: Map<string, string>;
  text: string;
  html: string;
}

const context: OtpDeliveryContext = {
  purpose: 'login',
  expiresAt: new Date('2030-01-02T03:04:05.000Z'),
  ttlSeconds: 600,
};
const PASSWORD = 'Pa$$ w/rd:@%secret';
/** Servers without TLS: the default STARTTLS offer would use smtp-server's built-in test certificate. */
const PLAIN: SMTPServerOptions = { disabledCommands: ['STARTTLS'], authOptional: true };

const servers: { close(callback: () => void): void }[] = [];
const senders: SmtpOtpSender[] = [];

/**
 * An IPv4 address of this machine that is not loopback, so a server listening there counts as
 * remote for the sender; undefined on a machine with loopback only.
 */
const nonLoopbackAddress = Object.values(networkInterfaces())
  .flat()
  .find((entry) => entry !== undefined && entry.family === 'IPv4' && !entry.internal)?.address;

/** Starts a real SMTP server on `host` (127.0.0.1 by default) and an ephemeral port. */
async function startSmtp(
  options: SMTPServerOptions,
  host = '127.0.0.1',
): Promise<{ port: number; mails: ReceivedMail[] }> {
  const mails: ReceivedMail[] = [];
  const server = new SMTPServer({
    logger: false,
    disableReverseLookup: true,
    onData(stream, session, callback) {
      const chunks: Buffer[] = [];
      stream.on('data', (chunk: Buffer) => chunks.push(chunk));
      stream.on('end', () => {
        mails.push({
          mailFrom: session.envelope.mailFrom ? session.envelope.mailFrom.address : '',
          rcptTo: session.envelope.rcptTo.map((rcpt) => rcpt.address),
          secure: session.secure,
          user: session.user,
          raw: Buffer.concat(chunks).toString('utf8'),
        });
        callback();
      });
    },
    ...options,
  });
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  return { port: (server.server.address() as AddressInfo).port, mails };
}

function sender(options: SmtpOtpSenderOptions): SmtpOtpSender {
  const created = new SmtpOtpSender(options);
  senders.push(created);
  return created;
}

function smtpError(message: string, responseCode: number): SMTPServerError {
  return Object.assign(new Error(message), { responseCode });
}

/** Enough of RFC 5322/2045/2047 for nodemailer's output: unfolded headers, QP/base64 parts, encoded words. */
function parseMail(raw: string): ParsedMail {
  const [head, ...rest] = raw.split(/\r\n\r\n/);
  const headers = parseHeaders(head!);
  const body = rest.join('\r\n\r\n');
  const boundary = /boundary="?([^";]+)"?/.exec(headers.get('content-type') ?? '')?.[1];
  const parts = boundary ? body.split(`--${boundary}`).slice(1, -1) : [`${head}\r\n\r\n${body}`];
  const parsed = { headers, text: '', html: '' };
  for (const part of parts) {
    const [partHead, ...partBody] = part.replace(/^\r\n/, '').split(/\r\n\r\n/);
    const partHeaders = parseHeaders(partHead!);
    const encoded = partBody.join('\r\n\r\n').replace(/\r\n$/, '');
    const content = decodeBody(encoded, partHeaders.get('content-transfer-encoding'));
    if (partHeaders.get('content-type')?.startsWith('text/plain')) parsed.text = content;
    if (partHeaders.get('content-type')?.startsWith('text/html')) parsed.html = content;
  }
  return parsed;
}

function parseHeaders(head: string): Map<string, string> {
  const headers = new Map<string, string>();
  for (const line of head.replace(/\r\n[ \t]+/g, ' ').split('\r\n')) {
    const colon = line.indexOf(':');
    if (colon > 0) headers.set(line.slice(0, colon).toLowerCase(), decodeWords(line.slice(colon + 1).trim()));
  }
  return headers;
}

function decodeWords(value: string): string {
  return value
    .replace(/\?=\s+=\?/g, '?==?')
    .replace(/=\?utf-8\?([bq])\?([^?]*)\?=/gi, (_, kind: string, text: string) =>
      kind.toLowerCase() === 'b'
        ? Buffer.from(text, 'base64').toString('utf8')
        : decodeQuotedPrintable(text.replace(/_/g, ' ')),
    );
}

function decodeBody(body: string, encoding: string | undefined): string {
  if (encoding === 'base64') return Buffer.from(body, 'base64').toString('utf8');
  if (encoding === 'quoted-printable') return decodeQuotedPrintable(body.replace(/=\r\n/g, ''));
  return body;
}

function decodeQuotedPrintable(text: string): string {
  const bytes: number[] = [];
  for (let i = 0; i < text.length; i++) {
    if (text[i] === '=' && /^[0-9A-F]{2}$/i.test(text.slice(i + 1, i + 3))) {
      bytes.push(parseInt(text.slice(i + 1, i + 3), 16));
      i += 2;
    } else {
      bytes.push(...Buffer.from(text[i]!, 'utf8'));
    }
  }
  return Buffer.from(bytes).toString('utf8');
}

/** The six-digit code as a reader of the plain-text part would find it. */
function codeIn(text: string): string | undefined {
  return /\b(\d{6})\b/.exec(text)?.[1];
}

afterEach(async () => {
  for (const created of senders.splice(0)) created.close();
  await Promise.all(servers.splice(0).map((server) => new Promise<void>((resolve) => server.close(resolve))));
});

describe('SmtpOtpSender', () => {
  it('delivers the code in the text and html parts with the right headers', async () => {
    const { port, mails } = await startSmtp(PLAIN);
    const smtp = sender({ url: `smtp://127.0.0.1:${port}`, from: 'Acme Login <no-reply@acme.test>' });

    await smtp.send('ada@example.com', '482913', context);

    expect(mails).toHaveLength(1);
    const mail = mails[0]!;
    expect(mail.mailFrom).toBe('no-reply@acme.test');
    expect(mail.rcptTo).toEqual(['ada@example.com']);
    const parsed = parseMail(mail.raw);
    expect(parsed.headers.get('from')).toBe('Acme Login <no-reply@acme.test>');
    expect(parsed.headers.get('to')).toBe('ada@example.com');
    // appName defaults to the display name of `from`.
    expect(parsed.headers.get('subject')).toBe('Your Acme Login sign-in code');
    expect(parsed.headers.get('auto-submitted')).toBe('auto-generated');
    expect(codeIn(parsed.text)).toBe('482913');
    expect(parsed.text).toContain('It expires in 10 minutes.');
    expect(codeIn(parsed.html)).toBe('482913');
    expect(parsed.html).toContain('<html>');
  });

  it('authenticates with the percent-encoded credentials of the URL', async () => {
    const { port, mails } = await startSmtp({
      disabledCommands: ['STARTTLS'],
      allowInsecureAuth: true,
      onAuth(auth, _session, callback) {
        if (auth.username === 'mailer@acme.test' && auth.password === PASSWORD) return callback(null, { user: 'ok' });
        callback(smtpError('Invalid username or password', 535));
      },
    });
    const url = `smtp://${encodeURIComponent('mailer@acme.test')}:${encodeURIComponent(PASSWORD)}@127.0.0.1:${port}`;
    const smtp = sender({ url, from: 'no-reply@acme.test', appName: 'Acme' });

    await smtp.send('ada@example.com', '123456', context);

    expect(mails).toHaveLength(1);
    expect(mails[0]!.user).toBe('ok');
    expect(codeIn(parseMail(mails[0]!.raw).text)).toBe('123456');
  });

  it('never puts the password in an error, even when the server echoes it', async () => {
    const { port } = await startSmtp({
      disabledCommands: ['STARTTLS'],
      allowInsecureAuth: true,
      onAuth(auth, _session, callback) {
        callback(
          smtpError(
            `Wrong password ${auth.password ?? ''} (${Buffer.from(auth.password ?? '').toString('base64')})`,
            535,
          ),
        );
      },
    });
    const url = `smtp://mailer:${encodeURIComponent(PASSWORD)}@127.0.0.1:${port}`;
    const error = await failureOf(sender({ url, from: 'no-reply@acme.test' }).send('ada@example.com', '1', context));

    expect(error.message).toContain('SMTP delivery failed (EAUTH, 535)');
    // A refused login is the sender's setup, not this message: retryable.
    expect(error).not.toBeInstanceOf(PermanentDeliveryError);
    expect(error.message).toContain('Wrong password ***');
    const everything = `${error.message} ${error.stack} ${JSON.stringify(error)} ${String(error.cause)}`;
    expect(everything).not.toContain(PASSWORD);
    expect(everything).not.toContain(encodeURIComponent(PASSWORD));
    expect(everything).not.toContain(Buffer.from(PASSWORD).toString('base64'));
  });

  it('uses template overrides for the recipient locale and escapes the app name in html', async () => {
    const { port, mails } = await startSmtp(PLAIN);
    const smtp = sender({
      url: `smtp://127.0.0.1:${port}`,
      from: { name: 'Acme', address: 'no-reply@acme.test' },
      appName: '<b>&"',
      templates: {
        messages: {
          login: {
            de: {
              subject: 'Ihr Anmeldecode für {{app_name}}',
              text: 'Ihr Code: {{code}}, gültig {{minutes}} Minuten.',
              html: '<p>Ihr Code für {{app_name}}: <strong>{{code}}</strong></p>',
            },
          },
        },
      },
    });

    await smtp.send('ada@example.com', '246810', { ...context, locale: 'de-CH' });
    await smtp.send('bob@example.com', '135790', context);

    const german = parseMail(mails[0]!.raw);
    expect(german.headers.get('subject')).toBe('Ihr Anmeldecode für <b>&"');
    expect(german.text).toBe('Ihr Code: 246810, gültig 10 Minuten.');
    expect(german.html).toBe('<p>Ihr Code für &lt;b&gt;&amp;&quot;: <strong>246810</strong></p>');
    const english = parseMail(mails[1]!.raw);
    expect(english.headers.get('subject')).toBe('Your <b>&" sign-in code');
    expect(english.html).toContain('Your sign-in code for &lt;b&gt;&amp;&quot; is:');
    expect(english.html).not.toContain('<b>&"');
    expect(codeIn(english.text)).toBe('135790');
  });

  it('accepts a ready OtpMessageTemplates instance', async () => {
    const { port, mails } = await startSmtp(PLAIN);
    const templates = new OtpMessageTemplates({
      appName: 'Acme',
      messages: { '*': { default: { subject: 'Code {{purpose}}', text: 'Code {{code}}' } } },
    });
    await sender({ url: `smtp://127.0.0.1:${port}`, from: 'no-reply@acme.test', templates }).send(
      'a@b.test',
      '111222',
      {
        ...context,
        purpose: 'totp-setup',
      },
    );
    expect(parseMail(mails[0]!.raw).headers.get('subject')).toBe('Code totp-setup');
    expect(() => new SmtpOtpSender({ url: 'smtp://h', from: 'a@b.test', templates, appName: 'X' })).toThrow(/appName/);
  });

  it('maps a 550 recipient rejection to PermanentDeliveryError', async () => {
    const { port, mails } = await startSmtp({
      ...PLAIN,
      onRcptTo(_address, _session, callback) {
        callback(smtpError('5.1.1 No such user here', 550));
      },
    });
    const error = await failureOf(
      sender({ url: `smtp://127.0.0.1:${port}`, from: 'no-reply@acme.test' }).send('nobody@example.com', '1', context),
    );

    expect(error).toBeInstanceOf(PermanentDeliveryError);
    expect(error.message).toMatch(/\(EENVELOPE, 550\).*No such user here/);
    expect(mails).toHaveLength(0);
  });

  it('maps a 5xx reply to the message to PermanentDeliveryError', async () => {
    const { port } = await startSmtp({
      ...PLAIN,
      onData(stream, _session, callback) {
        stream.resume();
        stream.on('end', () => callback(smtpError('5.7.1 Message rejected as spam', 554)));
      },
    });
    const error = await failureOf(
      sender({ url: `smtp://127.0.0.1:${port}`, from: 'no-reply@acme.test' }).send('a@example.com', '1', context),
    );
    expect(error).toBeInstanceOf(PermanentDeliveryError);
    expect(error.message).toContain('554');
  });

  it('keeps a 451 reply retryable', async () => {
    const { port } = await startSmtp({
      ...PLAIN,
      onRcptTo(_address, _session, callback) {
        callback(smtpError('4.7.1 Greylisted, try again later', 451));
      },
    });
    const error = await failureOf(
      sender({ url: `smtp://127.0.0.1:${port}`, from: 'no-reply@acme.test' }).send('a@example.com', '1', context),
    );

    expect(error).not.toBeInstanceOf(PermanentDeliveryError);
    expect(error.message).toMatch(/451.*Greylisted/);
  });

  it('fails fast and retryably on a closed port', async () => {
    const port = await freePort();
    const started = Date.now();
    const error = await failureOf(
      sender({ url: `smtp://127.0.0.1:${port}`, from: 'no-reply@acme.test', timeoutMs: 1000 }).send(
        'a@example.com',
        '1',
        context,
      ),
    );
    expect(Date.now() - started).toBeLessThan(1000);
    expect(error).not.toBeInstanceOf(PermanentDeliveryError);
    expect(error.message).toMatch(/ESOCKET|ECONNREFUSED/);
  });

  it('gives up within timeoutMs on a server that never greets', async () => {
    const sockets: Socket[] = [];
    const silent: TcpServer = createTcpServer((socket) => sockets.push(socket));
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    servers.push({
      close: (callback) => {
        for (const socket of sockets) socket.destroy();
        silent.close(() => callback());
      },
    });
    const started = Date.now();
    const error = await failureOf(
      sender({
        url: `smtp://127.0.0.1:${(silent.address() as AddressInfo).port}`,
        from: 'no-reply@acme.test',
        timeoutMs: 300,
      }).send('a@example.com', '1', context),
    );
    const elapsed = Date.now() - started;
    expect(elapsed).toBeGreaterThanOrEqual(250);
    expect(elapsed).toBeLessThan(2000);
    expect(error).not.toBeInstanceOf(PermanentDeliveryError);
    expect(error.message).toContain('ETIMEDOUT');
  });

  it('refuses to go on in clear text when requireTLS is set and STARTTLS is not offered', async () => {
    const { port, mails } = await startSmtp(PLAIN);
    const smtp = sender({ url: `smtp://127.0.0.1:${port}`, from: 'no-reply@acme.test', tls: { requireTLS: true } });
    const error = await failureOf(smtp.send('a@example.com', '1', context));
    expect(error).not.toBeInstanceOf(PermanentDeliveryError);
    expect(error.message).toMatch(/STARTTLS/i);
    expect(mails).toHaveLength(0);
  });

  describe('STARTTLS required by default to every host but loopback', () => {
    it.each([
      ['mail.example.com', true],
      ['MAILPIT', true],
      ['smtp.internal', true],
      ['10.0.0.5', true],
      ['192.0.2.2', true],
      ['128.0.0.1', true],
      ['127.evil.example', true],
      ['fd00::2', true],
      // Other spellings of loopback are not recognised, which errs towards encryption.
      ['127.1', true],
      ['::ffff:7f00:1', true],
      ['mail.localhost', true],
      ['localhost', false],
      ['LocalHost', false],
      ['localhost.', false],
      ['127.0.0.1', false],
      ['127.5.6.7', false],
      ['::1', false],
    ])('%s → %s', (host, expected) => {
      expect(defaultSmtpRequireTls(host)).toBe(expected);
    });

    const remote = (name: string, test: (address: string) => Promise<void>) =>
      it(name, async () => {
        if (!nonLoopbackAddress) {
          console.warn(`skipped "${name}": this machine has no non-loopback IPv4 address`);
          return;
        }
        await test(nonLoopbackAddress);
      });

    remote('refuses clear text to a non-loopback server without STARTTLS, with no credentials', async (address) => {
      const { port, mails } = await startSmtp(PLAIN, address);
      const smtp = sender({ url: `smtp://${address}:${port}`, from: 'no-reply@acme.test' });
      const error = await failureOf(smtp.send('a@example.com', '271828', context));
      // Retryable: the code is withdrawn and the client gets a 503, like any outage.
      expect(error).not.toBeInstanceOf(PermanentDeliveryError);
      expect(error.message).toMatch(/STARTTLS/i);
      expect(error.message).not.toContain('271828');
      expect(mails).toHaveLength(0);
    });

    remote('sends in clear text to that server with the explicit opt-out tls.requireTLS: false', async (address) => {
      const { port, mails } = await startSmtp(PLAIN, address);
      const smtp = sender({ url: `smtp://${address}:${port}`, from: 'no-reply@acme.test', tls: { requireTLS: false } });
      await smtp.send('a@example.com', '161803', context);
      expect(mails).toHaveLength(1);
      expect(mails[0]!.secure).toBe(false);
      expect(codeIn(parseMail(mails[0]!.raw).text)).toBe('161803');
    });
  });

  it('gives every attempt at one message the same Message-ID, from its deliveryId', async () => {
    const { port, mails } = await startSmtp(PLAIN);
    const smtp = sender({ url: `smtp://127.0.0.1:${port}`, from: 'no-reply@acme.test' });
    const deliveryId = '6f1c1f55-3a4e-4d8e-9a57-0c4c3c1f2b10';
    await smtp.send('a@example.com', '111111', { ...context, deliveryId });
    await smtp.send('a@example.com', '111111', { ...context, deliveryId });
    await smtp.send('a@example.com', '222222', { ...context, deliveryId: 'not <a> valid id' });
    const ids = mails.map((mail) => parseMail(mail.raw).headers.get('message-id'));
    expect(ids[0]).toBe(`<${deliveryId}@acme.test>`);
    expect(ids[1]).toBe(ids[0]);
    // An id that cannot be part of a Message-ID is left out; nodemailer makes one up.
    expect(ids[2]).toMatch(/^<[^<>\s]+@[^<>\s]+>$/);
    expect(ids[2]).not.toBe(ids[0]);
  });

  it('reuses pooled connections, survives idle timeouts and closes', async () => {
    let connections = 0;
    const { port, mails } = await startSmtp({
      ...PLAIN,
      onConnect(_session, callback) {
        connections++;
        callback();
      },
    });
    const smtp = sender({
      url: `smtp://127.0.0.1:${port}`,
      from: 'no-reply@acme.test',
      pool: { maxConnections: 1 },
      timeoutMs: 300,
    });

    await Promise.all(['100001', '100002', '100003'].map((code, i) => smtp.send(`u${i}@example.com`, code, context)));
    expect(connections).toBe(1);
    // Longer than the socket timeout: the idle pooled connection goes away without a crash.
    await new Promise((resolve) => setTimeout(resolve, 500));
    await smtp.send('late@example.com', '100004', context);

    expect(mails.map((mail) => codeIn(parseMail(mail.raw).text)).sort()).toEqual([
      '100001',
      '100002',
      '100003',
      '100004',
    ]);
    smtp.close();
  });

  it('rejects an address that could smuggle in more recipients, without connecting', async () => {
    const smtp = sender({ url: 'smtp://127.0.0.1:1', from: 'no-reply@acme.test' });
    for (const email of [
      'a@example.com, b@example.com',
      'A <a@example.com>',
      'a@example.com\r\nBcc: b@example.com',
      'nobody',
    ]) {
      await expect(smtp.send(email, '1', context)).rejects.toBeInstanceOf(PermanentDeliveryError);
    }
  });

  it('validates its options with messages that never show the password', () => {
    const build = (options: Partial<SmtpOtpSenderOptions>) => () =>
      new SmtpOtpSender({ url: 'smtp://mail.example.com', from: 'no-reply@acme.test', ...options });
    const secretUrls = [
      'http://user:s3cretpw@mail.example.com',
      'smtp://user:s3cretpw@mail.example.com/path',
      'smtp://user:s3cretpw@mail.example.com?pool=true',
      'smtp://user:s3cretpw@[mail.example.com',
      'smtp://user:s3cretpw%zz@mail.example.com',
    ];
    for (const url of secretUrls) {
      expect(build({ url })).toThrow(/^SmtpOtpSender: `url` .*expected smtp:\/\//);
      try {
        build({ url })();
      } catch (error) {
        expect((error as Error).message).not.toContain('s3cretpw');
      }
    }
    expect(build({ url: 'smtp://user:pw@mail.example.com?pool=true' })).toThrow(/query/);
    expect(build({ url: '' })).toThrow(/`url` is required/);
    expect(build({ from: 'not an address' })).toThrow(/`from`/);
    expect(build({ from: 'a@b.test, c@d.test' })).toThrow(/`from`/);
    expect(build({ from: { address: 'a@b.test\r\nBcc: x@y.test' } })).toThrow(/`from`/);
    expect(build({ timeoutMs: 0 })).toThrow(/timeoutMs/);
    expect(build({ tls: { minVersion: 'TLSv1' as never } })).toThrow(/minVersion/);
    expect(build({ pool: { maxConnections: 0 } })).toThrow(/pool\.maxConnections/);
    expect(build({ templates: { messages: { login: { default: { subject: 's', text: 'no code' } } } } })).toThrow(
      /must contain \{\{code\}\}/,
    );
    expect(build({ url: 'smtps://u:p@[::1]:465', pool: true, tls: { ca: ['x'] } })).not.toThrow();
  });

  describe('with TLS', () => {
    let certificate: { key: Buffer; cert: Buffer } | undefined;

    beforeAll(() => {
      // Node cannot create X.509 certificates; openssl can, where it is installed.
      const dir = mkdtempSync(join(tmpdir(), 'smtp-otp-'));
      try {
        execFileSync(
          'openssl',
          ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1']
            .concat(['-subj', '/CN=localhost', '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost'])
            .concat(['-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem')]),
          { stdio: 'ignore' },
        );
        certificate = { key: readFileSync(join(dir, 'key.pem')), cert: readFileSync(join(dir, 'cert.pem')) };
      } catch {
        certificate = undefined;
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });

    const withCertificate = (name: string, test: (cert: { key: Buffer; cert: Buffer }) => Promise<void>) =>
      it(name, async () => {
        if (!certificate) {
          console.warn(`skipped "${name}": openssl is not available`);
          return;
        }
        await test(certificate);
      });

    withCertificate('upgrades with STARTTLS and verifies the server against `ca`', async ({ key, cert }) => {
      const { port, mails } = await startSmtp({ key, cert, authOptional: true });
      const smtp = sender({
        url: `smtp://127.0.0.1:${port}`,
        from: 'no-reply@acme.test',
        tls: { ca: cert, requireTLS: true, minVersion: 'TLSv1.3' },
      });
      await smtp.send('a@example.com', '314159', context);
      expect(mails[0]!.secure).toBe(true);
      expect(codeIn(parseMail(mails[0]!.raw).text)).toBe('314159');
    });

    withCertificate('speaks TLS from the start for smtps:// and sends the credentials', async ({ key, cert }) => {
      const { port, mails } = await startSmtp({
        key,
        cert,
        secure: true,
        onAuth(auth, _session, callback) {
          callback(null, { user: auth.username === 'u' && auth.password === PASSWORD ? 'ok' : 'wrong' });
        },
      });
      const smtp = sender({
        url: `smtps://u:${encodeURIComponent(PASSWORD)}@127.0.0.1:${port}`,
        from: 'no-reply@acme.test',
        tls: { ca: cert },
      });
      await smtp.send('a@example.com', '271828', context);
      expect(mails[0]!.secure).toBe(true);
      expect(mails[0]!.user).toBe('ok');
    });

    withCertificate('refuses a certificate it cannot verify, retryably', async ({ key, cert }) => {
      const { port, mails } = await startSmtp({ key, cert, authOptional: true });
      const smtp = sender({ url: `smtp://127.0.0.1:${port}`, from: 'no-reply@acme.test' });
      const error = await failureOf(smtp.send('a@example.com', '1', context));
      expect(error).not.toBeInstanceOf(PermanentDeliveryError);
      expect(error.message).toMatch(/certificate/i);
      expect(mails).toHaveLength(0);
    });
  });
});
