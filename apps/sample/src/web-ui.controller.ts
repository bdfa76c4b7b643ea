import {
  applyDecorators,
  Controller,
  Get,
  Header,
  Inject,
  NotFoundException,
  Param,
  StreamableFile,
} from '@nestjs/common';
import { ApiExcludeController } from '@nestjs/swagger';
import { Public } from 'nestjs-otp-auth';
import type { WebUiAssets } from './web-ui.assets.js';

/** Injection token of the page's files ({@link WebUiAssets}), read once at startup. */
export const WEB_UI_ASSETS = Symbol('WEB_UI_ASSETS');

/**
 * The page's policy: its own scripts, styles and API only; images also from `data:` (the TOTP
 * QR code and the empty favicon). No inline script or style, no framing, no `<base>`.
 */
export const WEB_UI_CONTENT_SECURITY_POLICY = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "form-action 'self'",
  "frame-ancestors 'none'",
  "base-uri 'none'",
].join('; ');

/** Headers of every file of the page (the content type comes with each file). */
function WebUiHeaders(): MethodDecorator {
  return applyDecorators(
    Header('Content-Security-Policy', WEB_UI_CONTENT_SECURITY_POLICY),
    Header('X-Content-Type-Options', 'nosniff'),
    Header('Referrer-Policy', 'no-referrer'),
    Header('X-Frame-Options', 'DENY'),
    Header('Cross-Origin-Opener-Policy', 'same-origin'),
    Header('Cross-Origin-Resource-Policy', 'same-origin'),
    // File names carry no version: revalidate on every load so an upgrade never mixes old and new files.
    Header('Cache-Control', 'no-cache'),
  );
}

/**
 * The sign-in page: `GET /` and its files under `/ui/` (script, stylesheet, the SDK's ES
 * modules under `/ui/sdk/`). Only names in the startup allowlist are answered; anything else,
 * `..` included, is a 404. Public: it serves the page that signs users in.
 */
@ApiExcludeController()
@Public()
@Controller()
export class WebUiController {
  constructor(@Inject(WEB_UI_ASSETS) private readonly assets: WebUiAssets) {}

  /** The page itself. */
  @Get()
  @WebUiHeaders()
  page(): StreamableFile {
    return this.file('/');
  }

  /** `app.js`, `app.js.map`, `app.css`. */
  @Get('ui/:file')
  @WebUiHeaders()
  asset(@Param('file') file: string): StreamableFile {
    return this.file(`/ui/${file}`);
  }

  /** The SDK's ES modules, imported by `app.js` as `./sdk/index.js`. */
  @Get('ui/sdk/:file')
  @WebUiHeaders()
  sdk(@Param('file') file: string): StreamableFile {
    return this.file(`/ui/sdk/${file}`);
  }

  private file(path: string): StreamableFile {
    const found = this.assets.files.get(path);
    if (!found) throw new NotFoundException();
    return new StreamableFile(found.body, { type: found.contentType, length: found.body.length });
  }
}
