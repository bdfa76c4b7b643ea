/**
 * TOTP sign-ins per second. What is measured: complete two-factor sign-ins, each a triple of
 * request-otp, verify-otp (answering `{mfa_required, mfa_token}`) and POST /auth/totp/verify with
 * the mfa_token and the current authenticator code, by users who enrolled beforehand through HTTP
 * (totp/setup, totp/confirm), each user signing in once. Not a loop of totp/verify alone: an
 * mfa_token is single-use, and replay protection accepts one code per user and 30 s step, so a
 * user can pass the second factor once per step; a fresh enrolled user per sign-in is what a busy
 * service sees, and the rate of whole sign-ins is the number a capacity plan needs.
 */
import autocannon from 'autocannon';
import { generateSync } from 'otplib';
import { freshAddresses, inParallel, jsonPost, OUR_SIGN_IN, postJson, signIn, signInRequests } from './flows.js';
import { FLOW_CONNECTIONS, medianOfRounds, onEachBackend, rates, type Backend, type Measured } from './harness.js';

const PERIOD_SECONDS = 30;

/** The authenticator code for now plus `steps` periods (otplib: an implementation of its own). */
function codeAt(secret: string, steps = 0): string {
  return generateSync({ secret, epoch: Math.floor(Date.now() / 1000) + steps * PERIOD_SECONDS });
}

/**
 * Signs a new address in and turns TOTP on. Confirmed with the previous step's code, which the
 * default window of ±1 step accepts as clock drift: the step it uses up is then one before the
 * current one, so the user's first sign-in can use the current code at once instead of waiting up
 * to 30 s for the next step. If a step boundary passes in between, the code is out of the window:
 * try again with a new one.
 */
async function enrol(base: string, email: string): Promise<string> {
  const auth = { authorization: `Bearer ${(await signIn(base, email)).access_token}` };
  const { secret } = await postJson<{ secret: string }>(base, '/auth/totp/setup', {}, auth);
  for (let attempt = 1; ; attempt += 1) {
    try {
      await postJson(base, '/auth/totp/confirm', { code: codeAt(secret, -1) }, auth);
      return secret;
    } catch (error) {
      if (attempt === 3) throw error;
    }
  }
}

export function totpSignIns(bare: ReadonlyMap<Backend, number>): Promise<Measured[]> {
  return onEachBackend('login-server.js', async (backend, base) => {
    const nextAddress = freshAddresses(`totp-${backend}`);
    const secrets = new Map<string, string>();
    const ready: string[] = []; // enrolled, not signed in since
    let exhausted = false;
    let lastUsed = '';
    const nextUser = () => {
      const email = ready.pop();
      if (email !== undefined) {
        lastUsed = email;
        return email;
      }
      // Out of users mid-run: a replay, refused; the run is discarded and redone with more users.
      exhausted = true;
      return lastUsed;
    };
    const requests = [
      ...signInRequests(OUR_SIGN_IN, nextUser, (answer, state) => {
        state['mfaToken'] = (JSON.parse(answer) as { mfa_token: string }).mfa_token;
      }),
      jsonPost('/auth/totp/verify', (state) => ({
        mfa_token: state['mfaToken'],
        code: codeAt(secrets.get(state['email']!)!),
      })),
    ];
    let expectedPerSecond = 300; // sign-ins; raised to the best rate seen, and when short
    const median = await medianOfRounds(`totp ${backend}`, async (duration) => {
      for (;;) {
        const wanted = Math.ceil(expectedPerSecond * duration * 1.3) + FLOW_CONNECTIONS;
        await inParallel(Math.max(0, wanted - ready.length), FLOW_CONNECTIONS, async () => {
          const email = nextAddress();
          secrets.set(email, await enrol(base, email));
          ready.push(email);
        });
        exhausted = false;
        const result = await autocannon({ url: base, connections: FLOW_CONNECTIONS, duration, requests });
        if (!exhausted) {
          expectedPerSecond = Math.max(expectedPerSecond, result.requests.average / 3);
          return result;
        }
        console.log(`[bench] totp ${backend}: ran out of enrolled users; again with more`);
        expectedPerSecond = Math.max(expectedPerSecond * 1.5, result.requests.average / 3);
      }
    });
    console.log(`[bench] totp ${backend}: ${secrets.size} users enrolled, ${ready.length} left unused`);
    return [{ scenario: `totp/mfa sign-in triples/${backend}`, ...rates(median, 3, bare.get(backend)) }];
  });
}
