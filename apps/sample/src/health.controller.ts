import { Controller, Get, Inject, Optional } from '@nestjs/common';
import { ApiOperation, ApiTags } from '@nestjs/swagger';
import { HealthCheck, HealthCheckService, HealthIndicatorService, type HealthCheckResult } from '@nestjs/terminus';
import type { Redis } from 'ioredis';
import { SAMPLE_DATABASE_PING } from './persistence.module.js';

/** Injection token of the sample app's Redis client (absent when `REDIS_URL` is unset). */
export const SAMPLE_REDIS = Symbol('SAMPLE_REDIS');

/** Liveness and readiness, the way orchestrators (Kubernetes, Compose) probe a service. */
@ApiTags('health')
@Controller('health')
export class HealthController {
  constructor(
    private readonly health: HealthCheckService,
    @Inject(SAMPLE_DATABASE_PING) private readonly pingDatabase: () => Promise<unknown>,
    private readonly indicators: HealthIndicatorService,
    @Optional() @Inject(SAMPLE_REDIS) private readonly redis?: Redis,
  ) {}

  @Get()
  @HealthCheck()
  @ApiOperation({ summary: 'Liveness: the process answers (no dependency is checked)' })
  live(): Promise<HealthCheckResult> {
    return this.health.check([]);
  }

  @Get('ready')
  @HealthCheck()
  @ApiOperation({ summary: 'Readiness: the database (and Redis, when configured) answer within 1.5 s' })
  ready(): Promise<HealthCheckResult> {
    const redis = this.redis;
    // Unauthenticated callers see up/down only: driver errors can name hosts and users.
    const opaque = (name: string, ping: () => Promise<unknown>) => () =>
      this.indicators
        .check(name)
        .attempt(async () => {
          try {
            await ping();
          } catch {
            throw new Error('unreachable');
          }
        })
        .withTimeout(1500);
    return this.health.check([
      opaque('database', () => this.pingDatabase()),
      ...(redis ? [opaque('redis', () => redis.ping())] : []),
    ]);
  }
}
