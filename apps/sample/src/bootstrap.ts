import 'reflect-metadata';
import { Logger, type INestApplication, type LoggerService, type NestApplicationOptions } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import type { NestExpressApplication } from '@nestjs/platform-express';
import { FastifyAdapter, type NestFastifyApplication } from '@nestjs/platform-fastify';
import { DocumentBuilder, SwaggerModule } from '@nestjs/swagger';
import { createAppModule } from './app.module.js';
import type { SampleConfig } from './config.js';

/** Where Swagger UI is served; the OpenAPI JSON is at `/docs-json`. */
export const DOCS_PATH = 'docs';

/** Why `@fastify/static`, which Swagger UI needs on Fastify, cannot be loaded; undefined when it can. */
async function fastifyStaticProblem(): Promise<string | undefined> {
  try {
    await import('@fastify/static');
    return undefined;
  } catch (error) {
    return (error as Error).message;
  }
}

/** Mounts Swagger UI at `/docs`, or explains in the log why it is skipped. */
async function setUpSwagger(app: INestApplication, config: SampleConfig, logger: Logger): Promise<void> {
  // On Fastify, SwaggerModule would exit the process if @fastify/static were missing.
  const problem = config.platform === 'fastify' ? await fastifyStaticProblem() : undefined;
  if (problem !== undefined) {
    logger.warn(`Swagger UI is not served on Fastify: @fastify/static could not be loaded (${problem}).`);
    return;
  }
  const document = new DocumentBuilder()
    .setTitle('nestjs-otp-auth sample')
    .setDescription(
      'Passwordless sign-in: POST /auth/request-otp, then POST /auth/verify-otp for an access token. ' +
        'Send it as `Authorization: Bearer <token>` (the Authorize button) to call the example routes.',
    )
    .setVersion('0.1.0')
    .addBearerAuth()
    .build();
  // A factory, so the document is built on first request rather than at startup.
  SwaggerModule.setup(DOCS_PATH, app, () => SwaggerModule.createDocument(app, document));
}

/**
 * Creates (but does not start) the sample app for a configuration: Express or Fastify, logger
 * levels, shutdown hooks and Swagger UI.
 *
 * @param config - What {@link loadConfig} returned (or a test's own).
 * @param appLogger - A logger to use instead of Nest's console logger at `config.logLevels` (tests).
 * @returns The Nest application, not yet listening; call `listen` (or `init` for supertest).
 * @throws Whatever startup throws (e.g. an unreachable database or invalid module options).
 */
export async function createApp(config: SampleConfig, appLogger?: LoggerService): Promise<INestApplication> {
  const module = createAppModule(config);
  // abortOnError: false makes startup errors reject here instead of calling process.abort().
  const options: NestApplicationOptions = { logger: appLogger ?? config.logLevels, abortOnError: false };
  const app: INestApplication =
    config.platform === 'fastify'
      ? await NestFactory.create<NestFastifyApplication>(module, new FastifyAdapter(), options)
      : await NestFactory.create<NestExpressApplication>(module, options);

  const logger = new Logger('Sample');
  for (const warning of config.warnings) logger.warn(warning);

  if (config.corsOrigins.length > 0) {
    // Pages on these origins may call the service with credentials (the refresh cookie); the
    // module's cross-site check admits the same list (cookie.allowedOrigins).
    app.enableCors({
      origin: [...config.corsOrigins],
      credentials: true,
      methods: ['GET', 'POST'],
      allowedHeaders: ['content-type', 'authorization', 'accept-language'],
      // www-authenticate carries the step-up answer (max_age) of the TOTP enrolment routes.
      exposedHeaders: ['retry-after', 'ratelimit', 'ratelimit-policy', 'www-authenticate'],
      maxAge: 600,
    });
  }
  // Closes the database connections on SIGTERM/SIGINT (e.g. `docker stop`).
  app.enableShutdownHooks();
  await setUpSwagger(app, config, logger);
  return app;
}
