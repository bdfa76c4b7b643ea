/**
 * Entry point of the sample app: reads the environment (and `.env` when present), builds the app
 * and listens. Configuration errors are printed without a stack trace, naming the variable, and
 * exit with status 1.
 *
 * @packageDocumentation
 */
import 'reflect-metadata';
import { Logger, type INestApplication } from '@nestjs/common';
import { createApp, DOCS_PATH } from './bootstrap.js';
import { describeConfigurationError, loadConfigFromEnvironment, type SampleConfig } from './config.js';

function fail(error: unknown): never {
  process.stderr.write(`${describeConfigurationError(error)}\n`);
  process.exit(1);
}

let config: SampleConfig;
try {
  config = await loadConfigFromEnvironment();
} catch (error) {
  fail(error);
}

let app: INestApplication;
try {
  app = await createApp(config);
  // All interfaces, so the app is reachable from outside a container.
  await app.listen(config.port, '0.0.0.0');
} catch (error) {
  // Nest has already logged the details (e.g. which database was unreachable).
  fail(error);
}

const url = `http://localhost:${config.port}`;
const logger = new Logger('Sample');
logger.log(`Listening on ${url} (${config.platform}, database ${config.database.type})`);
logger.log(`API docs: ${url}/${DOCS_PATH}`);
if (config.webUi) logger.log(`Sign-in page: ${url}/`);
