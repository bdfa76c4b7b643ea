/**
 * DI token of the module's store: the one given as `store`, initialised at startup and wrapped
 * so an unreachable database answers 503 (`withStoreAvailability`). Inject it to read users
 * from your own providers (`@Inject(OTP_AUTH_STORE) store: OtpAuthStore`).
 */
export const OTP_AUTH_STORE = Symbol('OTP_AUTH_STORE');
