import { randomBytes } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { networkInterfaces } from 'node:os';
import type { INestApplication } from '@nestjs/common';
import request from 'supertest';
import { SMTPServer } from 'smtp-server';
import { createApp } from '../apps/sample/src/bootstrap.js';
import { loadConfig, type Environment } from '../apps/sample/src/config.js';
import { CapturingLogger, recordSecret } from './support/log-capture.js';
import { tapSecrets } from './support/test-app.js';

/**
 * STARTTLS required to SMTP servers off this host (issue 13, item 7), end to end through the
 * sample app: a server that does not offer STARTTLS gets no code in clear text, the code is
 * withdrawn and the client gets 503; `SMTP_REQUIRE_TLS=false` is the explicit way back.
 */

/** An IPv4 address of this machine other than loopback: a server there counts as remote. */
const remoteAddress = Object.values(networkInterfaces())
  .flat()
  .find((entry) => entry !== undefined && entry.family === 'IPv4' && !entry.internal)?.address;

async function bootSample(env: Environment): Promise<INestApplication> {
  const config = loadConfig({
    DATABASE_URL: 'sqlite::memory:',
    COOKIE_SECURE: 'false',
    LOG_LEVEL: 'verbose',
    OTP_AUTH_SECRET: randomBytes(32).toString('hex'),
    OTP_DELIVERY: 'smtp',
    SMTP_FROM: 'Sample <no-reply@example.com>',
    ...env,
  });
  const app = await createApp(config, new CapturingLogger());
  await app.init();
  return app;
}

describe('sample app: SMTP without STARTTLS', () => {
  const mails: string[] = [];
  const servers: SMTPServer[] = [];

  /** A plain SMTP server (no STARTTLS offered) on `host`; its URL. */
  async function plainSmtp(host: string): Promise<string> {
    const server = new SMTPServer({
      logger: false,
      disableReverseLookup: true,
      disabledCommands: ['STARTTLS'],
      authOptional: true,
      onData(stream, _session, callback) {
        const chunks: Buffer[] = [];
        stream.on('data', (chunk: Buffer) => chunks.push(chunk));
        stream.on('end', () => {
          const raw = Buffer.concat(chunks).toString('utf8');
          recordSecret(
            /\b(\d{6})\b/.exec(
              raw
                .split(/\r?\n\r?\n/)
                .slice(1)
                .join('\n'),
            )?.[1],
          );
          mails.push(raw);
          callback();
        });
      },
    });
    servers.push(server);
    await new Promise<void>((resolve) => server.listen(0, host, resolve));
    return `smtp://${host}:${(server.server.address() as AddressInfo).port}`;
  }

  beforeEach(() => {
    mails.length = 0;
  });
  afterAll(async () => {
    await Promise.all(servers.map((server) => new Promise<void>((resolve) => server.close(resolve))));
  });

  /** Two requests for one address: both 503 (the first code was withdrawn, so no cooldown answers 429). */
  async function expectRefusedTwice(app: INestApplication, email: string): Promise<void> {
    const http = () => tapSecrets(request(app.getHttpServer()));
    const first = await http().post('/auth/request-otp').send({ email });
    expect(first.status).toBe(503);
    expect(first.body.message).toBe('The code could not be sent. Please try again later.');
    await http().post('/auth/request-otp').send({ email }).expect(503);
    expect(mails).toHaveLength(0);
  }

  it('with SMTP_REQUIRE_TLS=true, even on loopback: 503 and the code withdrawn', async () => {
    const app = await bootSample({ SMTP_URL: await plainSmtp('127.0.0.1'), SMTP_REQUIRE_TLS: 'true' });
    try {
      await expectRefusedTwice(app, 'forced@example.com');
    } finally {
      await app.close();
    }
  });

  const remote = (name: string, test: (address: string) => Promise<void>) =>
    it(name, async () => {
      if (!remoteAddress) {
        console.warn(`skipped "${name}": this machine has no non-loopback IPv4 address`);
        return;
      }
      await test(remoteAddress);
    });

  remote('to another host, by default: 503 and the code withdrawn', async (address) => {
    const app = await bootSample({ SMTP_URL: await plainSmtp(address) });
    try {
      await expectRefusedTwice(app, 'remote@example.com');
    } finally {
      await app.close();
    }
  });

  remote(
    'to another host with SMTP_REQUIRE_TLS=false: delivered in clear text, and the code signs in',
    async (address) => {
      const app = await bootSample({ SMTP_URL: await plainSmtp(address), SMTP_REQUIRE_TLS: 'false' });
      try {
        const http = () => tapSecrets(request(app.getHttpServer()));
        const email = 'optout@example.com';
        await http().post('/auth/request-otp').send({ email }).expect(200);
        expect(mails).toHaveLength(1);
        const code = /\b(\d{6})\b/.exec(
          mails[0]!
            .split(/\r?\n\r?\n/)
            .slice(1)
            .join('\n'),
        )![1]!;
        await http().post('/auth/verify-otp').send({ email, code }).expect(200);
      } finally {
        await app.close();
      }
    },
  );
});
