import type { IncomingMessage } from 'node:http';
import { Controller, Get, type INestApplication, Module, Req } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { FastifyAdapter, type NestFastifyApplication } from '@nestjs/platform-fastify';
import request from 'supertest';
import {
  compileTrustProxy,
  rateLimitKeyForIp,
  rateLimitKeysForIpv6Prefixes,
  resolveClientIp,
  type TrustProxy,
} from './client-ip.js';

/** The parts of a Node request the resolver reads. */
function req(remoteAddress: string | undefined, forwardedFor?: unknown): IncomingMessage {
  const headers = forwardedFor === undefined ? {} : { 'x-forwarded-for': forwardedFor };
  return { socket: { remoteAddress }, headers } as unknown as IncomingMessage;
}

const PROXY: TrustProxy = ['127.0.0.1'];

describe('resolveClientIp', () => {
  it('ignores X-Forwarded-For by default: a client rotating it keeps one key', () => {
    const keys = new Set(
      ['1.1.1.1', '2.2.2.2, 3.3.3.3', '2001:db8::1', 'garbage'].map((xff) =>
        rateLimitKeyForIp(resolveClientIp(req('198.51.100.7', xff))!),
      ),
    );
    expect([...keys]).toEqual(['198.51.100.7']);
    expect(resolveClientIp(req('198.51.100.7', '1.1.1.1'), false)).toBe('198.51.100.7');
  });

  it('behind a trusted proxy, takes the right-most address the proxy did not write itself', () => {
    expect(resolveClientIp(req('127.0.0.1', '203.0.113.9'), PROXY)).toBe('203.0.113.9');
    // The client prepends whatever it likes; the proxy appends what it saw.
    expect(resolveClientIp(req('127.0.0.1', '6.6.6.6, 7.7.7.7, 203.0.113.9'), PROXY)).toBe('203.0.113.9');
    expect(resolveClientIp(req('127.0.0.1', '127.0.0.1, 203.0.113.9'), PROXY)).toBe('203.0.113.9');
    // A request that did not come through the proxy: its header is not believed.
    expect(resolveClientIp(req('192.0.2.1', '203.0.113.9'), PROXY)).toBe('192.0.2.1');
    // No header: the proxy itself.
    expect(resolveClientIp(req('127.0.0.1'), PROXY)).toBe('127.0.0.1');
  });

  it('reads hops written with a port, as some gateways do', () => {
    expect(resolveClientIp(req('127.0.0.1', '203.0.113.9:5678'), PROXY)).toBe('203.0.113.9');
    expect(resolveClientIp(req('127.0.0.1', '[2001:db8::1]:443'), PROXY)).toBe('2001:db8::1');
    expect(resolveClientIp(req('127.0.0.1', '[2001:db8::2]'), PROXY)).toBe('2001:db8::2');
  });

  it('walks through a chain of trusted CIDRs', () => {
    const chain: TrustProxy = ['127.0.0.1', '10.0.0.0/8', 'fd00::/8'];
    expect(resolveClientIp(req('127.0.0.1', '1.1.1.1, 203.0.113.9, 10.1.2.3, fd00::5'), chain)).toBe('203.0.113.9');
  });

  it('trusts a number of hops', () => {
    expect(resolveClientIp(req('10.0.0.1', '6.6.6.6, 203.0.113.9'), 1)).toBe('203.0.113.9');
    expect(resolveClientIp(req('10.0.0.1', '6.6.6.6, 203.0.113.9'), 2)).toBe('6.6.6.6');
    expect(resolveClientIp(req('10.0.0.1', '203.0.113.9'), 5)).toBe('203.0.113.9');
    expect(resolveClientIp(req('10.0.0.1', '203.0.113.9'), 0)).toBe('10.0.0.1');
  });

  it('gives IPv4-mapped IPv6 addresses as IPv4', () => {
    expect(resolveClientIp(req('::ffff:198.51.100.7'))).toBe('198.51.100.7');
    expect(resolveClientIp(req('::ffff:127.0.0.1', '::ffff:203.0.113.9'), PROXY)).toBe('203.0.113.9');
    expect(resolveClientIp(req('::FFFF:c633:6407'))).toBe('198.51.100.7');
    expect(resolveClientIp(req('2001:db8::1'))).toBe('2001:db8::1');
  });

  it.each<[string, unknown]>([
    ['not an address', 'garbage'],
    ['only separators', ' , ,, '],
    ['five octets', '1.2.3.4.5'],
    ['a port that is not a number', '203.0.113.9:https'],
    ['non-ASCII', '２０３.0.113.9'],
    ['a huge header', '1.1.1.1,'.repeat(5000)],
    ['not a string', ['203.0.113.9']],
    ['a number', 42],
  ])('does not throw on a malformed header (%s), nor let it name the client', (_label, header) => {
    const ip = resolveClientIp(req('127.0.0.1', header), PROXY);
    expect(ip === '127.0.0.1' || ip === '1.1.1.1').toBe(true);
  });

  it('reads the raw request of a Fastify request', () => {
    expect(resolveClientIp({ raw: req('127.0.0.1', '203.0.113.9') }, PROXY)).toBe('203.0.113.9');
  });

  it('gives undefined when the socket is gone', () => {
    expect(resolveClientIp(req(undefined, '203.0.113.9'), PROXY)).toBeUndefined();
  });

  it.each<[string, unknown]>([
    ['true', true],
    ['a negative number', -1],
    ['a fraction', 1.5],
    ['an invalid CIDR', ['10.0.0.0/33']],
    ['not an address', ['example.com']],
  ])('rejects %s as trustProxy', (_label, setting) => {
    expect(() => compileTrustProxy(setting as TrustProxy)).toThrow(TypeError);
  });

  it('compiles a list once', () => {
    expect(compileTrustProxy(PROXY)).toBe(compileTrustProxy(PROXY));
    expect(compileTrustProxy(3)).toBe(compileTrustProxy(3));
    expect(compileTrustProxy(false)).toBeUndefined();
  });
});

