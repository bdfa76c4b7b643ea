import 'reflect-metadata';
import { Controller, Get, Module } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { FastifyAdapter, type NestFastifyApplication } from '@nestjs/platform-fastify';
import request from 'supertest';
import Database from 'better-sqlite3';
import { DataSource } from 'typeorm';

@Controller()
class C {
  @Get('x') x() { return { ok: true }; }
}
@Module({ controllers: [C] })
class M {}

describe('smoke', () => {
  it('express', async () => {
    const ref = await Test.createTestingModule({ imports: [M] }).compile();
    const app = ref.createNestApplication();
    await app.init();
    await request(app.getHttpServer()).get('/x').expect(200, { ok: true });
    await app.close();
  });
  it('fastify', async () => {
    const ref = await Test.createTestingModule({ imports: [M] }).compile();
    const app = ref.createNestApplication<NestFastifyApplication>(new FastifyAdapter());
    await app.init();
    await app.getHttpAdapter().getInstance().ready();
    await request(app.getHttpServer()).get('/x').expect(200, { ok: true });
    await app.close();
  });
  it('sqlite', async () => {
    expect(typeof Database).toBe('function');
    const ds = new DataSource({ type: 'better-sqlite3', database: ':memory:' });
    await ds.initialize();
    expect(await ds.query('select 1 as v')).toEqual([{ v: 1 }]);
    await ds.destroy();
  });
});
