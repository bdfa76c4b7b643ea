// Jest runs in native ESM mode (NestJS 12 ships ES modules only), so the test
// command sets --experimental-vm-modules. ts-jest transpiles each file on its own
// (isolatedModules); `npm run typecheck` does the full type check.
const shared = {
  extensionsToTreatAsEsm: ['.ts'],
  testEnvironment: 'node',
  transform: {
    '^.+\\.ts$': ['ts-jest', { useESM: true, tsconfig: 'tsconfig.json' }],
  },
  moduleNameMapper: {
    // The library's optional-swagger loader uses require(), which Jest cannot apply to ES modules.
    '^\\.{1,2}/(http/)?openapi\\.js$': '<rootDir>/test/support/openapi-in-jest.ts',
    '^nestjs-otp-auth-client$': '<rootDir>/libs/otp-auth-client/src/index.ts',
    '^nestjs-otp-auth$': '<rootDir>/libs/otp-auth/src/index.ts',
    '^nestjs-otp-auth/(.*)$': '<rootDir>/libs/otp-auth/src/$1/index.ts',
    '^(\\.{1,2}/.*)\\.js$': '$1',
  },
};

/** @type {import('jest').Config} */
export default {
  projects: [
    {
      ...shared,
      displayName: 'unit',
      testMatch: ['<rootDir>/libs/**/*.spec.ts', '<rootDir>/apps/**/*.spec.ts'],
    },
    {
      ...shared,
      displayName: 'e2e',
      testMatch: ['<rootDir>/test/**/*.e2e-spec.ts'],
      // Fails a file whose apps logged a secret its tests saw (see test/support/log-capture.ts).
      setupFilesAfterEnv: ['<rootDir>/test/support/leak-check.ts'],
    },
  ],
};
