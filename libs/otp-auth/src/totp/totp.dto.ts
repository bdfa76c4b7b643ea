import { ApiProperty, ApiPropertyOptional } from '../http/openapi.js';
import { IsBoolean, IsString, Matches, MaxLength } from 'class-validator';
import { IsAbsentOrValid } from '../http/dto.js';

/** Body with a current authenticator code. */
export class TotpCodeDto {
  @ApiProperty({ example: '123456' })
  @IsString({ message: 'code must be a string' })
  @Matches(/^\d{6,8}$/, { message: 'code must be 6 to 8 digits' })
  code!: string;
}

/** Body with either an authenticator code or a backup code. */
export class SecondFactorDto {
  @ApiPropertyOptional({ example: '123456', description: 'A current authenticator code.' })
  @IsAbsentOrValid()
  @IsString({ message: 'code must be a string' })
  @Matches(/^\d{6,8}$/, { message: 'code must be 6 to 8 digits' })
  code?: string;

  @ApiPropertyOptional({ example: 'ABCDE-FGHJK', description: 'One of the backup codes (single use).' })
  @IsAbsentOrValid()
  @IsString({ message: 'backup_code must be a string' })
  @Matches(/^[A-Za-z0-9][A-Za-z0-9 -]{8,14}[A-Za-z0-9]$/, { message: 'backup_code must look like ABCDE-FGHJK' })
  backup_code?: string;
}

/** Body of `POST /totp/disable` and `POST /totp/backup-codes`: a second factor, and whether to end the other sessions. */
export class ManageSecondFactorDto extends SecondFactorDto {
  @ApiPropertyOptional({
    type: Boolean,
    default: false,
    description:
      'Also end every other session of the user (their access and refresh tokens stop working at once); this one stays signed in. The answer says how many in `revoked_sessions`.',
  })
  @IsAbsentOrValid()
  @IsBoolean({ message: 'end_other_sessions must be a boolean' })
  end_other_sessions?: boolean;
}

/** Answer of `POST /totp/disable`. */
export class TotpDisabledResponseDto {
  @ApiProperty({ example: 'Two-factor authentication disabled' })
  message!: string;

  @ApiProperty({ example: 0, description: 'Other sessions ended (0 unless `end_other_sessions` was true).' })
  revoked_sessions!: number;
}

/** Body of `POST /totp/verify`. */
export class MfaVerifyDto extends SecondFactorDto {
  @ApiProperty({ description: 'The mfa_token from verify-otp.' })
  @IsString({ message: 'mfa_token must be a string' })
  @MaxLength(2048, { message: 'mfa_token must be at most 2048 characters' })
  mfa_token!: string;
}

/** Answer of `POST /totp/setup`. */
export class TotpSetupResponseDto {
  @ApiProperty({ description: 'Base32 secret for manual entry; shown only until confirmed.' })
  secret!: string;

  @ApiProperty({ example: 'otpauth://totp/Acme:ada%40example.com?secret=JBSWY3DPEHPK3PXP&issuer=Acme' })
  otpauth_url!: string;

  @ApiProperty({ description: 'data:image/png;base64,… QR code of otpauth_url.' })
  qr_code!: string;
}

/** Answer carrying new backup codes (shown once). */
export class BackupCodesResponseDto {
  @ApiProperty({ type: [String], example: ['ABCDE-FGHJK'] })
  backup_codes!: string[];
}

/** Answer of `POST /totp/backup-codes`. */
export class RegeneratedBackupCodesResponseDto extends BackupCodesResponseDto {
  @ApiProperty({ example: 0, description: 'Other sessions ended (0 unless `end_other_sessions` was true).' })
  revoked_sessions!: number;
}
