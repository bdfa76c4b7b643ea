/** A user as the module sees it; `entity` is the application's own object (entity or document). */
export interface StoredUser<TEntity = object> {
  /** The user's primary key as a string, exactly as it appears in the `sub` claim. */
  readonly id: string;
  readonly email: string;
  readonly isVerified: boolean;
  readonly entity: TEntity;
  /**
   * Whether the user's TOTP enrolment is active, when the store read it in the same statement
   * as the user (the TypeORM store does for `findUserByEmail`); left out, the module reads it.
   */
  readonly totpActive?: boolean;
}

/** Users: the module finds them by id or exact address and creates them on first sign-in. */
export interface UserStore<TEntity extends object = object> {
  findUserById(id: string): Promise<StoredUser<TEntity> | null>;
  /**
   * Optional: the user and whether their TOTP enrolment is active, read together (one statement
   * where the database allows it). The module falls back to `findUserById` and `findTotp`.
   */
  findUserWithSecondFactor?(id: string): Promise<{ user: StoredUser<TEntity>; totpActive: boolean } | null>;
  /** Exact match only, whatever the database's collation. */
  findUserByEmail(email: string): Promise<StoredUser<TEntity> | null>;
  /**
   * Returns the user with exactly this email, creating it if absent (unverified, or verified
   * with `options.verified`: a sign-in creates users it has just verified, in one insert); safe
   * under concurrency. An existing user is returned as it is. Null when the database's collation
   * treats a different existing address as equal.
   */
  createOrGetUser(email: string, options?: { verified?: boolean }): Promise<StoredUser<TEntity> | null>;
  /** Sets `isVerified`; returns the updated user, or null if it no longer exists. */
  markUserVerified(id: string): Promise<StoredUser<TEntity> | null>;
}
