import { Module } from '@nestjs/common';
import { LoginCodeService } from './codes/login-code.service.js';
import { FailureStreak } from './codes/failure-streak.js';
import { StatelessLoginCodes } from './codes/stateless-login-codes.js';
import { CodeOutbox } from './delivery/code-outbox.js';
import { InlineDelivery } from './delivery/inline-delivery.js';
import { codeDeliveryProvider } from './delivery/code-delivery.provider.js';
import { RecipientLimit } from './delivery/recipient-limit.js';
import { OTP_SENDER } from './delivery/otp-sender.interface.js';
import { OtpRateLimitGuard } from './rate-limits/otp-rate-limit.guard.js';
import { OtpRateLimiter } from './rate-limits/otp-rate-limiter.js';
import { OTP_RATE_LIMIT_STORAGE } from './rate-limits/rate-limit-storage.interface.js';
import { rateLimitStorageProvider } from './rate-limits/rate-limit-storage.provider.js';
import { CleanupScheduler } from './maintenance/cleanup-scheduler.js';
import { OtpAuthGuard } from './guards/otp-auth.guard.js';
import { OtpAuthGlobalGuard } from './guards/otp-auth-global.guard.js';
import { VerifiedUserGuard } from './guards/verified-user.guard.js';
import { MfaGuard } from './guards/require-mfa.js';
import { RecentSignInGuard } from './guards/recent-sign-in.guard.js';
import { TotpService } from './totp/totp.service.js';
import { MfaChallengeService } from './totp/mfa-challenge.service.js';
import { SignInService } from './sign-in/sign-in.service.js';
import { OTP_AUTH_EXPORTED_CONFIG } from './otp-auth.providers.js';
import { ConfigurableOtpAuthModule } from './otp-auth.module-definition.js';
import { OtpAuthService } from './otp-auth.service.js';
import { AccessTokenService } from './tokens/access-token.service.js';
import { RevocationList } from './tokens/revocation-list.js';
import { SessionService } from './tokens/session.service.js';
import { OtpAuthEvents } from './events/otp-auth-events.js';

/**
 * Passwordless email-code login with JWT sessions.
 *
 * ```ts
 * OtpAuthModule.forRootAsync({
 *   isGlobal: true,
 *   inject: [ConfigService, DataSource],
 *   useFactory: (config: ConfigService, dataSource: DataSource) => ({
 *     secret: config.getOrThrow('OTP_AUTH_SECRET'),
 *     store: new TypeOrmOtpAuthStore(dataSource, { userEntity: User }),
 *     sendOtp: async (email, code) => mailer.send(email, code),
 *   }),
 * })
 * ```
 */
@Module({
  providers: [
    OtpAuthEvents,
    rateLimitStorageProvider,
    OtpRateLimiter,
    OtpRateLimitGuard,
    RevocationList,
    AccessTokenService,
    SessionService,
    LoginCodeService,
    FailureStreak,
    StatelessLoginCodes,
    CodeOutbox,
    InlineDelivery,
    codeDeliveryProvider,
    RecipientLimit,
    OtpAuthService,
    OtpAuthGuard,
    OtpAuthGlobalGuard,
    VerifiedUserGuard,
    MfaGuard,
    RecentSignInGuard,
    TotpService,
    MfaChallengeService,
    SignInService,
    CleanupScheduler,
  ],
  exports: [
    ...OTP_AUTH_EXPORTED_CONFIG,
    OTP_SENDER,
    OtpAuthEvents,
    OTP_RATE_LIMIT_STORAGE,
    OtpRateLimiter,
    OtpRateLimitGuard,
    RevocationList,
    AccessTokenService,
    SessionService,
    LoginCodeService,
    CodeOutbox,
    OtpAuthService,
    OtpAuthGuard,
    OtpAuthGlobalGuard,
    VerifiedUserGuard,
    MfaGuard,
    RecentSignInGuard,
    TotpService,
    MfaChallengeService,
    SignInService,
    CleanupScheduler,
  ],
})
export class OtpAuthModule extends ConfigurableOtpAuthModule {}
