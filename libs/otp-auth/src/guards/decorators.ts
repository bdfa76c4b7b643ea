import { createParamDecorator, InternalServerErrorException, type ExecutionContext } from '@nestjs/common';
import { customClaimsOf, type AccessTokenClaims } from '../tokens/access-token-claims.js';
import { httpRequest } from '../http/auth-request.js';

function state(context: ExecutionContext) {
  const auth = httpRequest(context).otpAuth;
  if (!auth) {
    // A programming mistake, not a client error: say how to fix it.
    throw new InternalServerErrorException(
      'OtpAuth: this route reads auth data but has no OtpAuthGuard, VerifiedUserGuard or AuthGuard("otp-jwt").',
    );
  }
  return auth;
}

/** The user entity loaded by `VerifiedUserGuard`. */
export const CurrentUser = createParamDecorator((_data: unknown, context: ExecutionContext): object => {
  const { user } = state(context);
  if (!user) {
    throw new InternalServerErrorException('OtpAuth: @CurrentUser() needs VerifiedUserGuard, which loads the user.');
  }
  return user;
});

/** The custom claims of the access token (what `getAdditionalClaims` added), without registered ones. */
export const Claims = createParamDecorator((_data: unknown, context: ExecutionContext): Record<string, unknown> =>
  customClaimsOf(state(context).claims),
);

/** Every claim of the verified access token (`sub`, `sid`, `exp`, ... and custom ones). */
export const TokenClaims = createParamDecorator(
  (_data: unknown, context: ExecutionContext): AccessTokenClaims => state(context).claims,
);