describe('rateLimitKeysForIpv6Prefixes', () => {
  it('keys IPv6 by /56 and /48 as well, whatever the spelling', () => {
    expect(rateLimitKeysForIpv6Prefixes('2001:db8:1:2a3::1')).toEqual({
      prefix56: '2001:db8:1:200::/56',
      prefix48: '2001:db8:1::/48',
    });
    // Another /64 of the same /56, and of the same /48 only.
    expect(rateLimitKeysForIpv6Prefixes('2001:0DB8:0001:02ff:ffff::')).toEqual({
      prefix56: '2001:db8:1:200::/56',
      prefix48: '2001:db8:1::/48',
    });
    expect(rateLimitKeysForIpv6Prefixes('2001:db8:1:300::1')?.prefix56).toBe('2001:db8:1:300::/56');
    expect(rateLimitKeysForIpv6Prefixes('2001:db8:2::1')?.prefix48).toBe('2001:db8:2::/48');
  });

  it('has no prefixes for IPv4, IPv4-mapped IPv6 or non-addresses', () => {
    expect(rateLimitKeysForIpv6Prefixes('203.0.113.9')).toBeUndefined();
    expect(rateLimitKeysForIpv6Prefixes('::ffff:203.0.113.9')).toBeUndefined();
    expect(rateLimitKeysForIpv6Prefixes('garbage')).toBeUndefined();
  });
});

describe('rateLimitKeyForIp', () => {
  it('keys IPv4 by the full address', () => {
    expect(rateLimitKeyForIp('203.0.113.9')).toBe('203.0.113.9');
    expect(rateLimitKeyForIp('203.0.113.10')).not.toBe(rateLimitKeyForIp('203.0.113.9'));
  });

  it('keys IPv6 by the /64 prefix, whatever the spelling', () => {
    const key = rateLimitKeyForIp('2001:db8:1:2::1');
    expect(key).toBe('2001:db8:1:2::/64');
    for (const same of [
      '2001:db8:1:2:ffff:ffff:ffff:ffff',
      '2001:0DB8:0001:0002:0000:0000:0000:0001',
      '2001:db8:1:2:a:b:1.2.3.4',
      '2001:db8:1:2::1%eth0',
    ]) {
      expect(rateLimitKeyForIp(same)).toBe(key);
    }
    expect(rateLimitKeyForIp('2001:db8:1:3::1')).toBe('2001:db8:1:3::/64');
    expect(rateLimitKeyForIp('::1')).toBe('0:0:0:0::/64');
    expect(rateLimitKeyForIp('2001:db8::')).toBe('2001:db8:0:0::/64');
  });

  it('keys IPv4-mapped IPv6 as IPv4, and passes anything else through', () => {
    expect(rateLimitKeyForIp('::ffff:203.0.113.9')).toBe('203.0.113.9');
    expect(rateLimitKeyForIp('::ffff:cb00:7109')).toBe('203.0.113.9');
    expect(rateLimitKeyForIp('unknown')).toBe('unknown');
  });
});

// Through real Express and Fastify requests (Nest's @Req()), over a real socket from 127.0.0.1.
@Controller()
class IpController {
  @Get('ip/untrusted')
  untrusted(@Req() request: IncomingMessage | { raw: IncomingMessage }): { ip?: string } {
    return { ip: resolveClientIp(request) };
  }

  @Get('ip/trusted')
  trusted(@Req() request: IncomingMessage | { raw: IncomingMessage }): { ip?: string } {
    return { ip: resolveClientIp(request, ['loopback']) };
  }
}

@Module({ controllers: [IpController] })
class IpModule {}

describe.each(['express', 'fastify'] as const)('resolveClientIp on %s', (platform) => {
  let app: INestApplication;

  beforeAll(async () => {
    if (platform === 'fastify') {
      app = await NestFactory.create<NestFastifyApplication>(IpModule, new FastifyAdapter(), { logger: false });
      await app.init();
      await (app as NestFastifyApplication).getHttpAdapter().getInstance().ready();
    } else {
      app = await NestFactory.create(IpModule, { logger: false });
      await app.init();
    }
  });

  afterAll(async () => {
    await app.close();
  });

  it('uses the socket address unless the proxy is trusted', async () => {
    const server = app.getHttpServer();
    const untrusted = await request(server).get('/ip/untrusted').set('X-Forwarded-For', '6.6.6.6, 203.0.113.9');
    expect(untrusted.body).toEqual({ ip: '127.0.0.1' });
    const trusted = await request(server).get('/ip/trusted').set('X-Forwarded-For', '6.6.6.6, 203.0.113.9');
    expect(trusted.body).toEqual({ ip: '203.0.113.9' });
  });
});
