import { Logger, Module, type DynamicModule } from '@nestjs/common';
import { loadWebUiAssets, type WebUiAssets } from './web-ui.assets.js';
import { WEB_UI_ASSETS, WebUiController } from './web-ui.controller.js';

/** The sign-in page at `/` (`OTP_WEB_UI`, on by default); see {@link WebUiController}. */
@Module({})
export class WebUiModule {
  /**
   * @param enabled - `OTP_WEB_UI`: false leaves the routes out, so `/` and `/ui/*` answer 404.
   * @returns The module with the controller and its files, read once now.
   */
  static forRoot(enabled: boolean): DynamicModule {
    if (!enabled) return { module: WebUiModule };
    return {
      module: WebUiModule,
      controllers: [WebUiController],
      providers: [
        {
          provide: WEB_UI_ASSETS,
          useFactory: (): WebUiAssets => {
            const assets = loadWebUiAssets();
            if (assets.problem !== undefined) {
              new Logger('WebUi').warn(`The sign-in page at / is not served: ${assets.problem}.`);
            }
            return assets;
          },
        },
      ],
    };
  }
}
