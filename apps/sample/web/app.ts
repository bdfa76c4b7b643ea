// The sample's sign-in page, on the client SDK in cookie mode: the refresh token stays in the
// server's HttpOnly cookie and the access token in this module's memory (never web storage).
// Plain DOM, no framework: the page is one static HTML file, this script and the SDK's modules.
import { isOtpAuthError, OtpAuthClient, type Session } from './sdk/index.js';

/** The sample's custom claim (`getAdditionalClaims`). */
interface SampleClaims {
  readonly display_name?: string;
}

type ViewName = 'loading' | 'email' | 'code' | 'mfa' | 'account' | 'totp-setup' | 'backup';
type MessageKind = 'error' | 'success' | 'info';

const auth = new OtpAuthClient<SampleClaims>({ refreshTokenDelivery: 'cookie' });

/** An element the page must have; a missing one is a bug in index.html, reported at once. */
function element<T extends HTMLElement>(id: string, type: new () => T): T {
  const found = document.getElementById(id);
  if (!(found instanceof type)) throw new Error(`index.html has no <${type.name}> #${id}`);
  return found;
}

const main = element('main', HTMLElement);
const message = element('message', HTMLParagraphElement);
const emailForm = element('email-form', HTMLFormElement);
const emailInput = element('email', HTMLInputElement);
const codeForm = element('code-form', HTMLFormElement);
const codeInput = element('code', HTMLInputElement);
const codeEmail = element('code-email', HTMLElement);
const resendButton = element('resend', HTMLButtonElement);
const mfaForm = element('mfa-form', HTMLFormElement);
const mfaInput = element('mfa-code', HTMLInputElement);
const mfaLabel = element('mfa-label', HTMLLabelElement);
const mfaHint = element('mfa-hint', HTMLParagraphElement);
const mfaToggle = element('mfa-toggle', HTMLButtonElement);
const totpStart = element('totp-start', HTMLButtonElement);
const totpForm = element('totp-form', HTMLFormElement);
const totpInput = element('totp-code', HTMLInputElement);
const totpQr = element('totp-qr', HTMLImageElement);
const totpSecret = element('totp-secret', HTMLElement);
const backupList = element('backup-codes', HTMLUListElement);

/** What the sign-in in progress knows. */
const flow = {
  email: '',
  /** When the last code was sent and how long it lives (ms), to tell "expired" from "wrong". */
  codeSentAt: 0,
  codeTtlMs: 0,
  mfaToken: '',
  mfaWithBackupCode: false,
  backupCodes: [] as readonly string[],
};

// ---- views and messages ---------------------------------------------------------------------

let currentView: ViewName = 'loading';

/** Shows one view and moves focus to its heading, so screen readers announce where the user is. */
function show(view: ViewName, focus: HTMLElement | null = null): void {
  currentView = view;
  for (const section of document.querySelectorAll<HTMLElement>('main > section.view')) {
    section.hidden = section.id !== `view-${view}`;
  }
  main.setAttribute('aria-busy', view === 'loading' ? 'true' : 'false');
  const target = focus ?? document.querySelector<HTMLElement>(`#view-${view} h1`);
  target?.focus();
}

let countdownTimer: ReturnType<typeof setInterval> | undefined;
/** The resend button waits out a cooldown; {@link busy} must not enable it early. */
let resendLocked = false;

/** Shows a message in the live region (announced politely; errors are announced the same way). */
function say(kind: MessageKind, text: string): void {
  stopCountdown();
  message.dataset['kind'] = kind;
  message.textContent = text;
}

function clearMessage(): void {
  stopCountdown();
  message.textContent = '';
  delete message.dataset['kind'];
}

function stopCountdown(): void {
  if (countdownTimer !== undefined) clearInterval(countdownTimer);
  countdownTimer = undefined;
  resendLocked = false;
  resendButton.disabled = false;
  resendButton.textContent = 'Send a new code';
}

/** "42 seconds", "3 minutes". */
function duration(seconds: number): string {
  if (seconds < 90) return `${seconds} second${seconds === 1 ? '' : 's'}`;
  const minutes = Math.ceil(seconds / 60);
  return `${minutes} minute${minutes === 1 ? '' : 's'}`;
}

