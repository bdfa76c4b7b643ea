import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { INestApplication } from '@nestjs/common';
import { createApp } from '../apps/sample/src/bootstrap.js';
import { loadConfig } from '../apps/sample/src/config.js';
import { freePort } from './support/network-peers.js';

/**
 * Debian's nginx in front of the sample app: `auth_request` asks `GET /auth/verify` before every
 * request to a protected location and passes the identity on to the upstream. CI installs
 * nginx-light and sets OTP_REQUIRE_NGINX=1, so there this test cannot be skipped.
 */
const NGINX = '/usr/sbin/nginx';
const nginxPresent = spawnSync(NGINX, ['-v']).status === 0;
if (!nginxPresent) {
  const message = `nginx e2e: ${NGINX} not found (apt-get install nginx-light); the auth_request test is SKIPPED.`;
  if (process.env['OTP_REQUIRE_NGINX'] === '1') throw new Error(message);
  console.warn(message);
}

/** The configuration the README shows, with ports and paths filled in. */
function nginxConfig(dir: string, port: number, appPort: number, backendPort: number): string {
  return `
worker_processes 1;
daemon off;
user root;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
events { worker_connections 64; }
http {
  access_log off;
  client_body_temp_path ${dir}/body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;

  upstream otp_auth { server 127.0.0.1:${appPort}; }
  upstream backend { server 127.0.0.1:${backendPort}; }

  server {
    listen 127.0.0.1:${port};

    # Sign-in endpoints, passed through.
    location /auth/ { proxy_pass http://otp_auth; }

    # The check nginx makes before each protected request; not reachable from outside.
    location = /_otp_verify {
      internal;
      proxy_pass http://otp_auth/auth/verify;
      proxy_pass_request_body off;
      proxy_set_header Content-Length "";
      proxy_set_header X-Original-URI $request_uri;
    }

    # Any upstream, protected: only requests with a live access token get through.
    location /api/ {
      auth_request /_otp_verify;
      auth_request_set $auth_user $upstream_http_x_auth_user;
      auth_request_set $auth_claims $upstream_http_x_auth_claims;
      proxy_set_header X-Auth-User $auth_user;
      proxy_set_header X-Auth-Claims $auth_claims;
      proxy_pass http://backend;
    }
  }
}
`;
}

async function listen(server: Server): Promise<number> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return (server.address() as AddressInfo).port;
}

(nginxPresent ? describe : describe.skip)('nginx auth_request in front of the sample app', () => {
  let app: INestApplication;
  let backend: Server;
  let nginx: ChildProcess;
  let dir: string;
  let base: string;
  const seen: IncomingHttpHeaders[] = [];

  beforeAll(async () => {
    const config = loadConfig({
      DATABASE_URL: 'sqlite::memory:',
      COOKIE_SECURE: 'false',
      LOG_LEVEL: 'error',
      OTP_DEVELOPER_MODE: 'true',
    });
    app = await createApp(config);
    await app.listen(0, '127.0.0.1');
    const appPort = (app.getHttpServer().address() as AddressInfo).port;

    backend = createServer((req, res) => {
      seen.push(req.headers);
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ upstream: 'reached', path: req.url }));
    });
    const backendPort = await listen(backend);

    dir = mkdtempSync(join(tmpdir(), 'otp-nginx-'));
    const port = await freePort();
    writeFileSync(join(dir, 'nginx.conf'), nginxConfig(dir, port, appPort, backendPort));
    nginx = spawn(NGINX, ['-p', dir, '-c', join(dir, 'nginx.conf')], { stdio: 'ignore' });
    base = `http://127.0.0.1:${port}`;
    for (let i = 0; i < 100; i += 1) {
      if (
        await fetch(`${base}/api/ping`).then(
          () => true,
          () => false,
        )
      )
        return;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    throw new Error(`nginx did not start: ${readFileSync(join(dir, 'error.log'), 'utf8')}`);
  });

  afterAll(async () => {
    nginx?.kill('SIGQUIT');
    await new Promise((resolve) => (nginx ? nginx.once('exit', resolve) : resolve(undefined)));
    await new Promise((resolve) => backend?.close(resolve));
    await app?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('refuses a protected location without a token, admits it with one, and refuses it after logout', async () => {
    const anonymous = await fetch(`${base}/api/orders`);
    expect(anonymous.status).toBe(401);
    expect(seen).toHaveLength(0);

    const json = { 'content-type': 'application/json' };
    const email = 'behind-nginx@example.com';
    const requested = await fetch(`${base}/auth/request-otp`, {
      method: 'POST',
      headers: json,
      body: JSON.stringify({ email }),
    });
    const { dev_code: code } = (await requested.json()) as { dev_code: string };
    const verified = await fetch(`${base}/auth/verify-otp`, {
      method: 'POST',
      headers: json,
      body: JSON.stringify({ email, code }),
    });
    expect(verified.status).toBe(200);
    const { access_token: token } = (await verified.json()) as { access_token: string };

    const admitted = await fetch(`${base}/api/orders`, { headers: { authorization: `Bearer ${token}` } });
    expect(admitted.status).toBe(200);
    expect(await admitted.json()).toEqual({ upstream: 'reached', path: '/api/orders' });
    const forwarded = seen.at(-1)!;
    const claims = JSON.parse(Buffer.from(String(forwarded['x-auth-claims']), 'base64url').toString()) as {
      sub: string;
      amr: string[];
    };
    expect(forwarded['x-auth-user']).toBe(claims.sub);
    expect(claims.amr).toEqual(['otp']);
    // Identity headers a client sends itself are replaced by nginx with the verified ones.
    const spoofed = await fetch(`${base}/api/orders`, {
      headers: { authorization: `Bearer ${token}`, 'x-auth-user': 'admin', 'x-auth-claims': 'e30' },
    });
    expect(spoofed.status).toBe(200);
    expect(seen.at(-1)!['x-auth-user']).toBe(claims.sub);
    expect(seen.at(-1)!['x-auth-claims']).toBe(forwarded['x-auth-claims']);

    await fetch(`${base}/auth/logout`, { method: 'POST', headers: { authorization: `Bearer ${token}` } });
    const afterLogout = await fetch(`${base}/api/orders`, { headers: { authorization: `Bearer ${token}` } });
    expect(afterLogout.status).toBe(401);
    expect(seen).toHaveLength(2);
  });
});
