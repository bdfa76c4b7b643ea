/**
 * Sign-ins per second (a code requested and verified, a new address each time, so every pass also
 * signs a user up): ours on each backend and, with `withBetterAuth`, Better Auth's email-OTP
 * sign-in on the same database in the same run. Both servers run side by side on the database
 * (their tables do not overlap) and their rounds take turns, so the ratio holds up when the
 * machine's load changes during the run.
 */
import autocannon from 'autocannon';
import { BETTER_AUTH_SIGN_IN, freshAddresses, OUR_SIGN_IN, signInRequests, type CodeSignIn } from './flows.js';
import {
  alternatingMedians,
  FLOW_CONNECTIONS,
  onEachBackendWith,
  rates,
  ratio,
  type Backend,
  type Contender,
  type Measured,
} from './harness.js';

function signInPairs(name: string, base: string, flow: CodeSignIn, prefix: string): Contender {
  const nextEmail = freshAddresses(prefix);
  return {
    name,
    run: (duration) =>
      autocannon({ url: base, connections: FLOW_CONNECTIONS, duration, requests: signInRequests(flow, nextEmail) }),
  };
}

/**
 * `login/request+verify pairs/<backend>` (request rate relative to the bare route's); with Better
 * Auth, also `login/better-auth pairs/<backend>` and `login/ours vs better-auth/<backend>`
 * (`ratio_to_baseline` = our pairs / theirs).
 */
export function signInThroughput(bare: ReadonlyMap<Backend, number>, withBetterAuth: boolean): Promise<Measured[]> {
  const scripts = withBetterAuth ? ['login-server.js', 'better-auth-server.js'] : ['login-server.js'];
  return onEachBackendWith(scripts, async (backend, [ours, theirs]) => {
    const contenders = [signInPairs(`login ${backend}`, ours!.base, OUR_SIGN_IN, `login-${backend}`)];
    if (theirs)
      contenders.push(signInPairs(`better-auth ${backend}`, theirs.base, BETTER_AUTH_SIGN_IN, `ba-${backend}`));
    const [usMedian, themMedian] = await alternatingMedians(contenders);
    const us: Measured = {
      scenario: `login/request+verify pairs/${backend}`,
      ...rates(usMedian!, 2, bare.get(backend)),
    };
    if (!themMedian) return [us];
    const them: Measured = { scenario: `login/better-auth pairs/${backend}`, ...rates(themMedian, 2) };
    return [
      us,
      them,
      {
        scenario: `login/ours vs better-auth/${backend}`,
        requests_per_s: us.requests_per_s,
        p50_ms: us.p50_ms,
        p99_ms: us.p99_ms,
        ratio_to_baseline: ratio(us.requests_per_s, them.requests_per_s),
        baseline: 'Better Auth',
      },
    ];
  });
}