/**
 * A wait the server asked for (`Retry-After`): the message counts down once per second. The
 * live region announces the first text only (`aria-live` re-announces changed text, so the
 * ticking part is in a child marked `aria-hidden` and the button shows the time left).
 */
function sayWait(prefix: string, seconds: number, resendDisabled: boolean): void {
  say('error', '');
  const deadline = Date.now() + seconds * 1000;
  const lead = document.createElement('span');
  lead.textContent = `${prefix} `;
  const spoken = document.createElement('span');
  spoken.className = 'visually-hidden';
  spoken.textContent = `You can try again in ${duration(seconds)}.`;
  const ticking = document.createElement('span');
  ticking.className = 'countdown';
  ticking.setAttribute('aria-hidden', 'true');
  message.replaceChildren(lead, spoken, ticking);
  const tick = (): void => {
    const left = Math.max(0, Math.ceil((deadline - Date.now()) / 1000));
    ticking.textContent = `Try again in ${left} s.`;
    if (resendDisabled) {
      resendLocked = left > 0;
      resendButton.disabled = left > 0;
      resendButton.textContent = left > 0 ? `Send a new code (${left} s)` : 'Send a new code';
    }
    if (left === 0) {
      stopCountdown();
      say('info', 'You can try again now.');
    }
  };
  tick();
  countdownTimer = setInterval(tick, 1000);
}

/** Marks an input wrong (or right again) for assistive technology and the stylesheet. */
function markInvalid(input: HTMLInputElement, invalid: boolean): void {
  if (invalid) input.setAttribute('aria-invalid', 'true');
  else input.removeAttribute('aria-invalid');
}

/** Disables a form's controls while its request runs (no double submits). */
async function busy<T>(form: HTMLFormElement | HTMLButtonElement, work: () => Promise<T>): Promise<T> {
  const controls = form instanceof HTMLFormElement ? [...form.querySelectorAll('button, input')] : [form];
  for (const control of controls) (control as HTMLButtonElement | HTMLInputElement).disabled = true;
  main.setAttribute('aria-busy', 'true');
  try {
    return await work();
  } finally {
    for (const control of controls) {
      (control as HTMLButtonElement | HTMLInputElement).disabled = control === resendButton && resendLocked;
    }
    main.setAttribute('aria-busy', 'false');
  }
}

/** Messages for errors every step can meet; undefined for the ones the step explains itself. */
function sayCommonError(error: unknown): boolean {
  if (!isOtpAuthError(error)) {
    say('error', 'Something went wrong on this page. Reload it and try again.');
    return true;
  }
  switch (error.code) {
    case 'network_error':
      say('error', 'The server cannot be reached. Check your connection and try again in a moment.');
      return true;
    case 'service_unavailable':
    case 'server_error':
      say('error', 'The sign-in service is unavailable right now. Try again in a moment.');
      return true;
    case 'rate_limited':
      sayWait('Too many attempts.', error.retryAfter ?? 60, false);
      return true;
    case 'forbidden':
      say('error', 'The server refused this request from this page (cross-site check). Reload the page.');
      return true;
    default:
      return false;
  }
}

/** The digits of a pasted or typed code: spaces, dashes and other separators dropped. */
function digitsOf(value: string): string {
  return value.replace(/[\s\u00a0-]/g, '');
}

// ---- sign-in --------------------------------------------------------------------------------

async function sendCode(): Promise<boolean> {
  try {
    const result = await auth.requestOtp({ email: flow.email });
    flow.codeSentAt = Date.now();
    flow.codeTtlMs = result.expiresIn * 1000;
    return true;
  } catch (error) {
    if (isOtpAuthError(error) && error.code === 'cooldown') {
      sayWait('A code was sent a moment ago: use that one, or wait to send another.', error.retryAfter ?? 60, true);
      return true; // the earlier code still works: go on to the code step
    }
    if (isOtpAuthError(error) && error.code === 'validation_failed') {
      say('error', 'Enter a valid email address, like name@example.com.');
      markInvalid(emailInput, true);
      return false;
    }
    if (!sayCommonError(error)) say('error', 'The code could not be sent. Try again in a moment.');
    return false;
  }
}

