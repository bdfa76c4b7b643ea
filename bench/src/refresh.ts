/**
 * Refresh rotations per second: one session per connection, signed in before the run, then
 * POST /auth/refresh over and over, each request presenting the refresh token of the previous
 * answer (login-server delivers refresh tokens in the body, so the cookie's CSRF check is not on
 * this path). A token is single-use: presenting one twice would end its session as stolen.
 */
import autocannon from 'autocannon';
import { freshAddresses, jsonPost, signIn, type TokenAnswer } from './flows.js';
import { FLOW_CONNECTIONS, medianOfRounds, onEachBackend, rates, type Backend, type Measured } from './harness.js';

export function refreshRotation(bare: ReadonlyMap<Backend, number>): Promise<Measured[]> {
  return onEachBackend('login-server.js', async (backend, base) => {
    const nextEmail = freshAddresses(`refresh-${backend}`);
    // The current token of every session that has no request in flight. A pool shared by the
    // connections rather than autocannon's per-connection state, which it clears after every pass
    // of the sequence; with as many sessions as connections, each session is still refreshed by
    // one request at a time.
    const idle: string[] = [];
    const refresh = jsonPost(
      '/auth/refresh',
      () => {
        const token = idle.pop();
        if (token === undefined) throw new Error('refresh: no idle session (an answer was lost)');
        return { refresh_token: token };
      },
      (answer) => idle.push((JSON.parse(answer) as TokenAnswer).refresh_token),
    );
    const median = await medianOfRounds(`refresh ${backend}`, async (duration) => {
      // A run stops with requests in flight whose answers are never read: those sessions' new
      // tokens are unknown, so new sessions take their place.
      while (idle.length < FLOW_CONNECTIONS) idle.push((await signIn(base, nextEmail())).refresh_token);
      return autocannon({ url: base, connections: FLOW_CONNECTIONS, duration, requests: [refresh] });
    });
    return [{ scenario: `refresh/rotations/${backend}`, ...rates(median, 1, bare.get(backend)) }];
  });
}
