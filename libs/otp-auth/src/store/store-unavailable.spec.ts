import { BadRequestException } from '@nestjs/common';
import mongoose from 'mongoose';
import { QueryFailedError } from 'typeorm';
import { isDatabaseUnavailable } from '../typeorm/typeorm-otp-auth.store.js';
import { isMongoUnavailable } from '../mongoose/mongoose-otp-auth.store.js';
import type { ArgumentsHost } from '@nestjs/common';
import type { HttpAdapterHost } from '@nestjs/core';
import { firstValueFrom, type Observable } from 'rxjs';
import { RetryAfterFilter } from '../http/retry-after.filter.js';
import type { OtpAuthStore } from './otp-auth-store.interface.js';
import { isNetworkError, withStoreAvailability } from './store-unavailable.js';
import { OtpStoreUnavailableException } from '../errors.js';

const socketError = (code: string) => Object.assign(new Error(`connect ${code} 127.0.0.1:5432`), { code });

describe('recognising an unreachable database', () => {
  it('sees socket errors, also wrapped by TypeORM or in a cause chain', () => {
    expect(isNetworkError(socketError('ECONNREFUSED'))).toBe(true);
    expect(isNetworkError(new QueryFailedError('SELECT 1', [], socketError('ECONNRESET')))).toBe(true);
    expect(isNetworkError(new Error('outer', { cause: new AggregateError([socketError('ETIMEDOUT')]) }))).toBe(true);
    expect(isNetworkError(new Error('syntax error'))).toBe(false);
  });

  it('knows PostgreSQL, MySQL and pg pool signs, and not a refused query', () => {
    const pg = (code: string) => new QueryFailedError('q', [], Object.assign(new Error('x'), { code }));
    expect(isDatabaseUnavailable(pg('57P01'))).toBe(true); // admin shutdown
    expect(isDatabaseUnavailable(pg('08006'))).toBe(true); // connection failure
    expect(isDatabaseUnavailable(pg('53300'))).toBe(true); // too many connections
    expect(isDatabaseUnavailable(new Error('Connection terminated unexpectedly'))).toBe(true);
    expect(isDatabaseUnavailable(new Error('timeout exceeded when trying to connect'))).toBe(true);
    expect(isDatabaseUnavailable(new Error('Query read timeout'))).toBe(true);
    expect(isDatabaseUnavailable(Object.assign(new Error('lost'), { code: 'PROTOCOL_CONNECTION_LOST' }))).toBe(true);
    expect(isDatabaseUnavailable(pg('23505'))).toBe(false); // unique violation
    expect(isDatabaseUnavailable(pg('ER_DUP_ENTRY'))).toBe(false);
    expect(isDatabaseUnavailable(pg('42P01'))).toBe(false); // missing table: a deployment bug, not an outage
  });

  it("knows the MongoDB driver's and Mongoose's outage errors, and not a refused write", () => {
    const { mongo } = mongoose;
    // The driver's own classes, as it throws them.
    expect(isMongoUnavailable(new mongo.MongoNetworkError('connection reset'))).toBe(true);
    expect(isMongoUnavailable(new mongo.MongoNetworkTimeoutError('timed out'))).toBe(true);
    expect(isMongoUnavailable(new mongo.MongoNotConnectedError('not connected'))).toBe(true);
    expect(isMongoUnavailable(new mongo.MongoTopologyClosedError())).toBe(true);
    expect(isMongoUnavailable(new mongo.MongoClientClosedError())).toBe(true);
    expect(isMongoUnavailable(new mongoose.Error.MongooseServerSelectionError('no server'))).toBe(true);
    // Pool errors the driver does not export: by name.
    const named = (name: string) => Object.assign(new Error('x'), { name });
    for (const name of ['PoolClearedOnNetworkError', 'MongoPoolClearedError', 'MongoWaitQueueTimeoutError']) {
      expect(isMongoUnavailable(named(name))).toBe(true);
    }
    // Failover and shutdown answers from the server; a duplicate key or a bad query is no outage.
    for (const code of [91, 189, 10107, 11600, 11602, 13435, 13436]) {
      expect(isMongoUnavailable(new mongo.MongoServerError({ code, errmsg: 'not primary' }))).toBe(true);
    }
    // A write whose write-concern wait was cut by a shutdown, in the shape the driver builds.
    const writeConcern = new mongo.MongoWriteConcernError({
      ok: 1,
      writeConcernError: { code: 91, errmsg: 'ShutdownInProgress' },
    });
    expect(isMongoUnavailable(writeConcern)).toBe(true);
    expect(isMongoUnavailable(new mongo.MongoServerError({ code: 11000, errmsg: 'E11000 duplicate key' }))).toBe(false);
    expect(isMongoUnavailable(new mongo.MongoServerError({ code: 2, errmsg: 'BadValue' }))).toBe(false);
    // Mongoose before the first connection, with and without command buffering.
    expect(
      isMongoUnavailable(new mongoose.Error('Operation `users.findOne()` buffering timed out after 10000ms')),
    ).toBe(true);
    expect(
      isMongoUnavailable(
        new mongoose.Error(
          'Cannot call `users.findOne()` before initial connection is complete if `bufferCommands = false`.',
        ),
      ),
    ).toBe(true);
    // Wrapped by someone else: the cause chain counts.
    expect(isMongoUnavailable(new Error('outer', { cause: new mongo.MongoNetworkError('reset') }))).toBe(true);
  });
});