emailForm.addEventListener('submit', (event) => {
  event.preventDefault();
  const email = emailInput.value.trim();
  if (!emailInput.checkValidity() || email === '') {
    markInvalid(emailInput, true);
    say('error', 'Enter a valid email address, like name@example.com.');
    emailInput.focus();
    return;
  }
  markInvalid(emailInput, false);
  flow.email = email;
  void busy(emailForm, async () => {
    clearMessage();
    if (!(await sendCode())) {
      emailInput.focus();
      return;
    }
    codeEmail.textContent = email;
    codeInput.value = '';
    markInvalid(codeInput, false);
    if (message.textContent === '')
      say('info', `Code sent to ${email}. It is valid for ${duration(flow.codeTtlMs / 1000)}.`);
    show('code', codeInput);
  });
});

codeForm.addEventListener('submit', (event) => {
  event.preventDefault();
  const code = digitsOf(codeInput.value);
  if (!/^\d{4,10}$/.test(code)) {
    markInvalid(codeInput, true);
    say('error', 'Enter the digits of the code from the email.');
    codeInput.focus();
    return;
  }
  void busy(codeForm, async () => {
    try {
      const result = await auth.verifyOtp({ email: flow.email, code });
      markInvalid(codeInput, false);
      clearMessage();
      if (result.type === 'mfa_required') {
        flow.mfaToken = result.mfaToken;
        setMfaMode(false);
        show('mfa', mfaInput);
        return;
      }
      await showAccount(result.session);
    } catch (error) {
      markInvalid(codeInput, true);
      if (isOtpAuthError(error) && error.code === 'invalid_code') {
        // The server gives one answer for wrong, used, expired and locked codes (no enumeration);
        // the page knows when it asked for the code, so it can say "expired" when that is why.
        const expired = flow.codeSentAt > 0 && Date.now() > flow.codeSentAt + flow.codeTtlMs;
        say(
          'error',
          expired
            ? 'That code has expired. Send a new code and enter the new one.'
            : 'That code is not right. Check the latest email and try again, or send a new code.',
        );
      } else if (!sayCommonError(error)) {
        say('error', 'Signing in failed. Try again.');
      }
      codeInput.focus();
      codeInput.select();
    }
  });
});

resendButton.addEventListener('click', () => {
  void busy(resendButton, async () => {
    clearMessage();
    if (await sendCode()) {
      if (message.textContent === '') say('info', `A new code is on its way to ${flow.email}.`);
      codeInput.value = '';
      markInvalid(codeInput, false);
    }
  }).then(() => codeInput.focus());
});

element('change-email', HTMLButtonElement).addEventListener('click', () => {
  clearMessage();
  show('email', emailInput);
  emailInput.select();
});

// ---- second factor --------------------------------------------------------------------------

function setMfaMode(backupCode: boolean): void {
  flow.mfaWithBackupCode = backupCode;
  mfaInput.value = '';
  markInvalid(mfaInput, false);
  mfaLabel.textContent = backupCode ? 'Backup code' : 'Authenticator code';
  mfaHint.textContent = backupCode
    ? 'Enter one of the backup codes you saved when you turned on two-factor authentication. Each works once.'
    : 'Enter the code your authenticator app shows for this account.';
  mfaInput.inputMode = backupCode ? 'text' : 'numeric';
  mfaInput.autocapitalize = backupCode ? 'characters' : 'off';
  mfaToggle.textContent = backupCode ? 'Use the authenticator app instead' : 'Use a backup code instead';
}

mfaToggle.addEventListener('click', () => {
  setMfaMode(!flow.mfaWithBackupCode);
  mfaInput.focus();
});

element('mfa-restart', HTMLButtonElement).addEventListener('click', () => {
  flow.mfaToken = '';
  clearMessage();
  show('email', emailInput);
});

