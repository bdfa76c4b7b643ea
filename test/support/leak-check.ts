import { afterAll } from '@jest/globals';
import { leakedSecrets } from './log-capture.js';

// Runs after every e2e file (setupFilesAfterEnv): the file fails if a secret it saw was logged.
afterAll(() => {
  const leaks = leakedSecrets();
  if (leaks.length > 0) {
    throw new Error(`secrets appeared in the logs of this test file: ${leaks.join(', ')}`);
  }
});
