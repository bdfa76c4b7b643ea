import 'reflect-metadata';
import { ForbiddenException, UnsupportedMediaTypeException, type ExecutionContext } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import { ExecutionContextHost } from '@nestjs/core/helpers/execution-context-host.js';
import type { ResolvedOtpAuthOptions } from '../options/resolve-options.js';
import {
  AcceptsBodyTypes,
  JsonBodyGuard,
  mediaTypeOf,
  RefreshCookieOriginGuard,
  SetsRefreshCookie,
} from './request-guards.js';

class Routes {
  @SetsRefreshCookie()
  signIn(): void {}
  plain(): void {}
  @AcceptsBodyTypes('application/json', 'application/x-www-form-urlencoded')
  introspect(): void {}
}

interface FakeRequest {
  method: string;
  headers: Record<string, string | undefined>;
}

function context(request: FakeRequest, handler: () => void): ExecutionContext {
  return new ExecutionContextHost([request, {}], Routes as never, handler);
}

function config(delivery: 'cookie' | 'body' | 'both', allowedOrigins: string[] = []): ResolvedOtpAuthOptions {
  return { refreshTokenDelivery: delivery, cookie: { allowedOrigins } } as unknown as ResolvedOtpAuthOptions;
}

const post = (headers: Record<string, string | undefined>): FakeRequest => ({
  method: 'POST',
  headers: { host: 'api.example', ...headers },
});

describe('mediaTypeOf', () => {
  it.each([
    [undefined, undefined],
    ['application/json', 'application/json'],
    ['Application/JSON ; Charset=UTF-8', 'application/json'],
    ['text/plain;charset=utf-8', 'text/plain'],
    ['', ''],
  ])('%p → %p', (header, type) => {
    expect(mediaTypeOf(header)).toBe(type);
  });
});

describe('RefreshCookieOriginGuard', () => {
  const reflector = new Reflector();

  it.each([
    ['Sec-Fetch-Site: cross-site', { 'sec-fetch-site': 'cross-site' }],
    ['a foreign Origin', { origin: 'https://evil.example' }],
    ['Origin: null', { origin: 'null' }],
  ])('refuses %s on a marked route in cookie and both modes', (_, headers) => {
    for (const delivery of ['cookie', 'both'] as const) {
      const guard = new RefreshCookieOriginGuard(config(delivery), reflector);
      expect(() => guard.canActivate(context(post(headers), Routes.prototype.signIn))).toThrow(ForbiddenException);
    }
  });

  it('admits same-origin, listed and header-less requests, unmarked routes, and body mode', () => {
    const guard = new RefreshCookieOriginGuard(config('cookie', ['https://app.example']), reflector);
    for (const headers of [
      {},
      { origin: 'https://api.example', 'sec-fetch-site': 'same-origin' },
      { origin: 'https://app.example', 'sec-fetch-site': 'cross-site' },
    ]) {
      expect(guard.canActivate(context(post(headers), Routes.prototype.signIn))).toBe(true);
    }
    const evil = post({ origin: 'https://evil.example' });
    expect(guard.canActivate(context(evil, Routes.prototype.plain))).toBe(true);
    const bodyMode = new RefreshCookieOriginGuard(config('body'), reflector);
    expect(bodyMode.canActivate(context(evil, Routes.prototype.signIn))).toBe(true);
  });
});

describe('JsonBodyGuard', () => {
  const guard = new JsonBodyGuard(new Reflector());
  const run = (request: FakeRequest, handler: () => void = Routes.prototype.plain) =>
    guard.canActivate(context(request, handler));

  it('admits JSON with any parameters, and body-less POSTs without a Content-Type', () => {
    for (const type of ['application/json', 'application/json; charset=utf-8', 'APPLICATION/JSON']) {
      expect(run(post({ 'content-type': type, 'content-length': '2' }))).toBe(true);
    }
    expect(run(post({ 'content-length': '0' }))).toBe(true);
    expect(run(post({}))).toBe(true);
  });

  it.each([
    ['text/plain', { 'content-type': 'text/plain', 'content-length': '2' }],
    ['form-encoded', { 'content-type': 'application/x-www-form-urlencoded', 'content-length': '3' }],
    ['multipart', { 'content-type': 'multipart/form-data; boundary=x', 'content-length': '9' }],
    ['+json', { 'content-type': 'application/vnd.api+json', 'content-length': '2' }],
    ['an empty Content-Type', { 'content-type': '', 'content-length': '2' }],
    ['a body without Content-Type', { 'content-length': '2' }],
    ['a chunked body without Content-Type', { 'transfer-encoding': 'chunked' }],
  ])('refuses %s with 415', (_, headers) => {
    expect(() => run(post(headers))).toThrow(UnsupportedMediaTypeException);
  });

  it('admits the types a route lists, and leaves other methods alone', () => {
    const form = post({ 'content-type': 'application/x-www-form-urlencoded', 'content-length': '3' });
    expect(run(form, Routes.prototype.introspect)).toBe(true);
    expect(() => run(post({ 'content-type': 'text/plain' }), Routes.prototype.introspect)).toThrow(
      UnsupportedMediaTypeException,
    );
    expect(run({ method: 'GET', headers: { 'content-type': 'text/plain', 'content-length': '3' } })).toBe(true);
  });
});
