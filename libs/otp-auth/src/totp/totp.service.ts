import { randomBytes, randomUUID } from 'node:crypto';
import { OTP_TOTP_CONFIG, type TotpConfig } from './totp.options.js';
import {
  BadRequestException,
  ConflictException,
  Inject,
  Injectable,
  NotFoundException,
  UnauthorizedException,
} from '@nestjs/common';
import { Secret, TOTP } from 'otpauth';
import QRCode from 'qrcode';
import { SessionService } from '../tokens/session.service.js';
import { BackupCodeHasher, newBackupCode, TotpCipher } from './totp-cipher.js';
import type { BackupCodeRecord, TotpRecord } from '../store/totp-store.interface.js';
import { OtpAuthEvents } from '../events/otp-auth-events.js';
import { type StoredUser } from '../store/user-store.interface.js';

/** The single message of every refused second factor. */
export const INVALID_SECOND_FACTOR_MESSAGE = 'Invalid two-factor code';

/** What the user shows as a second factor: an authenticator code or a backup code. */
export interface SecondFactorProof {
  code?: string;
  backupCode?: string;
}

/** A new enrolment, before confirmation. */
export interface TotpEnrollment {
  /** Base32 (no padding), for manual entry. */
  readonly secret: string;
  /** Key URI: `otpauth://totp/Issuer:account?secret=…&issuer=Issuer`. */
  readonly otpauthUrl: string;
  /** The key URI as a `data:image/png;base64,…` QR code. */
  readonly qrCode: string;
}

/**
 * Authenticator-app two-factor: enrolment with QR codes, confirmation, verification with replay
 * protection and a user-wide failure cap, backup codes. RFC 6238 through `otpauth`; the secret is
 * encrypted at rest and never shown again after activation.
 */
@Injectable()
export class TotpService {
  private readonly cipher: TotpCipher;
  private readonly backupHasher: BackupCodeHasher;

  constructor(
    @Inject(OTP_TOTP_CONFIG) private readonly config: TotpConfig,
    private readonly sessions: SessionService,
    private readonly events: OtpAuthEvents,
  ) {
    this.cipher = new TotpCipher(config.secret, config.previousSecrets);
    this.backupHasher = new BackupCodeHasher(config.secret, config.previousSecrets);
  }

  /** True when the user has confirmed an authenticator. */
  async isActive(userId: string): Promise<boolean> {
    return (await this.config.store.findTotp(userId))?.active === true;
  }

  /** Starts (or restarts) an enrolment: a new 160-bit secret, its key URI and QR code. */
  async setup(user: StoredUser): Promise<TotpEnrollment> {
    const secret = new Secret({ size: 20 }).base32;
    const otpauthUrl = this.keyUri(secret, user.email); // validates the account name before anything is stored
    const now = this.config.clock();
    const record: TotpRecord = {
      userId: user.id,
      encryptedSecret: this.cipher.encrypt(secret, user.id),
      keyId: this.cipher.keyId,
      active: false,
      lastStep: null,
      backupBatch: null,
      failureCount: 0,
      failureWindowStart: null,
      createdAt: now,
      confirmedAt: null,
    };
    if (!(await this.config.store.savePendingTotp(record))) {
      throw new ConflictException('Two-factor authentication is already enabled; disable it first.');
    }
    return { secret, otpauthUrl, qrCode: await QRCode.toDataURL(otpauthUrl, { errorCorrectionLevel: 'M' }) };
  }

  /** The pending enrolment's QR code as PNG bytes. 404 when there is none (or it is active). */
  async pendingQrPng(user: StoredUser): Promise<Buffer> {
    const record = await this.config.store.findTotp(user.id);
    if (!record || record.active) throw new NotFoundException('No pending two-factor enrolment; call POST totp/setup.');
    const secret = this.decrypt(record);
    return QRCode.toBuffer(this.keyUri(secret, user.email), { type: 'png', errorCorrectionLevel: 'M' });
  }

