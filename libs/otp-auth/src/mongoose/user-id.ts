/*
 * User ids cross the module as strings (the `sub` claim, `StoredUser.id`, the user id of
 * sessions and TOTP state). These helpers turn a user document's `_id` into that string and
 * back, accepting only the canonical form, so `parse(format(id))` round-trips and no other
 * spelling (upper-case hex, a 12-byte string, leading zeros) can name the same user.
 */

/** The `_id` types the store supports (Mongoose's `SchemaType#instance` names). */
export type UserIdKind = 'ObjectId' | 'String' | 'Number' | 'UUID';

/** Longest id accepted, as in the TypeORM store (ids come from signed tokens, but stay bounded). */
const MAX_ID_LENGTH = 128;

/** What `String(objectId)` / `ObjectId#toHexString()` produce: 24 lower-case hex digits. */
const OBJECT_ID = /^[0-9a-f]{24}$/;
/** What `UUID#toHexString()` produces: lower-case, dashed. */
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
/** A canonical integer: no sign on zero, no leading zeros, no exponent. */
const INTEGER = /^-?(?:0|[1-9][0-9]{0,15})$/;

/** True for a `_id` type the store can expose as a string. */
export function isUserIdKind(kind: string): kind is UserIdKind {
  return kind === 'ObjectId' || kind === 'String' || kind === 'Number' || kind === 'UUID';
}

/**
 * The string form of a user document's `_id`: the hex of an ObjectId, the dashed form of a UUID,
 * the decimal of a number, a string as is. Undefined for anything else.
 */
export function userIdToString(value: unknown): string | undefined {
  if (typeof value === 'string') return value;
  if (typeof value === 'number') return Number.isSafeInteger(value) ? String(value) : undefined;
  if (typeof value === 'object' && value !== null && 'toHexString' in value) {
    // ObjectId#toHexString() and UUID#toHexString() (dashed by default) are both canonical.
    const toHexString = value.toHexString;
    if (typeof toHexString === 'function') {
      const hex: unknown = toHexString.call(value);
      return typeof hex === 'string' ? hex : undefined;
    }
  }
  return undefined;
}

/**
 * The value to query `_id` with for a string id, or undefined when the string cannot be the
 * canonical form of an id of that kind (the caller answers "no such user", never a CastError).
 */
export function parseUserId(id: unknown, kind: UserIdKind): string | number | undefined {
  if (typeof id !== 'string' || id.length === 0 || id.length > MAX_ID_LENGTH) return undefined;
  switch (kind) {
    case 'ObjectId':
      return OBJECT_ID.test(id) ? id : undefined;
    case 'UUID':
      return UUID.test(id) ? id : undefined;
    case 'Number': {
      if (!INTEGER.test(id) || id === '-0') return undefined;
      const n = Number(id);
      return Number.isSafeInteger(n) ? n : undefined;
    }
    case 'String':
      return id;
  }
}
