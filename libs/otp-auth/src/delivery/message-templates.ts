import type { OtpDeliveryContext, OtpPurpose } from './otp-sender.interface.js';

/** The names a template may use as `{{name}}`. */
export const OTP_TEMPLATE_PLACEHOLDERS = [
  'code',
  'minutes',
  'ttl_seconds',
  'expires_at',
  'app_name',
  'purpose',
] as const;

/** One of {@link OTP_TEMPLATE_PLACEHOLDERS}. */
export type OtpTemplatePlaceholder = (typeof OTP_TEMPLATE_PLACEHOLDERS)[number];

/**
 * The message for one purpose in one language. Strings with `{{name}}` placeholders (see
 * {@link OTP_TEMPLATE_PLACEHOLDERS}; whitespace inside the braces is allowed):
 *
 * - `code`: the code; `text`, `html` and `sms` must contain it.
 * - `minutes`: the lifetime in whole minutes, rounded, at least 1. `ttl_seconds`: in seconds.
 * - `expires_at`: when the code stops working, ISO 8601 in UTC (`2030-01-02T03:04:05Z`).
 * - `app_name`: {@link OtpMessageTemplatesOptions.appName}. `purpose`: e.g. `login`.
 *
 * Values are inserted as they are, in one pass (a value that looks like a placeholder stays
 * literal); in `html` they are HTML-escaped, the template's own markup is not.
 */
export interface OtpMessageTemplate {
  /** Mail subject; line breaks are replaced by spaces. */
  subject: string;
  /** Plain-text mail body. */
  text: string;
  /** HTML mail body. Default: `text`, escaped, with line breaks as `<br>`. */
  html?: string;
  /**
   * SMS body; keep it short (160 GSM-7 characters, or 70 with any other character, is one
   * segment). Default: `text` with each run of whitespace collapsed to one space.
   */
  sms?: string;
}

/**
 * Messages by purpose, then by locale: `{ login: { default: {...}, de: {...} } }`. Purpose `*`
 * applies to every purpose. Locale keys are BCP 47 tags (`de`, `de-CH`, case-insensitive) or
 * `default`. For a purpose P and a recipient locale `de-CH` the first match wins:
 * `P.de-CH`, `*.de-CH`, `P.de`, `*.de`, `P.default`, `*.default`, then the built-in English
 * message (one for `login`, a generic one for any other purpose). The language thus beats the
 * purpose: a German recipient gets the German generic message rather than an English one.
 */
export type OtpMessageOverrides = Readonly<Record<string, Readonly<Record<string, OtpMessageTemplate>>>>;

/** Settings of {@link OtpMessageTemplates}. */
export interface OtpMessageTemplatesOptions {
  /** Product name shown to users, the `{{app_name}}` placeholder. */
  appName: string;
  /** Replacements for the built-in English messages. */
  messages?: OtpMessageOverrides;
}

/** A rendered email. */
export interface RenderedOtpEmail {
  subject: string;
  text: string;
  html: string;
}

/** A template split once into literal text and placeholders, so rendering is a join. */
type CompiledTemplate = readonly (string | { readonly placeholder: OtpTemplatePlaceholder })[];

interface CompiledMessage {
  readonly subject: CompiledTemplate;
  readonly text: CompiledTemplate;
  readonly html: CompiledTemplate;
  readonly sms: CompiledTemplate;
}

type TemplateValues = Readonly<Record<OtpTemplatePlaceholder, string>>;

const LOGIN_MESSAGE: OtpMessageTemplate = {
  subject: 'Your {{app_name}} sign-in code',
  text:
    'Your sign-in code for {{app_name}} is:\n\n{{code}}\n\n' +
    'It expires in {{minutes}} minutes. If you did not try to sign in, you can ignore this email. ' +
    'Never share this code with anyone.\n',
  html:
    '<!DOCTYPE html><html><body style="font-family:sans-serif;line-height:1.5">' +
    '<p>Your sign-in code for {{app_name}} is:</p>' +
    '<p style="font-size:28px;font-weight:bold;letter-spacing:4px">{{code}}</p>' +
    '<p>It expires in {{minutes}} minutes. If you did not try to sign in, you can ignore this email. ' +
    'Never share this code with anyone.</p></body></html>',
  sms: "{{code}} is your {{app_name}} sign-in code. It expires in {{minutes}} min. Don't share it.",
};

const GENERIC_MESSAGE: OtpMessageTemplate = {
  subject: 'Your {{app_name}} verification code',
  text:
    'Your verification code for {{app_name}} is:\n\n{{code}}\n\n' +
    'It expires in {{minutes}} minutes. If you did not request it, you can ignore this email. ' +
    'Never share this code with anyone.\n',
  html:
    '<!DOCTYPE html><html><body style="font-family:sans-serif;line-height:1.5">' +
    '<p>Your verification code for {{app_name}} is:</p>' +
    '<p style="font-size:28px;font-weight:bold;letter-spacing:4px">{{code}}</p>' +
    '<p>It expires in {{minutes}} minutes. If you did not request it, you can ignore this email. ' +
    'Never share this code with anyone.</p></body></html>',
  sms: "{{code}} is your {{app_name}} verification code. It expires in {{minutes}} min. Don't share it.",
};

