import { Prop, Schema, SchemaFactory } from '@nestjs/mongoose';
import { withOtpUserFields, type OtpUserFields } from 'nestjs-otp-auth/mongoose';

/**
 * The sample app's user on MongoDB: the library's fields (unique email, isVerified, timestamps,
 * added by `withOtpUserFields`) plus the same extra fields as the SQL entity.
 */
@Schema({ collection: 'users' })
export class MongoUser implements OtpUserFields {
  email!: string;
  isVerified!: boolean;

  @Prop({ type: String, default: null })
  displayName!: string | null;

  /** E.164 phone number for `OTP_DELIVERY=sms`. */
  @Prop({ type: String, default: null })
  phone!: string | null;
}

export const MongoUserSchema = withOtpUserFields(SchemaFactory.createForClass(MongoUser));
