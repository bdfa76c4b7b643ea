/**
 * nestjs-otp-auth/smtp: email delivery over SMTP (nodemailer), behind its own entry point so
 * importing `nestjs-otp-auth` never loads nodemailer.
 *
 * @packageDocumentation
 */
export {
  SmtpOtpSender,
  defaultSmtpRequireTls,
  type SmtpOtpSenderOptions,
  type SmtpTlsOptions,
  type SmtpPoolSettings,
} from './smtp-otp.sender.js';