const ANY_PURPOSE = '*';
const DEFAULT_LOCALE = 'default';
/** Language tags are short; anything longer from a client is not one and is ignored. */
const MAX_LOCALE_LENGTH = 35;
const LOCALE_KEY = /^[a-z]{2,3}(-[a-z0-9]{1,8})*$/;
const PLACEHOLDER = /\{\{\s*([^{}]*?)\s*\}\}/g;
const TEMPLATE_FIELDS: readonly string[] = ['subject', 'text', 'html', 'sms'] satisfies (keyof OtpMessageTemplate)[];
const ALLOWED = OTP_TEMPLATE_PLACEHOLDERS.map((name) => `{{${name}}}`).join(', ');

/**
 * Renders the email and SMS texts of a code from templates, with per-purpose and per-locale
 * overrides (see {@link OtpMessageOverrides}). Every template is checked and compiled in the
 * constructor, so a typo fails at startup and sending only joins strings.
 */
export class OtpMessageTemplates {
  private readonly appName: string;
  /** `purpose → locale key → message`, keys lower-cased. */
  private readonly overrides = new Map<string, Map<string, CompiledMessage>>();

  constructor(options: OtpMessageTemplatesOptions) {
    if (typeof options.appName !== 'string' || !options.appName.trim()) {
      throw new Error('OtpMessageTemplates: `appName` is required; it is the {{app_name}} placeholder.');
    }
    this.appName = options.appName.trim();
    for (const [purpose, byLocale] of Object.entries(options.messages ?? {})) {
      if (!purpose) throw new Error('OtpMessageTemplates: `messages` has an empty purpose key.');
      if (typeof byLocale !== 'object' || byLocale === null) {
        throw new Error(`OtpMessageTemplates: messages[${JSON.stringify(purpose)}] must map locales to messages.`);
      }
      const compiled = new Map<string, CompiledMessage>();
      for (const [locale, message] of Object.entries(byLocale)) {
        const key = locale.toLowerCase().replace(/_/g, '-');
        const where = `messages[${JSON.stringify(purpose)}][${JSON.stringify(locale)}]`;
        if (key !== DEFAULT_LOCALE && !LOCALE_KEY.test(key)) {
          throw new Error(
            `OtpMessageTemplates: ${where}: the locale must be a BCP 47 tag such as "de" or "de-CH", or "default".`,
          );
        }
        if (compiled.has(key)) {
          throw new Error(`OtpMessageTemplates: ${where}: locale given twice (keys are case-insensitive).`);
        }
        compiled.set(key, compileMessage(message, where));
      }
      this.overrides.set(purpose, compiled);
    }
  }

  /** The email for a code: subject without line breaks, text, and HTML with escaped values. */
  render(code: string, context: OtpDeliveryContext): RenderedOtpEmail {
    const message = this.messageFor(context.purpose, context.locale);
    const values = this.valuesFor(code, context);
    return {
      // Line breaks in a header would start a new header (header injection).
      subject: join(message.subject, values, String)
        .replace(/\p{Cc}+/gu, ' ')
        .trim(),
      text: join(message.text, values, String),
      html: join(message.html, values, escapeHtml),
    };
  }

  /** The SMS body for a code. */
  renderSms(code: string, context: OtpDeliveryContext): string {
    return join(this.messageFor(context.purpose, context.locale).sms, this.valuesFor(code, context), String);
  }

  private valuesFor(code: string, context: OtpDeliveryContext): TemplateValues {
    return {
      code,
      minutes: String(Math.max(1, Math.round(context.ttlSeconds / 60))),
      ttl_seconds: String(context.ttlSeconds),
      // Whole seconds: the milliseconds mean nothing to a reader.
      expires_at: context.expiresAt.toISOString().replace(/\.\d{3}Z$/, 'Z'),
      app_name: this.appName,
      purpose: context.purpose,
    };
  }

  private messageFor(purpose: OtpPurpose, locale: string | undefined): CompiledMessage {
    const own = this.overrides.get(purpose);
    const any = this.overrides.get(ANY_PURPOSE);
    for (const key of localeChain(locale)) {
      const message = own?.get(key) ?? any?.get(key);
      if (message) return message;
    }
    return purpose === 'login' ? BUILT_IN_LOGIN : BUILT_IN_GENERIC;
  }
}

