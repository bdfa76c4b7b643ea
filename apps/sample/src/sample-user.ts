/**
 * What the sample's routes read from a user, whichever store holds it: the TypeORM entity
 * (integer id) or the Mongoose document (ObjectId, exposed as a string `id`).
 */
export interface SampleUser {
  readonly id: number | string;
  readonly email: string;
  readonly displayName?: string | null;
}
