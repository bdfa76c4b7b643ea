/**
 * Types of modules.mjs, taken from the packages themselves once this package is installed
 * (`npm run bench` installs it before compiling). The root type-check and lint also see this file
 * where it is not installed (CI installs only the root): the imports then do not resolve, which
 * skipLibCheck leaves unreported in a declaration file, and the bench server type-checks loosely.
 */
export { betterAuth } from 'better-auth';
export { createAuthMiddleware } from 'better-auth/api';
export { getMigrations } from 'better-auth/db/migration';
export { toNodeHandler } from 'better-auth/node';
export { emailOTP } from 'better-auth/plugins/email-otp';
export { default as SqliteDatabase } from 'better-sqlite3';
export { createPool as createMysqlPool } from 'mysql2/promise';
export { Pool as PostgresPool } from 'pg';
