/** Injection token of the validated options ({@link ResolvedOtpAuthOptions}). */
export const OTP_AUTH_CONFIG = Symbol('OTP_AUTH_CONFIG');

/** Name under which the module registers its Passport strategy: `AuthGuard(OTP_JWT_STRATEGY)`. */
export const OTP_JWT_STRATEGY = 'otp-jwt';