mfaForm.addEventListener('submit', (event) => {
  event.preventDefault();
  const value = flow.mfaWithBackupCode ? mfaInput.value.trim().toUpperCase() : digitsOf(mfaInput.value);
  if (value === '') {
    markInvalid(mfaInput, true);
    say('error', flow.mfaWithBackupCode ? 'Enter a backup code.' : 'Enter the code from your authenticator app.');
    mfaInput.focus();
    return;
  }
  void busy(mfaForm, async () => {
    try {
      const session = await auth.verifyMfa(
        flow.mfaWithBackupCode
          ? { mfaToken: flow.mfaToken, backupCode: value }
          : { mfaToken: flow.mfaToken, code: value },
      );
      flow.mfaToken = '';
      clearMessage();
      await showAccount(session);
    } catch (error) {
      if (isOtpAuthError(error) && error.code === 'invalid_mfa_token') {
        say('error', 'This sign-in attempt has expired. Enter your email to start again.');
        show('email', emailInput);
        return;
      }
      markInvalid(mfaInput, true);
      if (isOtpAuthError(error) && error.code === 'invalid_code') {
        say(
          'error',
          flow.mfaWithBackupCode
            ? 'That backup code is not right, or it was used already.'
            : 'That code is not right. Wait for the next code in the app and try again.',
        );
      } else if (!sayCommonError(error)) {
        say('error', 'Verifying failed. Try again.');
      }
      mfaInput.focus();
      mfaInput.select();
    }
  });
});

// ---- signed in ------------------------------------------------------------------------------

function formatTime(epochMs: number): string {
  return new Date(epochMs).toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'medium' });
}

/** Fills the account view from the session, and the address from the API (a protected route). */
async function showAccount(session: Session<SampleClaims>): Promise<void> {
  renderSession(session);
  show('account');
  try {
    const answer = await auth.fetch('/verified-only');
    if (answer.ok) {
      const body = (await answer.json()) as { email?: unknown };
      if (typeof body.email === 'string') element('account-email', HTMLElement).textContent = body.email;
    }
  } catch (error) {
    if (!isOtpAuthError(error) || error.code !== 'not_signed_in') sayCommonError(error);
  }
}

function renderSession(session: Session<SampleClaims>): void {
  const claims = session.claims;
  const twoFactor = (claims.amr ?? []).some((method) => method === 'totp' || method === 'backup');
  element('account-email', HTMLElement).textContent = flow.email || '…';
  element('account-id', HTMLElement).textContent = session.userId;
  element('account-mfa', HTMLElement).textContent = twoFactor ? 'On' : 'Off';
  element('account-since', HTMLElement).textContent =
    claims.auth_time === undefined ? 'unknown' : formatTime(claims.auth_time * 1000);
  element('account-expires', HTMLElement).textContent = formatTime(session.expiresAt);
  element('claims', HTMLElement).textContent = JSON.stringify(claims, null, 2);
  totpStart.hidden = twoFactor;
}

totpStart.addEventListener('click', () => {
  void busy(totpStart, async () => {
    clearMessage();
    try {
      const setup = await auth.totp.setup();
      totpQr.src = setup.qrCode;
      totpSecret.textContent = setup.secret.replace(/(.{4})(?=.)/g, '$1 ');
      totpInput.value = '';
      markInvalid(totpInput, false);
      show('totp-setup');
    } catch (error) {
      if (isOtpAuthError(error) && error.code === 'reauthentication_required') {
        say('error', 'For your security, sign in again before changing two-factor authentication.');
      } else if (isOtpAuthError(error) && error.code === 'conflict') {
        say('info', 'Two-factor authentication is already on for this account.');
      } else if (!sayCommonError(error)) {
        say('error', 'Two-factor setup could not start. Try again.');
      }
    }
  });
});

