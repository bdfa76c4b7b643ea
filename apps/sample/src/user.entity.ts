import { Column, Entity, PrimaryGeneratedColumn } from 'typeorm';
import { OtpBaseUser } from 'nestjs-otp-auth/typeorm';

/**
 * The sample app's user: the library's columns (email, verification, timestamps) plus an
 * integer id and a display name that ends up in access tokens as the `display_name` claim.
 */
@Entity('users')
export class User extends OtpBaseUser {
  @PrimaryGeneratedColumn()
  id!: number;

  /** Nullable because the module creates users from an email address alone. */
  @Column({ type: 'varchar', length: 100, nullable: true })
  displayName!: string | null;

  /** E.164 phone number for `OTP_DELIVERY=sms`; users without one get no SMS. */
  @Column({ type: 'varchar', length: 20, nullable: true })
  phone!: string | null;
}
