# Sample app / standalone OTP service image. Multi-stage: build with the full toolchain, run
# with production dependencies only, as the unprivileged `node` user.
# Not exercised by CI (no Docker engine there); `docker compose up --build app` builds it.

FROM node:20-bookworm-slim AS build
WORKDIR /src
# python3, make and g++ build better-sqlite3 from source.
RUN apt-get update && apt-get install -y --no-install-recommends python3 make g++ && rm -rf /var/lib/apt/lists/*
COPY package.json package-lock.json ./
COPY libs/otp-auth/package.json libs/otp-auth/package.json
COPY libs/otp-auth-client/package.json libs/otp-auth-client/package.json
RUN npm ci --no-audit --no-fund
COPY tsconfig*.json nest-cli.json ./
COPY libs libs
COPY apps apps
RUN npm run build && npm prune --omit=dev --no-audit --no-fund

FROM node:20-bookworm-slim AS runtime
ENV NODE_ENV=production PORT=3000
WORKDIR /app
COPY --from=build --chown=node:node /src/package.json ./
COPY --from=build --chown=node:node /src/node_modules node_modules
COPY --from=build --chown=node:node /src/libs/otp-auth/package.json libs/otp-auth/package.json
COPY --from=build --chown=node:node /src/libs/otp-auth/dist libs/otp-auth/dist
# The sign-in page: the SDK's build it imports, and the HTML and CSS tsc does not copy to dist/.
COPY --from=build --chown=node:node /src/libs/otp-auth-client/package.json libs/otp-auth-client/package.json
COPY --from=build --chown=node:node /src/libs/otp-auth-client/dist libs/otp-auth-client/dist
COPY --from=build --chown=node:node /src/apps/sample/web/index.html /src/apps/sample/web/app.css apps/sample/web/
COPY --from=build --chown=node:node /src/dist dist
USER node
EXPOSE 3000
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s \
  CMD node -e "fetch('http://127.0.0.1:'+(process.env.PORT||3000)+'/health').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"
CMD ["node", "dist/apps/sample/src/main.js"]