totpForm.addEventListener('submit', (event) => {
  event.preventDefault();
  const code = digitsOf(totpInput.value);
  if (!/^\d{6,8}$/.test(code)) {
    markInvalid(totpInput, true);
    say('error', 'Enter the 6-digit code your authenticator app shows.');
    totpInput.focus();
    return;
  }
  void busy(totpForm, async () => {
    try {
      const result = await auth.totp.confirm({ code });
      flow.backupCodes = result.backupCodes;
      backupList.replaceChildren(
        ...result.backupCodes.map((backupCode) => {
          const item = document.createElement('li');
          item.textContent = backupCode;
          return item;
        }),
      );
      renderSession(result.session);
      say('success', 'Two-factor authentication is on. Your other sessions were signed out.');
      show('backup');
    } catch (error) {
      markInvalid(totpInput, true);
      if (isOtpAuthError(error) && error.code === 'invalid_code') {
        say('error', 'That code is not right. Check the clock of your phone and try the next code.');
      } else if (isOtpAuthError(error) && error.code === 'not_found') {
        say('error', 'The setup has expired. Start it again.');
      } else if (!sayCommonError(error)) {
        say('error', 'Turning on two-factor authentication failed. Try again.');
      }
      totpInput.focus();
    }
  });
});

element('totp-cancel', HTMLButtonElement).addEventListener('click', () => {
  totpQr.removeAttribute('src');
  totpSecret.textContent = '';
  clearMessage();
  show('account');
});

function backupCodesText(): string {
  return [
    `Backup codes for ${flow.email || 'your account'} (${location.host}).`,
    'Each code signs you in once when you cannot use your authenticator app.',
    '',
    ...flow.backupCodes,
    '',
  ].join('\n');
}

element('backup-copy', HTMLButtonElement).addEventListener('click', () => {
  navigator.clipboard.writeText(backupCodesText()).then(
    () => say('success', 'Backup codes copied.'),
    () => say('error', 'Copying is not allowed here: select the codes and copy them, or download them.'),
  );
});

element('backup-download', HTMLButtonElement).addEventListener('click', () => {
  const url = URL.createObjectURL(new Blob([backupCodesText()], { type: 'text/plain' }));
  const link = document.createElement('a');
  link.href = url;
  link.download = 'backup-codes.txt';
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 0);
  say('success', 'Backup codes downloaded as backup-codes.txt.');
});

element('backup-done', HTMLButtonElement).addEventListener('click', () => {
  // Shown once: the codes leave the page's memory and DOM.
  flow.backupCodes = [];
  backupList.replaceChildren();
  clearMessage();
  show('account');
});

function signOut(all: boolean, button: HTMLButtonElement): void {
  void busy(button, async () => {
    try {
      if (all) {
        const result = await auth.logoutAll();
        say(
          'success',
          `Signed out on every device (${result.revokedSessions} session${result.revokedSessions === 1 ? '' : 's'}).`,
        );
      } else {
        await auth.logout();
        say('success', 'You are signed out.');
      }
    } catch (error) {
      // logout() signs this page out even when the server cannot be told.
      if (!sayCommonError(error)) say('error', 'Signing out failed on the server; this page is signed out.');
    }
    show('email', emailInput);
  });
}

element('logout', HTMLButtonElement).addEventListener('click', (event) =>
  signOut(false, event.currentTarget as HTMLButtonElement),
);
element('logout-all', HTMLButtonElement).addEventListener('click', (event) =>
  signOut(true, event.currentTarget as HTMLButtonElement),
);

// Another tab signed in or out (cross-tab channel), or the session ended on the server.
auth.onSessionChange((change) => {
  if (change.type === 'signed_out' && change.source === 'other_tab' && currentView !== 'email') {
    say('info', 'You signed out in another tab.');
    show('email', emailInput);
  } else if (change.type === 'signed_out' && change.reason === 'session_ended' && currentView === 'account') {
    say('info', 'Your session has ended. Sign in again.');
    show('email', emailInput);
  } else if (change.type === 'signed_in' && change.source === 'other_tab' && currentView !== 'account') {
    void showAccount(change.session);
  } else if (change.type !== 'signed_out' && currentView === 'account') {
    renderSession(change.session);
  }
});

// ---- start ----------------------------------------------------------------------------------

/** After a reload: a new access token from the refresh cookie, or the sign-in form. */
async function start(): Promise<void> {
  try {
    const session = await auth.restore();
    if (session) {
      await showAccount(session);
      return;
    }
  } catch (error) {
    sayCommonError(error);
  }
  show('email', emailInput);
}

void start();
