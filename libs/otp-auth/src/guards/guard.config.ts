import type { TotpStore } from '../store/totp-store.interface.js';
import type { UserStore } from '../store/user-store.interface.js';

/** What the guards read of the module's options. */
export interface GuardConfig {
  readonly store: UserStore & Pick<TotpStore, 'findTotp'>;
  /** Epoch milliseconds. */
  readonly clock: () => number;
  /** The two-factor rules the guards enforce (`totp.*` options). */
  readonly totp: {
    readonly required: (user: object) => boolean;
    readonly enrollmentMaxAuthAge: number | null;
    readonly managementMaxAuthAge: number | null;
  };
}

/** DI token of {@link GuardConfig}. */
export const OTP_GUARD_CONFIG = Symbol('OTP_GUARD_CONFIG');
