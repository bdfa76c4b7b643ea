// Jest cannot `require()` an ES module, which is how the library finds the optional
// @nestjs/swagger (libs/otp-auth/src/http/openapi.ts); jest.config.js maps that file here so the
// in-process suites still see documented routes. The packed-package test covers the real loader.
export {
  ApiBearerAuth,
  ApiConsumes,
  ApiNotFoundResponse,
  ApiOkResponse,
  ApiOperation,
  ApiProduces,
  ApiProperty,
  ApiPropertyOptional,
  ApiServiceUnavailableResponse,
  ApiTags,
  ApiTooManyRequestsResponse,
  ApiUnauthorizedResponse,
} from '@nestjs/swagger';