/** `de-CH` → `de-ch`, `de`, `default`; a missing or implausible locale → `default`. */
function localeChain(locale: string | undefined): string[] {
  const chain: string[] = [];
  let tag = locale?.trim().toLowerCase().replace(/_/g, '-') ?? '';
  if (tag.length <= MAX_LOCALE_LENGTH) {
    while (tag) {
      chain.push(tag);
      const cut = tag.lastIndexOf('-');
      tag = cut > 0 ? tag.slice(0, cut) : '';
    }
  }
  chain.push(DEFAULT_LOCALE);
  return chain;
}

function compileMessage(message: OtpMessageTemplate, where: string): CompiledMessage {
  if (typeof message !== 'object' || message === null) {
    throw new Error(`OtpMessageTemplates: ${where} must be an object with \`subject\` and \`text\`.`);
  }
  for (const field of Object.keys(message)) {
    if (!TEMPLATE_FIELDS.includes(field)) {
      throw new Error(
        `OtpMessageTemplates: ${where}.${field} is not a template field; use ${TEMPLATE_FIELDS.join(', ')}.`,
      );
    }
  }
  const text = compileTemplate(message.text, `${where}.text`, true);
  return {
    subject: compileTemplate(message.subject, `${where}.subject`, false),
    text,
    // Derived once here, so a missing field costs nothing per message.
    html: message.html === undefined ? textToHtml(text) : compileTemplate(message.html, `${where}.html`, true),
    sms: message.sms === undefined ? textToSms(text) : compileTemplate(message.sms, `${where}.sms`, true),
  };
}

function compileTemplate(template: unknown, where: string, needsCode: boolean): CompiledTemplate {
  const fail = (problem: string): never => {
    throw new Error(`OtpMessageTemplates: ${where}: ${problem}. Allowed placeholders: ${ALLOWED}.`);
  };
  if (typeof template !== 'string' || !template.trim()) return fail('must be a non-empty string');
  // A `{{` outside a well-formed placeholder is a typo (`{{code}`, `{{{code}}}`, which would be
  // "unescaped" elsewhere); a lone `}}` is allowed because CSS in HTML templates has them.
  const malformed = (text: string, at: number): never =>
    fail(`malformed placeholder near ${JSON.stringify(text.slice(at, at + 20))}`);
  if (template.includes('{{{')) malformed(template, template.indexOf('{{{'));
  const parts: (string | { placeholder: OtpTemplatePlaceholder })[] = [];
  let last = 0;
  const literal = (text: string): void => {
    if (text.includes('{{')) malformed(text, text.indexOf('{{'));
    if (text) parts.push(text);
  };
  for (const match of template.matchAll(PLACEHOLDER)) {
    const name = match[1]!;
    if (!(OTP_TEMPLATE_PLACEHOLDERS as readonly string[]).includes(name)) fail(`unknown placeholder {{${name}}}`);
    literal(template.slice(last, match.index));
    parts.push({ placeholder: name as OtpTemplatePlaceholder });
    last = match.index + match[0].length;
  }
  literal(template.slice(last));
  if (needsCode && !parts.some((part) => typeof part !== 'string' && part.placeholder === 'code')) {
    fail('must contain {{code}}');
  }
  return parts;
}

/** HTML for a plain-text template: literal text escaped, line breaks as `<br>`; values escape at render. */
function textToHtml(text: CompiledTemplate): CompiledTemplate {
  return [
    '<!DOCTYPE html><html><body style="font-family:sans-serif;line-height:1.5"><p>',
    ...trimEnds(text).map((part) => (typeof part === 'string' ? escapeHtml(part).replace(/\r?\n/g, '<br>\n') : part)),
    '</p></body></html>',
  ];
}

/** One line for an SMS: every run of whitespace in the literal text becomes one space. */
function textToSms(text: CompiledTemplate): CompiledTemplate {
  return trimEnds(text.map((part) => (typeof part === 'string' ? part.replace(/\s+/g, ' ') : part)));
}

/** Drops whitespace at the start and end of the whole template. */
function trimEnds(template: CompiledTemplate): CompiledTemplate {
  const parts = [...template];
  const first = parts[0];
  if (typeof first === 'string') parts[0] = first.trimStart();
  const last = parts.at(-1);
  if (typeof last === 'string') parts[parts.length - 1] = last.trimEnd();
  return parts.filter((part) => part !== '');
}

function join(template: CompiledTemplate, values: TemplateValues, encode: (value: string) => string): string {
  let out = '';
  for (const part of template) out += typeof part === 'string' ? part : encode(values[part.placeholder]);
  return out;
}

const HTML_ENTITIES: Readonly<Record<string, string>> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  "'": '&#39;',
};

function escapeHtml(value: string): string {
  return value.replace(/[&<>"']/g, (char) => HTML_ENTITIES[char]!);
}

// Compiled once per process. Last in the module, so every constant the compiler uses is set.
const BUILT_IN_LOGIN = compileMessage(LOGIN_MESSAGE, 'built-in login');
const BUILT_IN_GENERIC = compileMessage(GENERIC_MESSAGE, 'built-in generic');