  /**
   * Activates the pending enrolment with a valid code; returns the backup codes (shown once).
   * Every session of the user ends: none of them passed the second factor.
   */
  async confirm(userId: string, code: string): Promise<string[]> {
    const { store } = this.config;
    const record = await store.findTotp(userId);
    if (!record || record.active)
      throw new BadRequestException('No pending two-factor enrolment; call POST totp/setup.');
    if (!(await this.reserve(userId))) throw new UnauthorizedException(INVALID_SECOND_FACTOR_MESSAGE);
    const step = this.matchStep(this.decrypt(record), code);
    if (step === null) throw new UnauthorizedException(INVALID_SECOND_FACTOR_MESSAGE);
    const { batch, codes, records } = await this.newBackupCodes(userId);
    if (!(await store.activateTotp(userId, record.encryptedSecret, step, batch, this.config.clock()))) {
      throw new ConflictException('The enrolment changed while it was being confirmed; start again.');
    }
    // Inserted after the batch is current, so a concurrent cleanup() cannot take them for dead.
    await store.insertBackupCodes(records);
    this.events.emit({ type: 'totp.enabled', userId });
    await this.sessions.revokeAllForUser(userId, 'second_factor_enabled');
    return codes;
  }

  /** Turns two-factor off after checking a current code or a backup code. */
  async disable(userId: string, proof: SecondFactorProof): Promise<void> {
    await this.requireSecondFactor(userId, proof);
    await this.config.store.deleteTotp(userId);
    this.events.emit({ type: 'totp.disabled', userId });
  }

  /** Replaces the backup codes after checking a current code or a backup code; the old set dies. */
  async regenerateBackupCodes(userId: string, proof: SecondFactorProof): Promise<string[]> {
    await this.requireSecondFactor(userId, proof);
    const { batch, codes, records } = await this.newBackupCodes(userId);
    if (!(await this.config.store.setBackupBatch(userId, batch))) {
      throw new UnauthorizedException(INVALID_SECOND_FACTOR_MESSAGE);
    }
    await this.config.store.insertBackupCodes(records);
    this.events.emit({ type: 'totp.backup_codes_regenerated', userId });
    return codes;
  }

  /**
   * Ends every session of the user but `currentSessionId`, as `logout-all` does: their refresh
   * tokens stop working and their access tokens go into the revocation list at once. For after
   * {@link disable} or {@link regenerateBackupCodes} (ASVS 5.0 7.4.3: offer to end the other
   * sessions after a change to an authentication factor). Returns how many were ended.
   */
  endOtherSessions(userId: string, currentSessionId: string): Promise<number> {
    return this.sessions.revokeAllForUser(userId, 'other_sessions_ended', currentSessionId);
  }

  /**
   * Checks a second factor for an active enrolment: reserves a guess in the user-wide window,
   * then accepts a TOTP code only for a time step later than the last accepted one, or a backup
   * code exactly once. Returns the method used (`totp` or `backup`), or null.
   */
  async verify(userId: string, proof: SecondFactorProof): Promise<'totp' | 'backup' | null> {
    const { store } = this.config;
    const record = await store.findTotp(userId);
    if (!record?.active) return null;
    if (!(await this.reserve(userId))) return null;
    let method: 'totp' | 'backup' | null = null;
    if (proof.code !== undefined) {
      const step = this.matchStep(this.decrypt(record), proof.code);
      if (step !== null && (await store.acceptTotpStep(userId, step, record.encryptedSecret))) method = 'totp';
      // A right code for a step already used: someone else has (or had) this code.
      else if (step !== null) this.events.emit({ type: 'totp.replayed', userId });
    } else if (proof.backupCode !== undefined) {
      method = (await this.useBackupCode(userId, proof.backupCode)) ? 'backup' : null;
    }
    // An accepted TOTP step has cleared the failures in its own statement.
    if (method === 'backup') await store.clearTotpFailures(userId);
    else this.events.emit({ type: 'totp.failed', userId, method: proof.code !== undefined ? 'totp' : 'backup' });
    return method;
  }

