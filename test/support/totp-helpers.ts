import jsQRModule from 'jsqr';
import { generateSync } from 'otplib';
import { PNG } from 'pngjs';
import type request from 'supertest';
import { signIn, type TestApp } from './test-app.js';

// jsqr is CommonJS with an `exports.default`; under NodeNext the default import is the module object.
const jsQR = (jsQRModule as unknown as { default: typeof jsQRModule.default }).default;

/** Decodes a QR code PNG with an independent decoder (pngjs + jsQR). */
export function decodeQr(png: Buffer): string {
  const image = PNG.sync.read(png);
  const result = jsQR(new Uint8ClampedArray(image.data), image.width, image.height);
  if (!result) throw new Error('no QR code found in the image');
  return result.data;
}

/** Decodes a `data:image/png;base64,…` QR code. */
export function decodeQrDataUrl(dataUrl: string): string {
  const prefix = 'data:image/png;base64,';
  if (!dataUrl.startsWith(prefix)) throw new Error(`not a PNG data URL: ${dataUrl.slice(0, 30)}`);
  return decodeQr(Buffer.from(dataUrl.slice(prefix.length), 'base64'));
}

/** The code for a secret at the test clock plus `steps` periods, by an independent implementation (otplib). */
export function codeAt(t: TestApp, secret: string, steps = 0): string {
  return generateSync({ secret, epoch: Math.floor(t.clock.now() / 1000) + steps * 30 });
}

/** The claims of a JWT, unverified (for assertions). */
export function claimsOf(token: string): Record<string, unknown> {
  return JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString()) as Record<string, unknown>;
}

export interface Enrolled {
  secret: string;
  uri: string;
  backupCodes: string[];
  /** Tokens of the session `confirm` opened. */
  confirmed: request.Response;
  /** The session that enrolled (revoked by confirm). */
  before: request.Response;
}

/** Signs in, enrols an authenticator over HTTP (reading the secret back from the QR), confirms. */
export async function enroll(t: TestApp, email: string): Promise<Enrolled> {
  const before = await signIn(t, email);
  const auth = `Bearer ${before.body.access_token as string}`;
  const setup = await t.http().post('/auth/totp/setup').set('authorization', auth).expect(200);
  const uri = decodeQrDataUrl(setup.body.qr_code as string);
  const secret = new URL(uri).searchParams.get('secret')!;
  const confirmed = await t
    .http()
    .post('/auth/totp/confirm')
    .set('authorization', auth)
    .send({ code: codeAt(t, secret) })
    .expect(200);
  return { secret, uri, backupCodes: confirmed.body.backup_codes as string[], confirmed, before };
}

/** request-otp + verify-otp for a TOTP user: returns the mfa_token. */
export async function firstFactor(t: TestApp, email: string): Promise<string> {
  t.clock.advance(61); // past the resend cooldown
  await t.http().post('/auth/request-otp').send({ email }).expect(200);
  const res = await t
    .http()
    .post('/auth/verify-otp')
    .send({ email, code: t.lastCode(email) })
    .expect(200);
  if (res.body.mfa_required !== true) throw new Error(`expected an MFA challenge, got ${JSON.stringify(res.body)}`);
  return res.body.mfa_token as string;
}
