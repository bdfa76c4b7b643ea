import { Column, Entity, PrimaryGeneratedColumn } from 'typeorm';
import { OtpBaseUser } from 'nestjs-otp-auth/typeorm';

/** The user entity of the test apps: an integer id and one column of its own. */
@Entity('users')
export class TestUser extends OtpBaseUser {
  @PrimaryGeneratedColumn()
  id!: number;

  @Column({ type: 'varchar', length: 100, nullable: true })
  displayName!: string | null;
}
