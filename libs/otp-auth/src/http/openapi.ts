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
  try {
    return createRequire(import.meta.url)('@nestjs/swagger') as SwaggerApi;
  } catch (error) {
    // Absent is fine; present but broken is the app's problem to see, not to hide.
    if ((error as NodeJS.ErrnoException).code === 'MODULE_NOT_FOUND') return undefined;
    throw error;
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
