import { describe, expect, it, jest } from '@jest/globals';
import type * as OpenApi from './openapi.js';

// Jest cannot require() ES modules, so this is the situation of an app whose own Jest suite (ESM
// mode) loads the module while @nestjs/swagger is installed: the module must load, undocumented,
// and say so. (The repository's other suites map openapi.js to a static import instead.)
describe('the optional @nestjs/swagger loader', () => {
  it('falls back to no-op decorators with one warning when swagger cannot be required', async () => {
    const warn = jest.spyOn(process, 'emitWarning').mockImplementation(() => undefined);
    try {
      const loader = (await import(new URL('./openapi.ts', import.meta.url).href)) as typeof OpenApi;
      expect(warn).toHaveBeenCalledWith(
        expect.stringContaining('@nestjs/swagger is installed but could not be loaded'),
        expect.objectContaining({ code: 'OTP_AUTH_SWAGGER_UNAVAILABLE' }),
      );
      class Body {
        email!: string;
      }
      const decorate = loader.ApiProperty({ example: 'a@example.com' });
      expect(() => decorate(Body.prototype, 'email')).not.toThrow();
      expect(Reflect.getMetadataKeys?.(Body.prototype, 'email') ?? []).not.toContain('swagger/apiModelProperties');
    } finally {
      warn.mockRestore();
    }
  });
});
