/** Injection token of the validated options ({@link ResolvedOtpAuthOptions}). */
export const OTP_AUTH_CONFIG = Symbol('OTP_AUTH_CONFIG');
