import {
  Column,
  CreateDateColumn,
  Entity,
  Index,
  PrimaryColumn,
  UpdateDateColumn,
  type ValueTransformer,
} from 'typeorm';

/** Epoch milliseconds in a BIGINT column; drivers return BIGINT as a string. */
const epochMs: ValueTransformer = {
  to: (value: number | null | undefined) => value,
  from: (value: string | number | null) => (value === null || value === undefined ? null : Number(value)),
};

/**
 * Base of the application's user entity: extend it and add a primary column and your own
 * columns. Extra columns need a default or `nullable: true`, because the module creates users
 * from an email address alone.
 *
 * ```ts
 * @Entity('users')
 * export class User extends OtpBaseUser {
 *   @PrimaryGeneratedColumn() id!: number;
 *   @Column({ nullable: true }) displayName?: string;
 * }
 * ```
 */
export abstract class OtpBaseUser {
  @Column({ type: 'varchar', length: 254, unique: true })
  email!: string;

  @Column({ name: 'is_verified', type: 'boolean', default: false })
  isVerified!: boolean;

  @CreateDateColumn({ name: 'created_at' })
  createdAt!: Date;

  @UpdateDateColumn({ name: 'updated_at' })
  updatedAt!: Date;
}

/**
 * One row per address and purpose: the live code (as a keyed hash), its counters and cooldown.
 * Rows are keyed by a hex SHA-256 of the exact address, not the address itself: a case- or
 * accent-insensitive collation (MySQL's default) must never make two addresses share a row.
 */
@Entity('otp_codes')
export class OtpCodeEntity {
  @PrimaryColumn({ name: 'address_key', type: 'varchar', length: 64 })
  addressKey!: string;

  @PrimaryColumn({ type: 'varchar', length: 32 })
  purpose!: string;

  @Column({ name: 'code_hash', type: 'varchar', length: 64, nullable: true })
  codeHash!: string | null;

  @Column({ type: 'integer' })
  generation!: number;

  @Index()
  @Column({ name: 'expires_at', type: 'bigint', transformer: epochMs })
  expiresAt!: number;

  @Column({ type: 'integer', default: 0 })
  attempts!: number;

  @Column({ name: 'sent_at', type: 'bigint', transformer: epochMs })
  sentAt!: number;

  @Column({ name: 'failure_count', type: 'integer', default: 0 })
  failureCount!: number;

  @Column({ name: 'failure_window_start', type: 'bigint', nullable: true, transformer: epochMs })
  failureWindowStart!: number | null;
}

/** A session: one refresh-token family. */
@Entity('otp_sessions')
export class OtpSessionEntity {
  @PrimaryColumn({ type: 'varchar', length: 36 })
  id!: string;

  @Index()
  @Column({ name: 'user_id', type: 'varchar', length: 128 })
  userId!: string;

  /** Comma-separated authentication methods. */
  @Column({ type: 'varchar', length: 64 })
  amr!: string;

  @Column({ name: 'created_at', type: 'bigint', transformer: epochMs })
  createdAt!: number;

  @Column({ name: 'revoked_at', type: 'bigint', nullable: true, transformer: epochMs })
  revokedAt!: number | null;
}

/** A refresh token, stored only as a keyed hash; the primary key makes each rotation unique. */
@Entity('otp_refresh_tokens')
export class OtpRefreshTokenEntity {
  @PrimaryColumn({ name: 'token_hash', type: 'varchar', length: 64 })
  tokenHash!: string;

  @Index()
  @Column({ name: 'session_id', type: 'varchar', length: 36 })
  sessionId!: string;

  @Column({ name: 'user_id', type: 'varchar', length: 128 })
  userId!: string;

  @Column({ name: 'parent_hash', type: 'varchar', length: 64, nullable: true })
  parentHash!: string | null;

  @Column({ name: 'created_at', type: 'bigint', transformer: epochMs })
  createdAt!: number;

