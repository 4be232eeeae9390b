import mysql from 'mysql2';
import type { Pool } from 'mysql2/promise';
import { traceMysqlPool } from '@canary/service-kit';
import type { UserManagementConfig } from '../config.js';
import { acquireFirst } from './acquire-first.js';

export type DatabasePool = Pool;

/** The part of the `mysql2` module the pool needs. */
export interface MysqlDriver {
  createPool: typeof mysql.createPool;
}

type PoolSettings = Pick<
  UserManagementConfig,
  'DB_HOSTNAME' | 'DB_PORT' | 'DB_NAME' | 'DB_USERNAME' | 'DB_PASSWORD' | 'DB_CONNECT_TIMEOUT_MS' | 'DB_CONNECTION_LIMIT' | 'DB_QUEUE_LIMIT' | 'DB_ACQUIRE_TIMEOUT_MS'
> &
  Partial<Pick<UserManagementConfig, 'AWS_XRAY_SDK_ENABLED'>>;

/**
 * The one place the MySQL pool is made: the callback API, then `.promise()`, whose queries take their connection
 * before they start, waiting for it at most DB_ACQUIRE_TIMEOUT_MS (`acquireFirst`). Every query inside a traced request
 * is an X-Ray SQL subsegment (`traceMysqlPool`; unwrapped when AWS_XRAY_SDK_ENABLED=false). Nothing connects
 * until the first query.
 */
export function createDatabasePool(config: PoolSettings, driver: MysqlDriver = mysql): DatabasePool {
  const pool = driver
    .createPool({
      host: config.DB_HOSTNAME,
      port: config.DB_PORT,
      database: config.DB_NAME,
      user: config.DB_USERNAME,
      password: config.DB_PASSWORD,
      connectTimeout: config.DB_CONNECT_TIMEOUT_MS,
      waitForConnections: true,
      connectionLimit: config.DB_CONNECTION_LIMIT,
      queueLimit: config.DB_QUEUE_LIMIT,
      // Idle connections are dropped before a server or NAT timeout can silently cut them.
      idleTimeout: 60_000,
      enableKeepAlive: true,
      charset: 'utf8mb4_unicode_ci',
      timezone: 'Z',
      dateStrings: false,
      supportBigNumbers: true,
    })
    .promise();
  return traceMysqlPool(acquireFirst(pool, config.DB_ACQUIRE_TIMEOUT_MS), { enabled: config.AWS_XRAY_SDK_ENABLED !== false });
}
