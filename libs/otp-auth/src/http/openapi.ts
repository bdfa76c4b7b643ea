import { createRequire } from 'node:module';
import type * as Swagger from '@nestjs/swagger';

/**
 * OpenAPI decorators of `@nestjs/swagger` when the app has it installed, no-ops otherwise.
 *
 * `@nestjs/swagger` is an optional peer (it brings about 40 MB, TypeScript among it, into a
 * production install and takes about a second to load), so the module's routes must work without
 * it and be documented with it. Decorators run while classes are defined, before any async code,
 * so the package is looked up synchronously; Node >= 20.19 `require`s ES modules, and the result is
 * the same instance the app imports, so `SwaggerModule` sees the metadata.
 */
type SwaggerApi = typeof Swagger;

const swagger: SwaggerApi | undefined = loadSwagger();

function loadSwagger(): SwaggerApi | undefined {
  const require = createRequire(import.meta.url);
  try {
    require.resolve('@nestjs/swagger');
  } catch {
    return undefined; // not installed: the routes work, undocumented
  }
  try {
    return require('@nestjs/swagger') as SwaggerApi;
  } catch (error) {
    // Installed, but require() cannot load ES modules here: Jest's module system (ESM mode) and
    // Node < 20.19. Documentation is lost, nothing else; say so once. Other errors are the app's
    // broken install and must be seen.
    const code = (error as NodeJS.ErrnoException).code;
    const esmOnly =
      code === 'ERR_REQUIRE_ESM' || code === 'ERR_REQUIRE_ASYNC_MODULE' || /Must use import/.test(String(error));
    if (!esmOnly) throw error;
    process.emitWarning(
      "nestjs-otp-auth: @nestjs/swagger is installed but could not be loaded with require() here, so the module's routes are not documented in this process.",
      { code: 'OTP_AUTH_SWAGGER_UNAVAILABLE' },
    );
    return undefined;
  }
}

const noDecorator = (): void => undefined;

function decorator<K extends keyof SwaggerApi>(name: K): SwaggerApi[K] {
  return swagger?.[name] ?? ((() => noDecorator) as unknown as SwaggerApi[K]);
}

export const ApiBearerAuth = decorator('ApiBearerAuth');
export const ApiConsumes = decorator('ApiConsumes');
export const ApiNotFoundResponse = decorator('ApiNotFoundResponse');
export const ApiOkResponse = decorator('ApiOkResponse');
export const ApiOperation = decorator('ApiOperation');
export const ApiProduces = decorator('ApiProduces');
export const ApiProperty = decorator('ApiProperty');
export const ApiPropertyOptional = decorator('ApiPropertyOptional');
export const ApiServiceUnavailableResponse = decorator('ApiServiceUnavailableResponse');
export const ApiTags = decorator('ApiTags');
export const ApiTooManyRequestsResponse = decorator('ApiTooManyRequestsResponse');
export const ApiUnauthorizedResponse = decorator('ApiUnauthorizedResponse');
