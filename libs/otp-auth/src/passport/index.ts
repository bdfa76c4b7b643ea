/**
 * nestjs-otp-auth/passport: the module's access tokens as a Passport strategy, behind its own
 * entry point so apps that never use Passport install neither `passport` nor `passport-jwt`.
 *
 * ```ts
 * @Module({ imports: [OtpAuthModule.forRoot({ ... })], providers: [OtpJwtStrategy] })
 * // then: @UseGuards(AuthGuard(OTP_JWT_STRATEGY))
 * ```
 *
 * @packageDocumentation
 */
export { OtpJwtStrategy, OTP_JWT_STRATEGY } from './otp-jwt.strategy.js';
