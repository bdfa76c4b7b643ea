/**
 * Better Auth and the database drivers it is given, re-exported from inside this package so the
 * bench server compiled to bench/dist loads them from this package's node_modules (Node resolves
 * a bare specifier from the folder of the file that imports it). modules.d.mts carries the types.
 */
export { betterAuth } from 'better-auth';
export { createAuthMiddleware } from 'better-auth/api';
export { getMigrations } from 'better-auth/db/migration';
export { toNodeHandler } from 'better-auth/node';
export { emailOTP } from 'better-auth/plugins/email-otp';
export { default as SqliteDatabase } from 'better-sqlite3';
export { createPool as createMysqlPool } from 'mysql2/promise';
export { Pool as PostgresPool } from 'pg';