describe('withStoreAvailability', () => {
  function storeFailingWith(error: unknown): OtpAuthStore {
    return {
      findCode: () => Promise.reject(error),
      insertSuccessor: () => Promise.resolve(true),
      isUnavailableError: (e: unknown) => e instanceof Error && e.message === 'driver says gone',
    } as unknown as OtpAuthStore;
  }

  it('turns an unreachable database into a 503 with Retry-After, keeping the cause', async () => {
    const cause = socketError('ECONNREFUSED');
    const failure = await storeFailingWith(cause)
      .findCode('a@b.c', 'login')
      .catch((e: unknown) => e);
    expect(failure).toBeInstanceOf(Error); // the raw store is untouched
    const wrapped = await withStoreAvailability(storeFailingWith(cause))
      .findCode('a@b.c', 'login')
      .catch((e: unknown) => e);
    expect(wrapped).toBeInstanceOf(OtpStoreUnavailableException);
    expect((wrapped as OtpStoreUnavailableException).getStatus()).toBe(503);
    expect((wrapped as OtpStoreUnavailableException).retryAfterSeconds).toBe(5);
    expect((wrapped as OtpStoreUnavailableException).cause).toBe(cause);
  });

  it("asks the store about its driver's own errors, and passes every other error through", async () => {
    await expect(
      withStoreAvailability(storeFailingWith(new Error('driver says gone'))).findCode('a@b.c', 'login'),
    ).rejects.toBeInstanceOf(OtpStoreUnavailableException);
    const refused = new BadRequestException('no');
    await expect(withStoreAvailability(storeFailingWith(refused)).findCode('a@b.c', 'login')).rejects.toBe(refused);
    await expect(withStoreAvailability(storeFailingWith(new Error('bug'))).findCode('a@b.c', 'login')).rejects.toThrow(
      'bug',
    );
    await expect(withStoreAvailability(storeFailingWith(null)).insertSuccessor({} as never)).resolves.toBe(true);
  });
});

describe('withStoreAvailability on odd stores', () => {
  it('translates a synchronous throw and a foreign thenable too', async () => {
    const store = {
      findCode: () => {
        throw socketError('ECONNREFUSED');
      },
      findUserById: () => ({ then: (_: unknown, reject: (e: unknown) => void) => reject(socketError('EPIPE')) }),
    } as unknown as OtpAuthStore;
    const wrapped = withStoreAvailability(store);
    expect(() => wrapped.findCode('a@b.c', 'login')).toThrow(OtpStoreUnavailableException);
    await expect(wrapped.findUserById('1')).rejects.toBeInstanceOf(OtpStoreUnavailableException);
  });
});

describe('RetryAfterFilter outside HTTP', () => {
  const filter = new RetryAfterFilter({} as HttpAdapterHost);
  const host = (type: string) => ({ getType: () => type }) as unknown as ArgumentsHost;

  it('hands GraphQL the exception and RPC/WebSocket an error stream, never a throw', async () => {
    const exception = new OtpStoreUnavailableException();
    expect(filter.catch(exception, host('graphql'))).toBe(exception);
    const stream = filter.catch(exception, host('rpc')) as Observable<never>;
    await expect(firstValueFrom(stream)).rejects.toBe(exception);
  });
});
