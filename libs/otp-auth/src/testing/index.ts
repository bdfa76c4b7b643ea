/**
 * nestjs-otp-auth/testing: the store conformance suite, for Jest. Every store the module ships
 * passes it; run it against your own `OtpAuthStore` to check the same contract.
 *
 * @packageDocumentation
 */
export {
  describeStoreConformance,
  type StoreConformanceHarness,
  type ConformanceIdVariant,
} from './store-conformance.js';