  @Index()
  @Column({ name: 'expires_at', type: 'bigint', transformer: epochMs })
  expiresAt!: number;
}

/** Revoked sessions (`sid:`) and access tokens (`jti:`), kept until nothing they cover can be valid. */
@Entity('otp_revocations')
export class OtpRevocationEntity {
  @PrimaryColumn({ name: 'revocation_key', type: 'varchar', length: 80 })
  key!: string;

  @Index()
  @Column({ name: 'expires_at', type: 'bigint', transformer: epochMs })
  expiresAt!: number;

  @Index()
  @Column({ name: 'created_at', type: 'bigint', transformer: epochMs })
  createdAt!: number;
}

/**
 * A user's authenticator-app (TOTP) enrolment: pending until confirmed, then active. The secret is
 * stored only as AES-256-GCM ciphertext; the failure window is user-wide.
 */
@Entity('otp_totp')
export class OtpTotpEntity {
  @PrimaryColumn({ name: 'user_id', type: 'varchar', length: 128 })
  userId!: string;

  @Column({ name: 'encrypted_secret', type: 'varchar', length: 255 })
  encryptedSecret!: string;

  @Column({ name: 'key_id', type: 'varchar', length: 16 })
  keyId!: string;

  @Column({ type: 'boolean' })
  active!: boolean;

  @Column({ name: 'last_step', type: 'bigint', nullable: true, transformer: epochMs })
  lastStep!: number | null;

  @Column({ name: 'backup_batch', type: 'varchar', length: 36, nullable: true })
  backupBatch!: string | null;

  @Column({ name: 'failure_count', type: 'integer', default: 0 })
  failureCount!: number;

  @Column({ name: 'failure_window_start', type: 'bigint', nullable: true, transformer: epochMs })
  failureWindowStart!: number | null;

  @Column({ name: 'created_at', type: 'bigint', transformer: epochMs })
  createdAt!: number;

  @Column({ name: 'confirmed_at', type: 'bigint', nullable: true, transformer: epochMs })
  confirmedAt!: number | null;
}

/** A backup code, stored only as a salted keyed hash; valid while its batch is the user's current one. */
@Entity('otp_backup_codes')
export class OtpBackupCodeEntity {
  @PrimaryColumn({ type: 'varchar', length: 36 })
  id!: string;

  @Index()
  @Column({ name: 'user_id', type: 'varchar', length: 128 })
  userId!: string;

  @Column({ type: 'varchar', length: 36 })
  batch!: string;

  @Column({ type: 'varchar', length: 64 })
  salt!: string;

  @Column({ type: 'varchar', length: 64 })
  hash!: string;

  @Column({ name: 'used_at', type: 'bigint', nullable: true, transformer: epochMs })
  usedAt!: number | null;
}

/** A pending second-factor step (the server-side state of an `mfa_token`, keyed by its `jti`). */
@Entity('otp_mfa_challenges')
export class OtpMfaChallengeEntity {
  @PrimaryColumn({ type: 'varchar', length: 64 })
  id!: string;

  @Column({ name: 'user_id', type: 'varchar', length: 128 })
  userId!: string;

  /** Comma-separated authentication methods of the first factor. */
  @Column({ type: 'varchar', length: 64 })
  amr!: string;

  @Column({ type: 'integer', default: 0 })
  attempts!: number;

  @Index()
  @Column({ name: 'expires_at', type: 'bigint', transformer: epochMs })
  expiresAt!: number;

  @Column({ name: 'consumed_at', type: 'bigint', nullable: true, transformer: epochMs })
  consumedAt!: number | null;
}

/** The module's own tables; add them to your DataSource's `entities`. */
export const otpAuthEntities = [
  OtpCodeEntity,
  OtpSessionEntity,
  OtpRefreshTokenEntity,
  OtpRevocationEntity,
  OtpTotpEntity,
  OtpBackupCodeEntity,
  OtpMfaChallengeEntity,
] as const;
