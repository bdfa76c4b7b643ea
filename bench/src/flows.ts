/**
 * Request sequences for autocannon (each connection runs the sequence over and over, carrying
 * values from one answer to the next request in its per-sequence state) and the same calls made
 * once with fetch, for setting users up before a run.
 */
import type autocannon from 'autocannon';

/** Values one pass of a sequence carries from answers to later requests; fresh for each pass. */
export type FlowState = Record<string, string>;

/** How one server signs in with an emailed code; both answer the send with the code (`dev_code`). */
export interface CodeSignIn {
  sendPath: string;
  sendBody: (email: string) => object;
  verifyPath: string;
  verifyBody: (email: string, code: string) => object;
}

/** Ours: request-otp, verify-otp (login-server runs in developer mode). */
export const OUR_SIGN_IN: CodeSignIn = {
  sendPath: '/auth/request-otp',
  sendBody: (email) => ({ email }),
  verifyPath: '/auth/verify-otp',
  verifyBody: (email, code) => ({ email, code }),
};

/** Better Auth's emailOTP plugin (better-auth-server adds the code to the send answer). */
export const BETTER_AUTH_SIGN_IN: CodeSignIn = {
  sendPath: '/api/auth/email-otp/send-verification-otp',
  sendBody: (email) => ({ email, type: 'sign-in' }),
  verifyPath: '/api/auth/sign-in/email-otp',
  verifyBody: (email, otp) => ({ email, otp }),
};

/** An endless supply of addresses no run has used: `<prefix>-<n>@bench.example`. */
export function freshAddresses(prefix: string): () => string {
  let next = 0;
  return () => `${prefix}-${next++}@bench.example`;
}

/**
 * A JSON POST whose body is built from the pass's state just before it is sent; `onAnswer` sees
 * each 2xx answer (others fail the run anyway).
 */
export function jsonPost(
  path: string,
  body: (state: FlowState) => object,
  onAnswer?: (answer: string, state: FlowState) => void,
): autocannon.Request {
  return {
    method: 'POST',
    path,
    headers: { 'content-type': 'application/json' },
    setupRequest: (request, context) => ({ ...request, body: JSON.stringify(body(context as FlowState)) }),
    onResponse: (status, answer, context) => {
      if (onAnswer && status >= 200 && status < 300) onAnswer(answer, context as FlowState);
    },
  };
}

/**
 * One sign-in as two requests: send a code to `nextEmail()`, then verify it; `onVerified` sees the
 * verify answer (to carry on with it in later requests of the same pass).
 */
export function signInRequests(
  flow: CodeSignIn,
  nextEmail: () => string,
  onVerified?: (answer: string, state: FlowState) => void,
): autocannon.Request[] {
  return [
    jsonPost(
      flow.sendPath,
      (state) => {
        state['email'] = nextEmail();
        return flow.sendBody(state['email']);
      },
      (answer, state) => {
        state['code'] = (JSON.parse(answer) as { dev_code: string }).dev_code;
      },
    ),
    jsonPost(flow.verifyPath, (state) => flow.verifyBody(state['email']!, state['code']!), onVerified),
  ];
}

/** Our verify-otp (and refresh) answer with body delivery; `mfa_*` for users with TOTP. */
export interface TokenAnswer {
  access_token: string;
  refresh_token: string;
  mfa_required?: true;
  mfa_token?: string;
}

/** One POST with fetch; any non-2xx answer throws, with its body. */
export async function postJson<T>(
  base: string,
  path: string,
  body: object,
  headers: Record<string, string> = {},
): Promise<T> {
  const response = await fetch(`${base}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify(body),
  });
  if (!response.ok) throw new Error(`POST ${path}: ${response.status} ${await response.text()}`);
  return (await response.json()) as T;
}

/** request-otp then verify-otp on one of our servers in developer mode. */
export async function signIn(base: string, email: string): Promise<TokenAnswer> {
  const { dev_code } = await postJson<{ dev_code: string }>(base, OUR_SIGN_IN.sendPath, { email });
  return postJson<TokenAnswer>(base, OUR_SIGN_IN.verifyPath, { email, code: dev_code });
}

/** Runs `task` `count` times, at most `concurrency` at a time. */
export async function inParallel(count: number, concurrency: number, task: () => Promise<void>): Promise<void> {
  let started = 0;
  const worker = async () => {
    while (started < count) {
      started += 1;
      await task();
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, worker));
}
