import type { SessionTokens } from '../tokens/session.service.js';
import type { MfaChallenge } from '../totp/mfa-challenge.service.js';

/** What a first factor leads to: a session, or a second-factor challenge. */
export type SignInResult = SessionTokens | MfaChallenge;

/** Narrows a {@link SignInResult}. */
export function isMfaChallenge(result: SignInResult): result is MfaChallenge {
  return 'mfaRequired' in result && result.mfaRequired === true;
}
