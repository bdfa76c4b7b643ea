import { afterAll } from '@jest/globals';
import { assertNoLeakedSecrets } from './log-capture.js';

// Runs after every e2e file (setupFilesAfterEnv): the file fails if a secret it saw was logged.
// jest runs this hook before the file's own afterAll hooks, so the test apps also check when they
// close (after their shutdown logs).
afterAll(() => {
  assertNoLeakedSecrets();
});