  private async requireSecondFactor(userId: string, proof: SecondFactorProof): Promise<void> {
    if (!(await this.isActive(userId))) throw new BadRequestException('Two-factor authentication is not enabled.');
    if (!(await this.verify(userId, proof))) throw new UnauthorizedException(INVALID_SECOND_FACTOR_MESSAGE);
  }

  private reserve(userId: string): Promise<boolean> {
    const now = this.config.clock();
    return this.config.store.reserveTotpAttempt(userId, {
      maxFailures: this.config.totp.maxFailures,
      failureWindowCutoff: now - this.config.totp.failureWindow * 1000,
      now,
    });
  }

  /** The time step a code belongs to within the window, by server time only; null if none. */
  matchStep(secret: string, code: string): number | null {
    const { algorithm, digits, period, window } = this.config.totp;
    const timestamp = this.config.clock();
    const delta = TOTP.validate({
      token: code,
      secret: Secret.fromBase32(secret),
      algorithm,
      digits,
      period,
      timestamp,
      window,
    });
    return delta === null ? null : TOTP.counter({ period, timestamp }) + delta;
  }

  /** A code for a secret at a time: the module's own generation path (used for the RFC vectors). */
  generate(secret: string, timestamp: number): string {
    const { algorithm, digits, period } = this.config.totp;
    return TOTP.generate({ secret: Secret.fromBase32(secret), algorithm, digits, period, timestamp });
  }

  private async useBackupCode(userId: string, code: string): Promise<boolean> {
    const candidates = await this.config.store.listUsableBackupCodes(userId);
    // One scrypt for the set (its codes share a salt), then every candidate is compared.
    const match = candidates[await this.backupHasher.findMatch(code, candidates)];
    return match ? this.config.store.useBackupCode(match.id, this.config.clock()) : false;
  }

  private async newBackupCodes(
    userId: string,
  ): Promise<{ batch: string; codes: string[]; records: BackupCodeRecord[] }> {
    const batch = randomUUID();
    const codes = Array.from({ length: this.config.totp.backupCodeCount }, () => newBackupCode());
    // One 128-bit salt per set, so a check costs one scrypt, not one per code (see BackupCodeHasher).
    const salt = randomBytes(16).toString('base64url');
    const hashes = await this.backupHasher.hashCodes(codes, salt);
    const records = codes.map((_code, i): BackupCodeRecord => ({
      id: randomUUID(),
      userId,
      batch,
      salt,
      hash: hashes[i]!,
      usedAt: null,
    }));
    return { batch, codes, records };
  }

  private decrypt(record: TotpRecord): string {
    const secret = this.cipher.decrypt(record.encryptedSecret, record.keyId, record.userId);
    if (secret === null) {
      // A key that is gone from `secret`/`previousSecrets`: refuse rather than guess.
      throw new UnauthorizedException(INVALID_SECOND_FACTOR_MESSAGE);
    }
    return secret;
  }

  /** Key URI format: label `Issuer:account`, both percent-encoded (spaces as %20), no padding. */
  private keyUri(secret: string, account: string): string {
    if (account.includes(':')) throw new BadRequestException('The account name may not contain ":".');
    const { issuer, algorithm, digits, period } = this.config.totp;
    const enc = encodeURIComponent;
    let uri = `otpauth://totp/${enc(issuer)}:${enc(account)}?secret=${secret.replace(/=+$/, '')}&issuer=${enc(issuer)}`;
    if (algorithm !== 'SHA1') uri += `&algorithm=${algorithm}`;
    if (digits !== 6) uri += `&digits=${digits}`;
    if (period !== 30) uri += `&period=${period}`;
    return uri;
  }
}
