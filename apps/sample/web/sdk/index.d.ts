// Types only. At runtime the page imports ./sdk/index.js, which the sample app answers with the
// SDK's own ES module build (nestjs-otp-auth-client/dist/esm/*.js, served under /ui/sdk/): a
// relative URL, so the browser needs no import map and no bundler.
export * from 'nestjs-otp-auth-client';
