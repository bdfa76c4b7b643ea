import { OtpMessageTemplates, OTP_TEMPLATE_PLACEHOLDERS } from './message-templates.js';
import type { OtpDeliveryContext } from './otp-sender.interface.js';

const login: OtpDeliveryContext = {
  purpose: 'login',
  expiresAt: new Date('2030-01-02T03:04:05.678Z'),
  ttlSeconds: 600,
};

describe('OtpMessageTemplates', () => {
  it('renders the built-in login message with the code in text, html and sms', () => {
    const templates = new OtpMessageTemplates({ appName: 'Acme' });
    const email = templates.render('123456', login);
    expect(email.subject).toBe('Your Acme sign-in code');
    expect(email.text).toContain('Your sign-in code for Acme is:\n\n123456\n\nIt expires in 10 minutes.');
    expect(email.html).toContain('>123456</p>');
    expect(email.html).toContain('It expires in 10 minutes.');
    expect(templates.renderSms('123456', login)).toBe(
      "123456 is your Acme sign-in code. It expires in 10 min. Don't share it.",
    );
  });

  it('uses the generic message for other purposes', () => {
    const templates = new OtpMessageTemplates({ appName: 'Acme' });
    const email = templates.render('654321', { ...login, purpose: 'totp-setup' });
    expect(email.subject).toBe('Your Acme verification code');
    expect(email.text).toContain('654321');
    expect(email.html).toContain('654321');
  });

  it('offers every placeholder', () => {
    const templates = new OtpMessageTemplates({
      appName: 'Acme',
      messages: {
        login: {
          default: {
            subject: '{{ app_name }} {{purpose}}',
            text: '{{code}}|{{minutes}}|{{ttl_seconds}}|{{expires_at}}|{{app_name}}|{{purpose}}',
          },
        },
      },
    });
    const email = templates.render('123456', { ...login, ttlSeconds: 90 });
    expect(email.subject).toBe('Acme login');
    expect(email.text).toBe('123456|2|90|2030-01-02T03:04:05Z|Acme|login');
    expect(OTP_TEMPLATE_PLACEHOLDERS).toEqual(['code', 'minutes', 'ttl_seconds', 'expires_at', 'app_name', 'purpose']);
    // Never "0 minutes".
    expect(templates.render('1', { ...login, ttlSeconds: 20 }).text).toContain('|1|20|');
  });

  describe('overrides', () => {
    const templates = new OtpMessageTemplates({
      appName: 'Acme',
      messages: {
        login: {
          default: { subject: 'EN login', text: 'EN login {{code}}' },
          de: { subject: 'DE login', text: 'DE login {{code}}', sms: 'DE sms {{code}}' },
          'de-AT': { subject: 'AT login', text: 'AT login {{code}}' },
        },
        '*': {
          fr: { subject: 'FR any', text: 'FR any {{code}}' },
        },
        'totp-setup': {
          de: { subject: 'DE totp', text: 'DE totp {{code}}' },
        },
      },
    });
    const subject = (purpose: string, locale?: string): string =>
      templates.render('1', { ...login, purpose, ...(locale !== undefined && { locale }) }).subject;

    it('falls back from region to language to default', () => {
      expect(subject('login', 'de-CH')).toBe('DE login');
      expect(subject('login', 'de_ch')).toBe('DE login');
      expect(subject('login', 'DE-at')).toBe('AT login');
      expect(subject('login', 'de')).toBe('DE login');
      expect(subject('login', 'es-ES')).toBe('EN login');
      expect(subject('login')).toBe('EN login');
      expect(subject('login', '')).toBe('EN login');
      expect(subject('login', 'x'.repeat(500))).toBe('EN login');
    });

    it('prefers the language over the purpose, then falls back to the built-ins', () => {
      // `*` in French beats the English login override.
      expect(subject('login', 'fr-FR')).toBe('FR any');
      expect(subject('totp-setup', 'de-CH')).toBe('DE totp');
      expect(subject('totp-setup', 'fr')).toBe('FR any');
      // No default for totp-setup or `*`: the built-in generic message.
      expect(subject('totp-setup', 'es')).toBe('Your Acme verification code');
      expect(subject('other')).toBe('Your Acme verification code');
    });

    it('derives html and sms from text when they are not given', () => {
      const email = templates.render('123456', { ...login, locale: 'de-AT' });
      expect(email.html).toContain('<p>AT login 123456</p>');
      expect(templates.renderSms('123456', { ...login, locale: 'de-AT' })).toBe('AT login 123456');
      expect(templates.renderSms('123456', { ...login, locale: 'de' })).toBe('DE sms 123456');
    });
  });

  it('substitutes in one pass and escapes values in html only', () => {
    const templates = new OtpMessageTemplates({
      appName: '<b>&"{{code}}\'',
      messages: {
        login: {
          default: { subject: 'Hi {{app_name}}', text: '{{app_name}} {{code}}', html: '<i>{{app_name}}</i> {{code}}' },
        },
      },
    });
    const email = templates.render('123456', login);
    expect(email.text).toBe('<b>&"{{code}}\' 123456');
    expect(email.subject).toBe('Hi <b>&"{{code}}\'');
    expect(email.html).toBe('<i>&lt;b&gt;&amp;&quot;{{code}}&#39;</i> 123456');
  });

  it('escapes the literal text when it derives html from text', () => {
    const templates = new OtpMessageTemplates({
      appName: 'A&B',
      messages: { login: { default: { subject: 's', text: '\nx < y\n{{app_name}}: {{code}}\n' } } },
    });
    expect(templates.render('123456', login).html).toContain('<p>x &lt; y<br>\nA&amp;B: 123456</p>');
  });

  it('strips line breaks from the subject', () => {
    const templates = new OtpMessageTemplates({
      appName: 'Acme\r\nBcc: victim@example.com',
      messages: { login: { default: { subject: 'Code\nfor {{app_name}}', text: '{{code}}' } } },
    });
    expect(templates.render('1', login).subject).toBe('Code for Acme Bcc: victim@example.com');
  });

  it('rejects unknown placeholders, malformed templates and bad keys at construction', () => {
    const build =
      (messages: object, appName = 'Acme') =>
      () =>
        new OtpMessageTemplates({ appName, messages: messages as never });
    expect(build({ login: { de: { subject: '{{user}}', text: '{{code}}' } } })).toThrow(
      'messages["login"]["de"].subject: unknown placeholder {{user}}. Allowed placeholders: {{code}}, {{minutes}}, ' +
        '{{ttl_seconds}}, {{expires_at}}, {{app_name}}, {{purpose}}.',
    );
    expect(build({ login: { default: { subject: 's', text: '{{code}' } } })).toThrow(
      /messages\["login"\]\["default"\]\.text: malformed placeholder near "\{\{code\}".*Allowed placeholders/,
    );
    expect(build({ login: { default: { subject: 's', text: '{{{code}}}' } } })).toThrow(/text: malformed/);
    expect(build({ login: { default: { subject: 's', text: 'no code' } } })).toThrow(/text: must contain \{\{code\}\}/);
    expect(build({ login: { default: { subject: 's', text: '{{code}}', sms: 'none' } } })).toThrow(
      /sms: must contain \{\{code\}\}/,
    );
    expect(build({ login: { default: { subject: 's', text: '{{code}}', html: '{{Code}}' } } })).toThrow(
      /html: unknown placeholder \{\{Code\}\}/,
    );
    expect(build({ login: { default: { text: '{{code}}' } } })).toThrow(/subject: must be a non-empty string/);
    expect(build({ login: { default: { subject: 's', text: '{{code}}', body: 'x' } } })).toThrow(
      /\.body is not a template field/,
    );
    expect(build({ login: { 'not a locale': { subject: 's', text: '{{code}}' } } })).toThrow(/BCP 47/);
    expect(
      build({ login: { de: { subject: 's', text: '{{code}}' }, DE: { subject: 's', text: '{{code}}' } } }),
    ).toThrow(/locale given twice/);
    expect(build({}, ' ')).toThrow(/appName/);
    // CSS braces are fine.
    expect(
      build({ login: { default: { subject: 's', text: '{{code}}', html: '<style>@media{a{b:c}}</style>{{code}}' } } }),
    ).not.toThrow();
  });
});
