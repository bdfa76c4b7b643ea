import { BadRequestException } from '@nestjs/common';
import { RequestOtpDto } from './dto.js';
import { MAX_BODY_DEPTH, nestedDeeperThan, OtpValidationPipe } from './body-validation.pipe.js';

function nested(depth: number): unknown {
  let value: unknown = 'x';
  for (let i = 0; i < depth; i++) value = [value];
  return value;
}

describe('OtpValidationPipe', () => {
  const pipe = new OtpValidationPipe({ whitelist: true, transform: true });
  const body = { type: 'body' as const, metatype: RequestOtpDto };

  it('measures nesting without recursion, at any depth', () => {
    expect(nestedDeeperThan({ a: { b: 1 } }, 2)).toBe(false);
    expect(nestedDeeperThan({ a: { b: { c: 1 } } }, 2)).toBe(true);
    expect(nestedDeeperThan(nested(200_000), MAX_BODY_DEPTH)).toBe(true);
  });

  it('answers 400 to a deeply nested body instead of overflowing the stack', async () => {
    await expect(pipe.transform({ email: nested(20_000) }, body)).rejects.toBeInstanceOf(BadRequestException);
  });

  it('refuses an address with a lone surrogate with the usual message (validator.js would throw)', async () => {
    const failure = (await pipe.transform({ email: '\udc00a@aa.aa' }, body).catch((e: unknown) => e)) as
      BadRequestException | undefined;
    expect(failure).toBeInstanceOf(BadRequestException);
    expect(JSON.stringify(failure!.getResponse())).toContain('email must be a valid email address');
  });

  it('still normalises and accepts a normal address', async () => {
    await expect(pipe.transform({ email: ' A@Example.COM ' }, body)).resolves.toMatchObject({
      email: 'a@example.com',
    });
  });
});

describe('second-factor bodies', () => {
  it('refuse null for code or backup_code with 400 (it used to reach the TOTP check as null: a 500)', async () => {
    const { SecondFactorDto } = await import('../totp/totp.dto.js');
    const pipe = new OtpValidationPipe({ whitelist: true, transform: true });
    const body = { type: 'body' as const, metatype: SecondFactorDto };
    for (const value of [{ code: null }, { backup_code: null }]) {
      await expect(pipe.transform(value, body)).rejects.toBeInstanceOf(BadRequestException);
    }
    await expect(pipe.transform({ code: '123456' }, body)).resolves.toMatchObject({ code: '123456' });
  });
});
